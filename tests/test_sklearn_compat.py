"""scikit-learn's private API is reached through one module, and the supported range is the one packaged."""

import ast
import re
from pathlib import Path

import numpy as np
import pytest

import skphase
from skphase.utils import _sklearn_compat
from skphase.utils._sklearn_compat import MIN_SKLEARN_VERSION, check_sample_weight, sklearn_version

PACKAGE = Path(skphase.__file__).parent
COMPAT = PACKAGE / "utils" / "_sklearn_compat.py"


def _private_sklearn_imports(path):
    """``(line, what)`` for every import of a private scikit-learn module or name in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sklearn"):
            private_module = any(part.startswith("_") for part in node.module.split("."))
            private_names = [alias.name for alias in node.names if alias.name.startswith("_")]
            if private_module or private_names:
                found.append((node.lineno, f"from {node.module} import {', '.join(a.name for a in node.names)}"))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names
                      if alias.name.startswith("sklearn") and any(p.startswith("_") for p in alias.name.split("."))]
    return found


def test_private_sklearn_api_is_imported_only_by_the_compat_module():
    offenders = {str(path.relative_to(PACKAGE)): hits for path in sorted(PACKAGE.rglob("*.py"))
                 if path != COMPAT and (hits := _private_sklearn_imports(path))}
    assert offenders == {}, f"import these through skphase.utils._sklearn_compat: {offenders}"


def test_the_compat_module_itself_is_seen_by_the_scan():
    # The scan above must be able to fail: the compat module does import private names.
    assert _private_sklearn_imports(COMPAT)


def test_installed_release_is_within_the_packaged_range():
    pyproject = (PACKAGE.parent / "pyproject.toml").read_text()
    bound = re.search(r'"scikit-learn>=(\d+)\.(\d+)"', pyproject)
    assert bound is not None, "pyproject.toml must state scikit-learn's lower bound"
    assert tuple(map(int, bound.groups())) == MIN_SKLEARN_VERSION
    assert sklearn_version() >= MIN_SKLEARN_VERSION


def test_old_release_is_refused_with_what_to_do(monkeypatch):
    monkeypatch.setattr(_sklearn_compat.sklearn, "__version__", "1.5.2")
    with pytest.raises(ImportError, match=r"scikit-learn >= 1\.6, found 1\.5\.2.*pip install -U scikit-learn"):
        _sklearn_compat._check_supported()


@pytest.mark.parametrize("version, expected", [("1.9.1", (1, 9)), ("1.10.dev0", (1, 10)), ("2.0rc1", (2, 0))])
def test_sklearn_version_reads_release_strings(monkeypatch, version, expected):
    monkeypatch.setattr(_sklearn_compat.sklearn, "__version__", version)
    assert sklearn_version() == expected


def test_check_sample_weight():
    np.testing.assert_array_equal(check_sample_weight(None, 3), np.ones(3))
    np.testing.assert_array_equal(check_sample_weight(2.0, 2), [2.0, 2.0])
    assert check_sample_weight([1, 0, 3], 3).dtype == np.float64
    with pytest.raises(ValueError, match="Negative values"):
        check_sample_weight([1.0, -1.0], 2)
    with pytest.raises(ValueError, match="shape"):
        check_sample_weight([1.0, 1.0], 3)
    with pytest.raises(ValueError, match="NaN"):
        check_sample_weight([1.0, np.nan], 2)
