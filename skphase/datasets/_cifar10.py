"""CIFAR-10 from a user-provided local copy (the python pickle batches)."""

from __future__ import annotations

import os
import pickle

import numpy as np

from ._home import get_data_home

__all__ = ["load_cifar10"]


def load_cifar10(
    subset: str = "train",
    *,
    data_home: str | os.PathLike | None = None,
) -> tuple[np.ndarray, np.ndarray]:
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
        The images, channels first.
    y : ndarray of shape (n,), int64
        The classes 0-9 (airplane, automobile, bird, cat, deer, dog, frog, horse, ship, truck).

    Raises
    ------
    FileNotFoundError
        Saying where the files must be put.

    See Also
    --------
    load_fashion_mnist : Fashion-MNIST, the other dataset of the paper's Table 1.
    get_data_home : where the files are looked for.

    Examples
    --------
    >>> from skphase.datasets import load_cifar10
    >>> X, y = load_cifar10("test")  # doctest: +SKIP
    >>> X.shape  # doctest: +SKIP
    (10000, 3, 32, 32)
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
    batches = [_read_batch(folder / name) for name in names]
    images = np.concatenate([b[0] for b in batches])
    return images.astype(np.float32) / 255.0, np.concatenate([b[1] for b in batches])


def _read_batch(path):
    """Images (uint8, ``(n, 3, 32, 32)``) and labels of one pickled batch; clear errors for damaged files."""
    try:
        with open(path, "rb") as handle:
            batch = pickle.load(handle, encoding="bytes")
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError) as exc:
        raise ValueError(f"{path} is not a CIFAR-10 python batch ({type(exc).__name__}: {exc}); "
                         "unpack cifar-10-python.tar.gz again.") from exc
    missing = [key.decode() for key in (b"data", b"labels") if not isinstance(batch, dict) or key not in batch]
    if missing:
        raise ValueError(f"{path} lacks the key(s) {missing} of a CIFAR-10 python batch; "
                         "unpack cifar-10-python.tar.gz again.")
    data = np.asarray(batch[b"data"], dtype=np.uint8)
    labels = np.asarray(batch[b"labels"], dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise ValueError(f"{path} holds data of shape {data.shape}; a CIFAR-10 batch has rows of 3072 values.")
    if len(labels) != len(data):
        raise ValueError(f"{path} holds {len(data)} images but {len(labels)} labels; the file is damaged.")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"{path} holds labels outside 0-9; the file is damaged.")
    return data.reshape(-1, 3, 32, 32), labels
