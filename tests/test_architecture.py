"""The layout rules of README.md that no linter checks: small modules, and imports at the top.

The layer and no-circle rules are import-linter contracts (``lint-imports``, pyproject.toml);
these are the two rules beside them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "chainsense"
SOURCES = sorted(PACKAGE.rglob("*.py"))
MAX_LINES = 400


def _function_imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    found = []
    for fn in ast.walk(tree):
        if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
            found += [n for n in ast.walk(fn) if isinstance(n, ast.Import | ast.ImportFrom)]
    return found


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_is_over_400_lines(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{lines} lines: a module this long has two jobs; split it"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_function_level_imports_only_in_cli_and_each_says_why(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    imports = _function_imports(ast.parse(text))
    if path.parent.name != "cli":
        assert not imports, f"import inside a function at line {imports[0].lineno}: move it up"
        return
    for node in imports:
        # the import, or a line above it in the same run of imports, comments and blank
        # lines, says why
        row, said = node.lineno - 1, False
        while row >= 0 and not said:
            line = lines[row].strip()
            in_block = not line or line.startswith(("from ", "import ", "#", ")"))
            in_block = in_block or line.endswith(",")  # the names of a parenthesised import
            if row < node.lineno - 1 and not in_block:
                break
            said = "#" in line
            row -= 1
        assert said, f"line {node.lineno}: say in a comment why this import is not at the top"
