"""The documentation links of the estimators, and the API reference against each package's ``__all__``."""

import importlib
import re
from pathlib import Path

import pytest
from sklearn.base import BaseEstimator

import skphase

API_PAGE = Path(__file__).resolve().parent.parent / "docs" / "api" / "index.rst"
PACKAGES = ["skphase", "skphase.metrics", "skphase.datasets", "skphase.nn", "skphase.filters", "skphase.utils"]
ESTIMATORS = [name for name in skphase.__all__
              if isinstance(getattr(skphase, name), type) and issubclass(getattr(skphase, name), BaseEstimator)]


def _documented_names():
    """``{module: names}`` listed by the autosummary tables of docs/api/index.rst, per ``currentmodule``."""
    names, module, in_table = {}, None, False
    for line in API_PAGE.read_text(encoding="utf-8").splitlines():
        if line.startswith(".. currentmodule::"):
            module = line.split("::", 1)[1].strip()
        elif line.startswith(".. autosummary::"):
            in_table = True
        elif in_table and re.fullmatch(r"   [A-Za-z_]\w*", line):
            names.setdefault(module, set()).add(line.strip())
        elif in_table and line and not line.startswith("   "):
            in_table = False
    return names


def test_every_public_estimator_is_listed():
    # The list the link tests run over must not be empty or miss the main estimator.
    assert {"ScatteringPhaseCollapse", "ScatteringTransform", "DTCWPTFeatures", "ConvRFM"} <= set(ESTIMATORS)


@pytest.mark.parametrize("name", ESTIMATORS)
def test_doc_link_points_at_the_estimator_api_page(name):
    estimator = getattr(skphase, name)()
    link = estimator._get_doc_link()
    # An alias (PhaseCollapse) links to the page of the class it names.
    page = f"skphase.{type(estimator).__name__}.html"
    assert link.startswith("https://") and link.endswith("/api/generated/" + page)


def test_html_repr_links_to_the_api_page():
    html = skphase.ScatteringPhaseCollapse()._repr_html_()
    assert 'href="https://' in html
    assert "/api/generated/skphase.ScatteringPhaseCollapse.html" in html


@pytest.mark.skipif(not API_PAGE.is_file(), reason="docs/ is not part of an installed package")
def test_estimator_pages_are_generated_by_the_api_reference():
    # The link's page name must be one the API reference generates (autosummary: module.name.html).
    documented = _documented_names().get("skphase", set())
    for name in ESTIMATORS:
        assert type(getattr(skphase, name)()).__name__ in documented


@pytest.mark.skipif(not API_PAGE.is_file(), reason="docs/ is not part of an installed package")
@pytest.mark.parametrize("package", PACKAGES)
def test_api_reference_lists_exactly_the_public_names(package):
    public = set(importlib.import_module(package).__all__)
    documented = _documented_names().get(package, set())
    assert not public - documented, f"add to docs/api/index.rst under {package}: {sorted(public - documented)}"
    assert not documented - public, f"not in {package}.__all__: {sorted(documented - public)}"
