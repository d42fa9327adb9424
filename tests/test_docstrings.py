"""Every public name has a numpydoc docstring that passes ``numpydoc.validate``.

The public names are those listed in the ``__all__`` of the public packages, with the public
methods and properties their classes define. Functions and classes are held to every check in
``CHECKS``; methods to all but the example and the "See Also" section (their class docstring
carries both, as in scikit-learn); constants are data, documented by a ``#:`` comment and in
the API reference, and numpydoc cannot read a docstring of theirs.
"""

import importlib
import inspect

import pytest

PACKAGES = ("skphase", "skphase.metrics", "skphase.datasets", "skphase.nn", "skphase.filters", "skphase.utils")

CHECKS = {
    # Parameters: all documented, none unknown, in order, with a type and a description.
    "PR01", "PR02", "PR03", "PR04", "PR05", "PR06", "PR07", "PR08", "PR09", "PR10",
    # Returns and Yields: present when something is returned, typed and described.
    "RT01", "RT02", "RT03", "RT04", "RT05", "YD01",
    # Summary line: present, capitalised, one line, no trailing whitespace or parenthesis issues.
    "SS01", "SS02", "SS03", "SS05", "SS06",
    # Layout: docstring present, blank lines, section order, no unknown sections.
    "GL01", "GL02", "GL03", "GL05", "GL06", "GL07", "GL08", "GL09", "GL10",
    # An example (run by ``pytest --doctest-modules``) and the siblings to read next.
    "EX01", "SA01",
}

# Methods are rendered under their class, which holds the example and the siblings.
METHOD_EXEMPT = {"EX01", "SA01"}

# Public names with no sibling in skphase to point to.
NO_SIBLING = {
    "skphase.utils.retain_freed_memory": "a process-wide allocator setting, unrelated to any other name",
}


def _is_constant(obj):
    return not (inspect.isclass(obj) or callable(obj) or inspect.ismodule(obj))


def _inherits_doc(cls, attribute, value):
    """True for an undocumented override of a documented method of a base class (autodoc shows that one)."""
    if getattr(value, "__doc__", None):
        return False
    return any(getattr(getattr(base, attribute, None), "__doc__", None) for base in cls.__mro__[1:])


def public_names():
    """``(qualified name, object, kind)`` for every public function, class, method and constant."""
    for package in PACKAGES:
        module = importlib.import_module(package)
        for name in module.__all__:
            obj = getattr(module, name)
            qualified = f"{package}.{name}"
            if _is_constant(obj):
                yield qualified, obj, "constant"
                continue
            yield qualified, obj, "class" if inspect.isclass(obj) else "function"
            if not inspect.isclass(obj):
                continue
            for attribute, value in vars(obj).items():
                if attribute.startswith("_") or not (inspect.isfunction(value) or isinstance(value, property)):
                    continue
                if _inherits_doc(obj, attribute, value):
                    continue
                yield f"{qualified}.{attribute}", value, "method"


def docstring_errors():
    numpydoc_validate = pytest.importorskip("numpydoc.validate")
    errors = []
    for name, _, kind in public_names():
        if kind == "constant":
            continue
        checks = CHECKS - METHOD_EXEMPT if kind == "method" else CHECKS
        if name in NO_SIBLING:
            checks = checks - {"SA01"}
        for code, message in numpydoc_validate.validate(name)["errors"]:
            if code in checks:
                errors.append((name, code, message))
    return errors


def test_public_docstrings_pass_numpydoc_validation():
    errors = docstring_errors()
    assert not errors, "numpydoc validation failed:\n" + "\n".join(
        f"{name}: {code} {message}" for name, code, message in errors
    )


def test_exemptions_name_public_objects():
    names = {name for name, _, _ in public_names()}
    stale = set(NO_SIBLING) - names
    assert not stale, f"exempted names that are not public: {sorted(stale)}"
