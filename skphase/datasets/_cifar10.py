"""CIFAR-10 from a user-provided local copy (the python pickle batches)."""

import pickle

import numpy as np

from ._home import get_data_home

__all__ = ["load_cifar10"]


def load_cifar10(subset="train", *, data_home=None):
    """Load CIFAR-10 from ``<data_home>/cifar-10-batches-py``.

    skphase never downloads data. Get ``cifar-10-python.tar.gz`` from the
    dataset's authors and unpack it into the data home.

    Parameters
    ----------
    subset : {"train", "test"}, default="train"
    data_home : str or path-like or None
        See :func:`get_data_home`.

    Returns
    -------
    X : ndarray of shape (n, 3, 32, 32), float32 in [0, 1]
    y : ndarray of shape (n,), int64

    Raises
    ------
    FileNotFoundError
        Saying where the files must be put.
    """
    if subset not in ("train", "test"):
        raise ValueError(f"subset must be 'train' or 'test', got {subset!r}.")
    folder = get_data_home(data_home) / "cifar-10-batches-py"
    names = [f"data_batch_{i}" for i in range(1, 6)] if subset == "train" else ["test_batch"]
    missing = [name for name in names if not (folder / name).exists()]
    if missing:
        raise FileNotFoundError(
            f"CIFAR-10 was not found: {folder} lacks {', '.join(missing)}. Download "
            "cifar-10-python.tar.gz (the python version) and unpack it so that this folder exists, "
            "or set data_home / $SKPHASE_DATA to the folder that contains cifar-10-batches-py."
        )
    images, labels = [], []
    for name in names:
        with open(folder / name, "rb") as handle:
            batch = pickle.load(handle, encoding="bytes")
        images.append(np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        labels.append(np.asarray(batch[b"labels"], dtype=np.int64))
    return np.concatenate(images).astype(np.float32) / 255.0, np.concatenate(labels)
