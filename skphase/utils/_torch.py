"""Small torch helpers: seeding, batching, numpy conversion."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.utils import check_random_state

from ._images import all_finite
from ._sources import ImageSource

__all__ = ["make_generator", "seed_from_random_state", "iter_batches", "to_numpy", "map_batches"]


def seed_from_random_state(random_state):
    """An integer seed drawn from a ``random_state`` parameter (None, int or RandomState)."""
    return int(check_random_state(random_state).randint(0, 2**31 - 1))


def make_generator(
    random_state: int | np.random.RandomState | None,
    device: str | torch.device = "cpu",
) -> torch.Generator:
    """Make a :class:`torch.Generator` on ``device`` seeded from ``random_state``.

    Parameters
    ----------
    random_state : int, numpy.random.RandomState or None
        As scikit-learn's ``random_state``: an int gives the same generator on every call, a
        ``RandomState`` draws the seed from its stream, None from numpy's global one.
    device : str or torch.device, default="cpu"
        Device of the generator.

    Returns
    -------
    torch.Generator
        A generator seeded with an integer drawn from ``random_state``.

    See Also
    --------
    resolve_device : the device to put the generator on.

    Examples
    --------
    >>> import torch
    >>> from skphase.utils import make_generator
    >>> a = torch.rand(2, generator=make_generator(0))
    >>> b = torch.rand(2, generator=make_generator(0))
    >>> bool((a == b).all())
    True
    """
    generator = torch.Generator(device=device)
    generator.manual_seed(seed_from_random_state(random_state))
    return generator


def iter_batches(n, batch_size):
    """Yield ``slice`` objects that cover ``range(n)`` in chunks of ``batch_size``."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))


def to_numpy(tensor):
    """Detach a tensor, move it to the CPU and return a numpy array (numpy arrays pass through).

    bfloat16, which numpy lacks, becomes float32.
    """
    if isinstance(tensor, np.ndarray):
        return tensor
    tensor = tensor.detach()
    if tensor.dtype == torch.bfloat16:
        tensor = tensor.float()
    return tensor.cpu().numpy()


class _Batches:
    """The batches of ``X`` as ``(index, batch)``, with a length so that a progress bar knows its total."""

    def __init__(self, X, batch_size):
        self.X, self.batch_size = X, batch_size

    def __len__(self):
        return -(-len(self.X) // self.batch_size)

    def __iter__(self):
        if isinstance(self.X, ImageSource):
            yield from self.X.batches(self.batch_size)
            return
        for index in iter_batches(len(self.X), self.batch_size):
            batch = self.X[index]
            yield index, batch if isinstance(batch, torch.Tensor) else torch.from_numpy(np.array(batch, order="C"))


@torch.no_grad()
def map_batches(fn, X, *, batch_size, device, progress=None, check_finite=None, dtype=None, sample_shape=None):
    """Apply ``fn`` to ``X`` batch by batch on ``device``, writing every output into one numpy array.

    Only one batch of ``X`` is read and moved to ``device`` at a time. The
    output array (one per output when ``fn`` returns a tuple) is allocated from
    the shape and dtype of the first batch's output and filled in place, so the
    result is held in memory once. Each batch's output is copied once, into that
    array: ``fn`` may return a strided view (e.g. a permutation of its
    computation's layout) and leave the cast to ``dtype`` to that copy. With
    ``sample_shape``, ``fn`` may skip even that copy by writing into the array.

    Parameters
    ----------
    fn : callable
        Maps a batch on ``device`` to a tensor (or a tuple of tensors) whose
        first axis indexes the batch's samples.
    X : ImageSource, torch.Tensor or ndarray
        An :class:`~skphase.utils._sources.ImageSource` (read with its
        ``batches``), or a CPU tensor / array sliced along its first axis.
    batch_size : int
        Number of samples moved to ``device`` at a time; bounds memory.
    device : torch.device
    progress : callable or None
        Wraps the batch iterator (e.g. a tqdm factory) when given.
    check_finite : str or None
        When given, a batch whose output holds NaN or infinity, in ``fn``'s
        dtype or after the cast to ``dtype``, raises a ValueError naming
        ``check_finite`` (what computes ``fn``).
    dtype : numpy dtype or None
        dtype of the output arrays; None keeps the dtype of ``fn``'s outputs.
    sample_shape : tuple of int or None
        Shape of one sample's output, for an ``fn`` with one output that takes
        an ``out`` keyword: the array (of ``dtype``, then required) is allocated
        up front and ``fn(batch, out=rows)`` is given the rows of its batch as a
        tensor to write into, or ``out=None`` where it cannot (a device other
        than the CPU, samples not consecutive); what it returns is copied into
        the rows unless it is ``rows`` itself.

    Returns
    -------
    ndarray or tuple of ndarray
        Outputs of every batch, in the order of ``X``'s samples; bfloat16
        outputs are stored as float32.

    Raises
    ------
    ValueError
        On empty ``X``, or non-finite outputs when ``check_finite`` is given.
    """
    batches = _Batches(X, batch_size)
    if progress is not None:
        batches = progress(batches)
    n_samples, result = len(X), None
    if sample_shape is not None:
        if dtype is None:
            raise ValueError("map_batches needs the output dtype with sample_shape.")
        result = (np.empty((n_samples,) + tuple(sample_shape), dtype=dtype),)
    for index, batch in batches:
        index = index.numpy() if isinstance(index, torch.Tensor) else index
        batch = batch.to(device, non_blocking=True)
        rows = None
        if sample_shape is not None:
            if isinstance(index, slice) and torch.device(device).type == "cpu":
                rows = torch.from_numpy(result[0][index])
            out = fn(batch, out=rows)
        else:
            out = fn(batch)
        parts = out if isinstance(out, tuple) else (out,)
        if result is None:
            result = tuple(np.empty((n_samples,) + tuple(part.shape[1:]), dtype=dtype or _numpy_dtype(part))
                           for part in parts)
        for target, part in zip(result, parts):
            if rows is None or not _is_view_of_all(part, rows):
                _write_rows(target, index, part)
        if check_finite is not None:  # after the cast into the result, which may overflow too
            _check_finite_outputs([torch.from_numpy(target[index]) for target in result], batch, index, check_finite)
    if result is None:
        raise ValueError("map_batches needs at least one sample.")
    return result if isinstance(out, tuple) else result[0]


def _numpy_dtype(part):
    """The numpy dtype that stores ``part`` (a tensor or an array): float32 for bfloat16."""
    return part.dtype if isinstance(part, np.ndarray) else to_numpy(torch.empty(0, dtype=part.dtype)).dtype


def _is_view_of_all(tensor, rows):
    """Whether ``tensor`` is ``rows``' memory in ``rows``' layout (possibly reshaped)."""
    return (tensor.data_ptr() == rows.data_ptr() and tensor.numel() == rows.numel()
            and tensor.dtype == rows.dtype and tensor.is_contiguous())


def _write_rows(target, index, part):
    """``target[index] = part``, casting; a tensor is copied by torch (threaded, any device) into a slice."""
    if isinstance(part, torch.Tensor) and isinstance(index, slice):
        torch.from_numpy(target[index]).copy_(part.detach())
    else:
        target[index] = to_numpy(part)


def _check_finite_outputs(parts, batch, index, name):
    """Raise when an output of ``batch`` holds NaN or infinity (its input was checked finite)."""
    if all(all_finite(part) for part in parts):
        return
    finite = [torch.isfinite(part.reshape(part.shape[0], -1)).all(1).cpu() for part in parts]
    finite = torch.stack(finite).all(0) if len(finite) > 1 else finite[0]
    row = int((~finite).nonzero()[0, 0])
    position = (range(*index.indices(index.stop))[row] if isinstance(index, slice)
                else int(index[row]))
    largest = float(batch[row].abs().max()) if batch[row].numel() else 0.0
    raise ValueError(
        f"{name} produced NaN or infinite values for the image at index {position}, whose largest "
        f"absolute value is {largest:.3g}: the computation overflowed the range of "
        f"{str(parts[0].dtype).removeprefix('torch.')}. Rescale the images (e.g. to [0, 1])."
    )
