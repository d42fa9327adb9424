"""The two tiers of the package: a layer uses another layer through its public names only.

A layer is a sub-package of skphase (filters, nn, estimators, metrics, datasets, utils). A module
may import the private modules of its own layer; from another layer it imports the package
(``from ..nn import dtcwpt_pool``). The exception is ``skphase.utils``: its private modules hold
the validation and batching helpers every layer shares, which are not public.
"""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "skphase"
SHARED_PRIVATE = {"utils"}


def _imported_modules(path):
    """``(line, dotted module relative to skphase)`` of every relative import of ``path``."""
    layer = path.parent.name
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.ImportFrom) or node.level == 0:
            continue
        base = [layer] if node.level == 1 else []
        parts = base + (node.module.split(".") if node.module else [])
        if node.module is None:
            parts += [alias.name for alias in node.names]
        yield node.lineno, parts


def test_layers_import_other_layers_through_their_public_names():
    offenders = []
    for path in sorted(PACKAGE.glob("*/*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        layer = path.parent.name
        for line, parts in _imported_modules(path):
            other = parts[0]
            private = any(part.startswith("_") for part in parts[1:])
            if other != layer and other not in SHARED_PRIVATE and private:
                offenders.append(f"{relative}:{line} imports skphase.{'.'.join(parts)}")
    assert not offenders, "import these through the layer's package:\n" + "\n".join(offenders)


def test_utils_exports_only_user_facing_helpers():
    import skphase.utils

    assert set(skphase.utils.__all__) == {
        "ImageSource", "as_image_source", "make_generator", "resolve_device", "retain_freed_memory",
    }
