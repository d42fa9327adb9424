"""The IDX file format of MNIST and Fashion-MNIST: one reader and one loader for both."""

import gzip
import numbers

import numpy as np

__all__ = ["IDX_SPLITS", "load_idx_dataset", "read_idx"]

#: File stems of the two splits, as the datasets' authors distribute them.
IDX_SPLITS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _idx_file(folder, stem):
    """The gzipped file of ``stem`` in ``folder`` when present, else the plain one (None if neither)."""
    for name in (stem + ".gz", stem):
        if (folder / name).exists():
            return folder / name
    return None


def read_idx(path):
    """Read an IDX file of unsigned bytes, gzipped (``.gz``) or not, into a numpy array."""
    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rb") as handle:
            data = handle.read()
    except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError
        raise ValueError(f"{path} could not be read ({type(exc).__name__}: {exc}); the file is damaged: "
                         "install or download it again.") from exc
    if len(data) < 4 or data[:2] != b"\x00\x00" or data[2] != 0x08:
        raise ValueError(f"{path} is not an IDX file of unsigned bytes.")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    array = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if array.size != np.prod(shape):
        raise ValueError(f"{path} is truncated: expected {np.prod(shape)} values, found {array.size}.")
    return array.reshape(shape)


def load_idx_dataset(name, candidates, subset, how_to_install, n_samples=None, random_state=None):
    """Images in [0, 1] of shape (n, 1, H, W) and int64 labels of one split of an IDX dataset.

    Parameters
    ----------
    name : str
        The dataset's name, for error messages.
    candidates : list of pathlib.Path
        Folders searched in order; the first holding all four files is read.
    subset : {"train", "test"}
    how_to_install : str
        Appended to the error raised when no candidate holds the files.
    n_samples : int or None
        Keep a random subset of this many images, drawn with ``random_state``
        and kept in file order.
    random_state : int, RandomState or None
    """
    if subset not in IDX_SPLITS:
        raise ValueError(f"subset must be 'train' or 'test', got {subset!r}.")
    if n_samples is not None and (isinstance(n_samples, bool) or not isinstance(n_samples, numbers.Integral)):
        raise ValueError(f"n_samples must be an integer or None, got {n_samples!r}.")
    stems = [stem for pair in IDX_SPLITS.values() for stem in pair]
    folder = next((f for f in candidates if all(_idx_file(f, stem) is not None for stem in stems)), None)
    if folder is None:
        searched = ", ".join(str(c) for c in candidates)
        raise FileNotFoundError(f"{name} was not found (looked in: {searched}). {how_to_install}")
    images_stem, labels_stem = IDX_SPLITS[subset]
    images = read_idx(_idx_file(folder, images_stem))
    labels = read_idx(_idx_file(folder, labels_stem)).astype(np.int64)
    if len(images) != len(labels):
        raise ValueError(f"{folder} holds {len(images)} {subset} images but {len(labels)} labels.")
    if n_samples is not None:
        from sklearn.utils import check_random_state

        if not 0 < n_samples <= len(labels):
            raise ValueError(f"n_samples must be in [1, {len(labels)}], got {n_samples}.")
        keep = np.sort(check_random_state(random_state).choice(len(labels), n_samples, replace=False))
        images, labels = images[keep], labels[keep]
    return (images.astype(np.float32) / 255.0)[:, None], labels
