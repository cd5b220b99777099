"""One self-contained HTML report: figures embedded as data URIs, tables, notes.

The report must open in a browser with no network access, so nothing is linked: PNG and GIF
figures are inlined as base64, the style sheet is inline, and the only script is a few lines that
count figures that decoded (``data-figures-loaded`` on ``<body>``) and mark any that did not.
"""

from __future__ import annotations

import base64
import html
import mimetypes
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chainsense.errors import ChainsenseError
from chainsense.files import atomic_write

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:1100px;
color:#1d2330;line-height:1.45;padding:0 1rem}
h1{font-size:1.8rem;margin-bottom:.2rem}h2{border-bottom:2px solid #d6dbe6;padding-bottom:.2rem;
margin-top:2.2rem}.meta{color:#5a6478;font-size:.9rem}
table{border-collapse:collapse;margin:.6rem 0 1.2rem;font-size:.92rem}
th,td{border:1px solid #d6dbe6;padding:.3rem .6rem;text-align:right}
th{background:#eef1f7}td:first-child,th:first-child{text-align:left}
figure{margin:1rem 0;display:inline-block;vertical-align:top;max-width:100%}
figure img{max-width:100%;border:1px solid #e3e7ef}figcaption{font-size:.88rem;color:#5a6478}
.ok{color:#137a3a;font-weight:600}.bad{color:#b3261e;font-weight:600}
.broken{outline:3px solid #b3261e}
p.note{background:#f6f8fb;padding:.5rem .8rem;border-left:3px solid #8aa0c8}
"""

_SCRIPT = """
window.addEventListener('load',function(){var n=0;document.querySelectorAll('figure img')
.forEach(function(i){if(i.complete&&i.naturalWidth>0){n++}else{i.classList.add('broken')}});
document.body.setAttribute('data-figures-loaded',String(n));});
"""


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


@dataclass
class Section:
    """A titled part of the report holding HTML fragments in order."""

    title: str
    parts: list[str] = field(default_factory=list)


@dataclass
class Report:
    """Builder for the HTML report; add sections, then :meth:`write`."""

    title: str
    subtitle: str = ""
    sections: list[Section] = field(default_factory=list)

    def section(self, title: str) -> Section:
        """Start a new section; later ``add_*`` calls go into it."""
        sec = Section(title)
        self.sections.append(sec)
        return sec

    def _current(self) -> Section:
        if not self.sections:
            return self.section("Results")
        return self.sections[-1]

    def add_text(self, text: str, *, note: bool = False) -> None:
        """Add a paragraph of plain text (escaped)."""
        cls = ' class="note"' if note else ""
        self._current().parts.append(f"<p{cls}>{html.escape(text)}</p>")

    def add_status(self, label: str, ok: bool, detail: str = "") -> None:
        """Add a pass/fail line, e.g. the ledger verification verdict."""
        cls, word = ("ok", "PASS") if ok else ("bad", "FAIL")
        self._current().parts.append(
            f'<p>{html.escape(label)}: <span class="{cls}" data-status="{word}">{word}</span> '
            f"{html.escape(detail)}</p>"
        )

    def add_table(
        self, rows: Sequence[Mapping[str, Any]], *, caption: str = "", table_id: str = ""
    ) -> None:
        """Add a table whose columns are the keys of the first row."""
        if not rows:
            self.add_text(f"{caption}: no rows.")
            return
        columns = list(rows[0].keys())
        ident = f' id="{html.escape(table_id)}"' if table_id else ""
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
        body = "".join(
            "<tr>" + "".join(f"<td>{_cell(row.get(c, ''))}</td>" for c in columns) + "</tr>"
            for row in rows
        )
        cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
        self._current().parts.append(
            f"<table{ident}>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        )

    def add_figure(self, path: str | Path, caption: str = "") -> None:
        """Embed a PNG/GIF/SVG file as a data URI so the report needs no other file."""
        p = Path(path)
        if not p.is_file():
            raise ChainsenseError(f"report figure not found: {p}")
        mime = mimetypes.guess_type(p.name)[0] or "application/octet-stream"
        if not mime.startswith("image/"):
            raise ChainsenseError(f"report figure {p.name} is not an image ({mime})")
        data = base64.b64encode(p.read_bytes()).decode("ascii")
        cap = html.escape(caption or p.stem)
        self._current().parts.append(
            f'<figure><img alt="{cap}" src="data:{mime};base64,{data}">'
            f"<figcaption>{cap}</figcaption></figure>"
        )

    def render(self) -> str:
        """The whole document as a string."""
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        toc = "".join(
            f'<li><a href="#s{i}">{html.escape(s.title)}</a></li>'
            for i, s in enumerate(self.sections)
        )
        body = "".join(
            f'<section id="s{i}"><h2>{html.escape(s.title)}</h2>{"".join(s.parts)}</section>'
            for i, s in enumerate(self.sections)
        )
        sub = f"<p>{html.escape(self.subtitle)}</p>" if self.subtitle else ""
        return (
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(self.title)}</title><style>{_STYLE}</style>"
            f"<script>{_SCRIPT}</script></head><body>"
            f'<h1>{html.escape(self.title)}</h1><p class="meta">generated {stamp}</p>{sub}'
            f"<nav><ol>{toc}</ol></nav>{body}</body></html>"
        )

    def write(self, path: str | Path) -> Path:
        """Write the report atomically (temp file then rename) and return its path."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(p, self.render())
        return p
