"""Docstring templates shared by sibling functions and classes."""

__all__ = ["fill_docstring"]


def fill_docstring(*objects, **sections):
    """Replace each ``{name}`` placeholder line of the objects' docstrings by ``sections[name]``.

    A placeholder is a line holding only ``{name}`` (indented by four spaces). Docstrings stripped
    by ``python -OO`` (``__doc__`` is None) are left alone.
    """
    for obj in objects:
        doc = obj.__doc__
        if doc is None:
            continue
        for name, text in sections.items():
            doc = doc.replace("    {" + name + "}\n", text.strip("\n") + "\n")
        obj.__doc__ = doc
