"""The HTML report is self-contained and renders in a real headless Chromium."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pytest

from chainsense.errors import ChainsenseError
from chainsense.experiments.report import Report
from chromium import render_dom


def _png(path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([0, 1, 2], [1, 0, 2])
    fig.savefig(path)
    plt.close(fig)
    return path


def build_report(tmp_path: Path) -> Report:
    report = Report("Test report", subtitle="a <tiny> run")
    report.section("Metrics")
    report.add_table(
        [{"policy": "greedy", "efficiency": 0.12345}, {"policy": "random", "efficiency": 0.01}],
        caption="metrics",
        table_id="metrics",
    )
    report.add_figure(_png(tmp_path / "curve.png"), "a curve")
    report.section("Ledger")
    report.add_status("every record verified", True, "12 of 12")
    return report


def test_report_is_self_contained(tmp_path: Path) -> None:
    path = build_report(tmp_path).write(tmp_path / "report.html")
    text = path.read_text()
    assert "data:image/png;base64," in text
    assert not re.search(r"""(src|href)=["']https?://""", text)
    assert "&lt;tiny&gt;" in text  # user text is escaped


def test_missing_or_non_image_figure_is_rejected(tmp_path: Path) -> None:
    report = Report("r")
    with pytest.raises(ChainsenseError, match="not found"):
        report.add_figure(tmp_path / "nope.png")
    (tmp_path / "data.csv").write_text("a,b\n")
    with pytest.raises(ChainsenseError, match="not an image"):
        report.add_figure(tmp_path / "data.csv")


@pytest.mark.slow
def test_report_renders_in_chromium(tmp_path: Path) -> None:
    path = build_report(tmp_path).write(tmp_path / "report.html")
    dom = render_dom(path)
    assert 'data-figures-loaded="1"' in dom
    assert 'id="metrics"' in dom and "greedy" in dom
    assert 'data-status="PASS"' in dom
