import ast
import subprocess
import sys
from pathlib import Path

import pytest

from skphase.utils._docs import fill_docstring


def test_every_module_imports_with_docstrings_stripped():
    # python -OO sets every __doc__ to None; docstring templating must not fail on it.
    code = "import skphase, skphase.metrics, skphase.nn, skphase.datasets, skphase.filters, skphase.utils"
    subprocess.run([sys.executable, "-OO", "-c", code], check=True, capture_output=True, timeout=120)


def test_fill_docstring_replaces_placeholder_lines_only():
    def f():
        """Summary.

        Parameters
        ----------
        {common}
        x : int
        """

    def g():
        pass

    g.__doc__ = None
    fill_docstring(f, g, common="    a : int\n        First.\n")
    assert "{common}" not in f.__doc__
    assert "    a : int\n        First.\n        x : int" in f.__doc__
    assert g.__doc__ is None


def test_every_example_gets_a_gallery_title(monkeypatch):
    # sphinx-gallery needs an underlined title at the top of each example's docstring (raw or not).
    pytest.importorskip("sphinx.pycode")
    root = Path(__file__).resolve().parents[1]
    monkeypatch.syspath_prepend(str(root / "docs" / "_ext"))
    from skphase_docs import _with_title

    examples = sorted((root / "examples").glob("*.py"))
    assert examples
    for script in examples:
        lines = ast.get_docstring(ast.parse(_with_title(script.read_text(encoding="utf-8")))).splitlines()
        assert lines[1] == "=" * len(lines[0]) and not lines[0].endswith("."), script.name
