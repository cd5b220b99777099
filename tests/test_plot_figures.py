"""benchmarks/figures.py: a report named on the command line keeps its label (or has none), and
a figure is written where asked, its folder made."""

from pathlib import Path

from matplotlib.figure import Figure

from bench_scripts import load_script

figures = load_script("figures")


def test_a_label_follows_the_first_equals_sign_and_an_empty_one_is_none() -> None:
    assert figures.labelled("runs/a.json=GRU 2 M") == (Path("runs/a.json"), "GRU 2 M")
    assert figures.labelled("a.json=x=y") == (Path("a.json"), "x=y")
    assert figures.labelled("a.json") == (Path("a.json"), None)
    assert figures.labelled("a.json=") == (Path("a.json"), None)


def test_the_figure_is_written_into_a_folder_made_for_it(tmp_path: Path, capsys) -> None:
    fig = Figure()
    fig.add_subplot().plot([0, 1], [1, 0])
    out = tmp_path / "new" / "deeper" / "f.png"
    assert figures.save_figure(fig, out, dpi=50) == out
    assert out.read_bytes().startswith(b"\x89PNG")
    assert f"wrote {out}" in capsys.readouterr().out
