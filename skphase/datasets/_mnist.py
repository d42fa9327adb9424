"""MNIST from a user-provided local copy of the IDX files (no download)."""

from __future__ import annotations

import os

import numpy as np

from ._home import get_data_home
from ._idx import load_idx_dataset

__all__ = ["load_mnist"]

_HOW_TO_INSTALL = (
    "Put the four IDX files train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and "
    "t10k-labels-idx1-ubyte (gzipped or not) in <data_home>/mnist; data_home defaults to $SKPHASE_DATA or "
    "~/skphase_data."
)


def load_mnist(
    subset: str = "train",
    *,
    data_home: str | os.PathLike | None = None,
    n_samples: int | None = None,
    random_state: int | np.random.RandomState | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Load MNIST handwritten digits as float images in [0, 1].

    skphase never downloads data. Put the four IDX files of the dataset's
    authors (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, gzipped or not)
    in ``<data_home>/mnist``.

    Parameters
    ----------
    subset : {"train", "test"}, default="train"
        The 60,000 training or 10,000 test images.
    data_home : str or path-like or None
        Folder holding ``mnist/``; see :func:`get_data_home`.
    n_samples : int or None
        Keep a random subset of this many images, in file order.
    random_state : int, RandomState or None
        Seeds the subset draw.

    Returns
    -------
    X : ndarray of shape (n, 1, 28, 28), float32
        The digits as images, channels first.
    y : ndarray of shape (n,), int64
        The digits 0-9.

    Raises
    ------
    FileNotFoundError
        Saying where the files must be put.

    See Also
    --------
    make_noisy_frame_task : the noisy-MNIST task of Radhakrishnan et al.

    Examples
    --------
    >>> from skphase.datasets import load_mnist
    >>> X, y = load_mnist("test", n_samples=100, random_state=0)  # doctest: +SKIP
    >>> X.shape  # doctest: +SKIP
    (100, 1, 28, 28)
    """
    return load_idx_dataset("MNIST", [get_data_home(data_home) / "mnist"], subset, _HOW_TO_INSTALL, n_samples,
                            random_state)
