"""Running a script of ``benchmarks/`` as a user does, shared by the tests of those scripts."""

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def run_script(name: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``python benchmarks/NAME.py ARGS...`` in a fresh interpreter; output captured as text."""
    return subprocess.run(
        [sys.executable, str(BENCHMARKS / f"{name}.py"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def load_script(name: str) -> ModuleType:
    """``benchmarks/NAME.py`` imported as a module, with ``benchmarks/`` on the path as when it
    runs as a script (the scripts import their shared helpers, e.g. ``figures``)."""
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
