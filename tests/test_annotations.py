"""Every public function and method is annotated: its parameters and its return value.

The annotations are strings (``from __future__ import annotations``): they document the API
and serve type checkers, and cost nothing at import.
"""

import inspect

from test_docstrings import public_names

# Methods whose signature is fixed by a base class (``torch.nn.Module.extra_repr``, scikit-learn's
# ``get_feature_names_out``) are annotated as any other; nothing is exempt.


def _callables():
    """``(name, function, skip_return)`` for every public function, constructor and method."""
    for name, obj, kind in public_names():
        if kind == "constant":
            continue
        if kind == "class":
            init = obj.__dict__.get("__init__")
            if init is not None and inspect.isfunction(init):
                yield f"{name}.__init__", init, True
            continue
        if isinstance(obj, property):
            yield name, obj.fget, False
        elif inspect.isfunction(obj):
            yield name, obj, False


def missing_annotations():
    missing = []
    for name, function, skip_return in _callables():
        signature = inspect.signature(function)
        for parameter in list(signature.parameters.values()):
            if parameter.name in ("self", "cls"):
                continue
            if parameter.annotation is inspect.Parameter.empty:
                missing.append(f"{name}: parameter {parameter.name}")
        if not skip_return and signature.return_annotation is inspect.Signature.empty:
            missing.append(f"{name}: return")
    return missing


def test_public_callables_are_annotated():
    missing = missing_annotations()
    assert not missing, "missing annotations:\n" + "\n".join(missing)
