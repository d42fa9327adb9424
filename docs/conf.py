"""Sphinx configuration of the skphase documentation.

Build it from the repository root (warnings are errors)::

    pip install -e ".[docs]" && python -m sphinx -W -b html docs docs/_build/html
"""

import os
import re
import sys
from pathlib import Path

# Before anything imports torch: its OpenMP threads otherwise spin while waiting, which slows
# the gallery's examples down badly on small shared machines.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(DOCS / "_ext"))
sys.path.insert(0, str(ROOT))

import skphase  # noqa: E402
from skphase_docs import stage_examples  # noqa: E402

project = "skphase"
author = "the skphase developers"
copyright = "the skphase developers, BSD-3-Clause"
release = skphase.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "skphase_docs",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "_gallery_src", "gallery_header.rst", "**.ipynb_checkpoints"]
root_doc = "index"
default_role = "literal"
# References to names the API reference does not document (private helpers named in
# docstrings, torch and scikit-learn objects: no intersphinx, the build stays offline) render
# as plain text rather than failing the build.
nitpicky = False

# -- API reference -------------------------------------------------------------------------
autosummary_generate = True
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "none"
# numpydoc renders the Parameters/Attributes sections; autosummary lists the methods.
numpydoc_show_class_members = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False
# numpydoc's validation is off: -W already fails the build on any docstring that renders badly.
numpydoc_validation_checks = set()

# -- Gallery -------------------------------------------------------------------------------
# examples/ holds command-line scripts; a titled copy of them (see _ext/skphase_docs.py)
# is what sphinx-gallery reads. Only the plot_* scripts are executed, each with --quick;
# grid_search_on_dask.py (it starts a dask cluster) is shown and downloadable, not run.
STAGED = stage_examples(ROOT / "examples", DOCS / "_gallery_src", DOCS / "gallery_header.rst")
EXECUTED = r"/plot_"


def _fashion_mnist_missing():
    from skphase.datasets import load_fashion_mnist

    try:
        load_fashion_mnist("test", n_samples=1)
    except FileNotFoundError as exc:
        return str(exc)
    return None


# The examples whose --quick run reads Fashion-MNIST (apt-get install dataset-fashion-mnist, or
# the data home). Without the data they are shown but not run, and the build says so, instead
# of failing on them; any other example that cannot find its data fails the build.
FASHION_MNIST_EXAMPLES = ["plot_class_separation.py", "plot_convrfm_features.py", "plot_diffeo_sensitivity.py",
                          "plot_shift_invariance.py"]
_missing = _fashion_mnist_missing()
if _missing:
    EXECUTED = r"/(?!(?:" + "|".join(re.escape(name) for name in FASHION_MNIST_EXAMPLES) + r")$)plot_"
    print(f"skphase docs: Fashion-MNIST not found ({_missing}); not executing {', '.join(FASHION_MNIST_EXAMPLES)}")

sphinx_gallery_conf = {
    "examples_dirs": [str(STAGED.relative_to(DOCS))],
    "gallery_dirs": ["auto_examples"],
    "filename_pattern": EXECUTED,
    "reset_argv": "skphase_docs.reset_argv",
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": True,
    "remove_config_comments": True,
    "capture_repr": (),
    "matplotlib_animations": False,
    "show_memory": False,
    # A failing example fails the build (after the others have run).
    "only_warn_on_example_error": False,
}

# -- HTML ----------------------------------------------------------------------------------
try:
    import pydata_sphinx_theme  # noqa: F401
except ImportError:  # the docs extra installs it; alabaster ships with Sphinx
    html_theme = "alabaster"
    html_theme_options = {}
else:
    html_theme = "pydata_sphinx_theme"
    html_theme_options = {
        "navigation_with_keys": False,
        "show_toc_level": 2,
        "secondary_sidebar_items": ["page-toc", "sourcelink"],
    }
html_title = f"skphase {release}"
html_static_path = []
html_show_sourcelink = True
