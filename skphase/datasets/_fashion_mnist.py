"""Fashion-MNIST from local IDX files (no download)."""

import gzip
from pathlib import Path

import numpy as np

from ._home import get_data_home

__all__ = ["load_fashion_mnist", "SYSTEM_FASHION_MNIST_DIR"]

#: Where the Debian/Ubuntu package ``dataset-fashion-mnist`` installs the files.
SYSTEM_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")

_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}

CLASS_NAMES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)


def _read_idx(path):
    """Read a gzipped IDX file (the MNIST format) into a numpy array."""
    with gzip.open(path, "rb") as handle:
        data = handle.read()
    if data[:2] != b"\x00\x00" or data[2] != 0x08:
        raise ValueError(f"{path} is not an IDX file of unsigned bytes.")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    array = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if array.size != np.prod(shape):
        raise ValueError(f"{path} is truncated: expected {np.prod(shape)} values, found {array.size}.")
    return array.reshape(shape)


def _find_folder(data_home):
    candidates = [get_data_home(data_home) / "fashion-mnist"]
    if data_home is None:
        candidates.append(SYSTEM_FASHION_MNIST_DIR)
    for folder in candidates:
        if all((folder / name).exists() for pair in _FILES.values() for name in pair):
            return folder
    searched = ", ".join(str(c) for c in candidates)
    raise FileNotFoundError(
        f"Fashion-MNIST was not found (looked in: {searched}). On Debian/Ubuntu install it with "
        "'apt-get install dataset-fashion-mnist'; otherwise put the four files "
        "train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and "
        "t10k-labels-idx1-ubyte.gz in <data_home>/fashion-mnist (data_home defaults to $SKPHASE_DATA "
        "or ~/skphase_data)."
    )


def load_fashion_mnist(subset="train", *, data_home=None, n_samples=None, random_state=None):
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
    y : ndarray of shape (n,), int64
        Labels 0-9; names in ``skphase.datasets.FASHION_MNIST_CLASSES``.

    Raises
    ------
    FileNotFoundError
        With instructions, when the files are not found.

    Examples
    --------
    >>> from skphase.datasets import load_fashion_mnist
    >>> X, y = load_fashion_mnist("test", n_samples=100, random_state=0)  # doctest: +SKIP
    >>> X.shape  # doctest: +SKIP
    (100, 1, 28, 28)
    """
    if subset not in _FILES:
        raise ValueError(f"subset must be 'train' or 'test', got {subset!r}.")
    folder = _find_folder(data_home)
    images_file, labels_file = _FILES[subset]
    images = _read_idx(folder / images_file)
    labels = _read_idx(folder / labels_file).astype(np.int64)
    if n_samples is not None:
        from sklearn.utils import check_random_state

        if not 0 < n_samples <= len(labels):
            raise ValueError(f"n_samples must be in [1, {len(labels)}], got {n_samples}.")
        keep = np.sort(check_random_state(random_state).choice(len(labels), n_samples, replace=False))
        images, labels = images[keep], labels[keep]
    X = (images.astype(np.float32) / 255.0)[:, None]
    return X, labels
