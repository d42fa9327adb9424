"""Helpers of the skphase documentation build: the example gallery, constants, inherited methods.

Gallery: the scripts of ``examples/`` are written to be run from the command line: their
docstring opens with a one-line summary, not a reStructuredText title, and the
folder holds no gallery header. :func:`stage_examples` copies them into a
folder of the documentation, with that summary underlined as the page title and
``docs/gallery_header.rst`` as the gallery's header, and sphinx-gallery builds
the gallery from the copy. The scripts themselves stay as they are. The gallery's
helpers are named by string in ``conf.py`` so that Sphinx can cache its configuration.

Constants: a public constant re-exported by a package (``skphase.nn.NONLINEARITIES``)
carries its ``#:`` comment in the private module that defines it, where autodoc does
not look; :func:`constant_docstring` finds it there, so that the API page of the
constant says what it is rather than quoting the docstring of ``tuple`` or ``ndarray``.

Inherited methods: :func:`inherited_sklearn_docstring` turns the cross-references of
scikit-learn's docstrings (``get_params``, ``set_output``, ...) into plain text.
"""

import ast
import importlib
import pkgutil
import re
from pathlib import Path

from sphinx.pycode import ModuleAnalyzer

#: Arguments every executed example receives: the small runs of ``--quick``.
QUICK_ARGV = ["--quick"]


def reset_argv(gallery_conf, script_vars):
    """``sys.argv[1:]`` of each example run by sphinx-gallery; also gives the example its ``__doc__``.

    sphinx-gallery runs an example with ``__doc__ = ""`` (so that ``print(__doc__)``
    prints nothing), but the scripts build their command-line help from their
    docstring (``__doc__.splitlines()[0]``). This hook is called once the
    example's globals exist and before it runs: it puts the script's own
    docstring back, as the command line would see it.
    """
    staged = Path(script_vars["src_file"])
    original = staged.parent.parent.parent / "examples" / staged.name
    source = (original if original.is_file() else staged).read_text(encoding="utf-8")
    example_globals = script_vars.get("example_globals")
    if example_globals is not None:
        example_globals["__doc__"] = ast.get_docstring(ast.parse(source), clean=False)
    return list(QUICK_ARGV)


def _with_title(source):
    """``source`` with the first line of its module docstring as a title (underlined, no final stop)."""
    match = re.match(r'(\s*(?:#[^\n]*\n\s*)*)([rR]?"""|[rR]?\'\'\')([^\n]+)\n(?!\s*[=\-~^"#*+]{3,}\s*\n)', source)
    if match is None:
        return source
    prefix, quotes, title = match.group(1), match.group(2), match.group(3).strip().rstrip(".")
    return f'{prefix}{quotes}{title}\n{"=" * len(title)}\n' + source[match.end():]


def stage_examples(examples_dir, staged_dir, header):
    """Copy ``examples_dir/*.py`` into ``staged_dir`` with titles, and ``header`` as its gallery header.

    Files are rewritten only when their content changes, so that sphinx-gallery
    (which compares checksums) re-runs only the examples that changed; staged
    copies of removed examples are deleted.
    """
    examples_dir, staged_dir = Path(examples_dir), Path(staged_dir)
    staged_dir.mkdir(parents=True, exist_ok=True)
    wanted = {"GALLERY_HEADER.rst": Path(header).read_text(encoding="utf-8")}
    for script in sorted(examples_dir.glob("*.py")):
        wanted[script.name] = _with_title(script.read_text(encoding="utf-8"))
    for name, text in wanted.items():
        target = staged_dir / name
        if not target.is_file() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")
    for stale in staged_dir.glob("*.py"):
        if stale.name not in wanted:
            stale.unlink()
    return staged_dir


def _defining_comment(package_name, value):
    """The ``#:`` comment of ``value`` in the module under ``package_name`` that defines it."""
    package = importlib.import_module(package_name)
    for info in pkgutil.walk_packages(getattr(package, "__path__", []), package_name + "."):
        module = importlib.import_module(info.name)
        if not any(v is value for v in vars(module).values()):
            continue
        try:
            comments = ModuleAnalyzer.for_module(info.name).find_attr_docs()
        except Exception:  # no source to read: nothing to add
            continue
        # The defining module may name it differently (CLASS_NAMES, exported as FASHION_MNIST_CLASSES).
        for (scope, attribute), comment in comments.items():
            if scope == "" and getattr(module, attribute, None) is value:
                return list(comment)
    return None


def constant_docstring(app, what, name, obj, options, lines):
    """``autodoc-process-docstring`` hook: a module constant's own comment, never its type's docstring."""
    if what != "data":
        return
    comment = _defining_comment(name.rpartition(".")[0], obj)
    if comment:
        lines[:] = comment
    elif type(obj).__module__.split(".")[0] in ("builtins", "numpy", "torch"):
        lines[:] = []  # what autodoc found is the docstring of the value's type


#: A role with an explicit title (``:ref:`the guide <label>```), then one without.
_TITLED_ROLE = re.compile(r":(?:ref|term|doc):`([^`<]*?)\s*<[^`>]*>`")
_ROLE = re.compile(r":(?:ref|term|doc):`([^`]*)`")


def inherited_sklearn_docstring(app, what, name, obj, options, lines):
    """``autodoc-process-docstring`` hook: scikit-learn's cross-references as plain text.

    The estimator pages list the methods inherited from scikit-learn
    (``get_params``, ``set_output``, ``score``, ...) with scikit-learn's
    docstrings, whose ``:ref:`` and ``:term:`` roles name labels of
    scikit-learn's own documentation; the build is offline (no intersphinx), so
    they are shown as their text.
    """
    module = getattr(obj, "__module__", None) or ""
    if not module.startswith("sklearn"):
        return
    for i, line in enumerate(lines):
        lines[i] = _ROLE.sub(r"\1", _TITLED_ROLE.sub(r"\1", line))


def setup(app):
    # Before numpydoc (priority 500), which then formats the comment like any docstring.
    app.connect("autodoc-process-docstring", constant_docstring, priority=100)
    app.connect("autodoc-process-docstring", inherited_sklearn_docstring, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
