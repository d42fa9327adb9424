"""Fashion-MNIST from local IDX files (no download)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ._home import get_data_home
from ._idx import load_idx_dataset

__all__ = ["load_fashion_mnist", "SYSTEM_FASHION_MNIST_DIR"]

#: Where the Debian/Ubuntu package ``dataset-fashion-mnist`` installs the files.
SYSTEM_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")

_HOW_TO_INSTALL = (
    "On Debian/Ubuntu install it with 'apt-get install dataset-fashion-mnist'; otherwise put the four files "
    "train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and "
    "t10k-labels-idx1-ubyte.gz in <data_home>/fashion-mnist (data_home defaults to $SKPHASE_DATA "
    "or ~/skphase_data)."
)

#: Names of the ten Fashion-MNIST classes, by label.
CLASS_NAMES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)


def load_fashion_mnist(
    subset: str = "train",
    *,
    data_home: str | os.PathLike | None = None,
    n_samples: int | None = None,
    random_state: int | np.random.RandomState | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Load Fashion-MNIST as float images in [0, 1].

    Parameters
    ----------
    subset : {"train", "test"}, default="train"
        The 60,000 training or 10,000 test images.
    data_home : str or path-like or None
        Folder holding ``fashion-mnist/``; see :func:`get_data_home`. When
        None, ``/usr/share/datasets/fashion-mnist`` (Debian package
        ``dataset-fashion-mnist``) is also searched.
    n_samples : int or None
        Keep a random subset of this many images (stratified is not needed at
        these sizes; classes are balanced in the source).
    random_state : int, RandomState or None
        Seeds the subset draw.

    Returns
    -------
    X : ndarray of shape (n, 1, 28, 28), float32
        The images, channels first.
    y : ndarray of shape (n,), int64
        Labels 0-9; names in ``skphase.datasets.FASHION_MNIST_CLASSES``.

    Raises
    ------
    FileNotFoundError
        With instructions, when the files are not found.

    See Also
    --------
    load_mnist : the MNIST digits, in the same file format.
    load_cifar10 : CIFAR-10, the other dataset of the paper's Table 1.

    Examples
    --------
    >>> from skphase.datasets import load_fashion_mnist
    >>> X, y = load_fashion_mnist("test", n_samples=100, random_state=0)  # doctest: +SKIP
    >>> X.shape  # doctest: +SKIP
    (100, 1, 28, 28)
    """
    candidates = [get_data_home(data_home) / "fashion-mnist"]
    if data_home is None:
        candidates.append(SYSTEM_FASHION_MNIST_DIR)
    return load_idx_dataset("Fashion-MNIST", candidates, subset, _HOW_TO_INSTALL, n_samples, random_state)
