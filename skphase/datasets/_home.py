"""Where skphase looks for datasets that users provide themselves."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["get_data_home"]


def get_data_home(data_home: str | os.PathLike | None = None) -> Path:
    """Folder holding user-provided datasets.

    Parameters
    ----------
    data_home : str or path-like or None
        Used as given when not None. Otherwise the environment variable
        ``SKPHASE_DATA`` is used when set, else ``~/skphase_data``.

    Returns
    -------
    pathlib.Path
        The folder (not created).

    Raises
    ------
    TypeError
        When ``data_home`` is not a path.

    See Also
    --------
    load_mnist, load_fashion_mnist, load_cifar10 : the loaders that read from it.

    Notes
    -----
    Each dataset lives in a sub-folder named after it, e.g.
    ``<data_home>/fashion-mnist/train-images-idx3-ubyte.gz`` or
    ``<data_home>/cifar-10-batches-py/data_batch_1``.

    Examples
    --------
    >>> from skphase.datasets import get_data_home
    >>> get_data_home("/data/images").as_posix()
    '/data/images'
    """
    if data_home is None:
        data_home = os.environ.get("SKPHASE_DATA", Path("~") / "skphase_data")
    if not isinstance(data_home, (str, os.PathLike)):
        raise TypeError(f"data_home must be a path (str or path-like) or None, got {data_home!r}.")
    return Path(data_home).expanduser()
