"""Image sources: the input as given (any dtype, a memmap, a torch Dataset), read one batch at a time.

Estimators never convert a whole input array at once. They wrap it in an
:class:`ImageSource`, which validates it (shape, numbers, finite values) without
copying, and then read float batches from it with :meth:`ImageSource.read` or
:meth:`ImageSource.batches`. Memory then grows with ``batch_size``, not with the
number of images.

What the values mean is the same for every estimator: pixel values are read as
the numbers they are, whatever their dtype. A ``uint8`` image holding 0-255 is
read as floats 0.0-255.0 (no rescaling to [0, 1]); divide by 255 yourself if the
model was built for [0, 1] images.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterator

import numpy as np
import torch
from numpy.typing import ArrayLike

from ._images import all_finite, check_images, infer_image_shape

__all__ = ["ImageSource", "ArrayImages", "DatasetImages", "as_image_source", "is_torch_dataset"]


def is_torch_dataset(X):
    """True for a map-style :class:`torch.utils.data.Dataset` (not a tensor)."""
    return isinstance(X, torch.utils.data.Dataset) and not isinstance(X, torch.Tensor)


class ImageSource:
    """Images ``(n, C, H, W)`` read one batch at a time as float CPU tensors.

    Attributes
    ----------
    n_samples : int
        Number of images.
    image_shape : tuple of int
        ``(C, H, W)`` of one image.
    dtype : torch.dtype
        Floating dtype of the batches :meth:`read` returns.
    input_dtype : torch.dtype or None
        Dtype of the values as stored (for a Dataset, of its first image);
        None when torch has no such dtype.

    See Also
    --------
    as_image_source : wrap images of any supported kind in a source.

    Examples
    --------
    >>> import numpy as np
    >>> from skphase.utils import as_image_source
    >>> source = as_image_source(np.zeros((10, 1, 8, 8)))
    >>> source.n_samples, source.image_shape
    (10, (1, 8, 8))
    >>> [tuple(images.shape) for _, images in source.batches(4)]
    [(4, 1, 8, 8), (4, 1, 8, 8), (2, 1, 8, 8)]
    """

    n_samples: int
    image_shape: tuple
    dtype: torch.dtype
    input_dtype = None

    def __len__(self):
        return self.n_samples

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """``(n, C, H, W)``."""
        return (self.n_samples,) + tuple(self.image_shape)

    def read(self, index: slice | np.ndarray | torch.Tensor) -> torch.Tensor:
        """Read the images at ``index`` as a float CPU tensor.

        The tensor never shares memory with the stored images: callers may write to it.

        Parameters
        ----------
        index : slice, 1-D int ndarray or 1-D int torch.Tensor
            The images to read.

        Returns
        -------
        torch.Tensor of shape (len(index), C, H, W)
            The images, of dtype :attr:`dtype`.
        """
        raise NotImplementedError

    def labels(self) -> np.ndarray | None:
        """Return the labels carried by the source itself, if any.

        Returns
        -------
        ndarray of shape (n_samples,) or None
            The labels of a Dataset yielding ``(image, label)`` pairs; None for images alone.
        """
        return None

    def batches(
        self,
        batch_size: int,
        order: torch.Tensor | None = None,
    ) -> Iterator[tuple[slice | torch.Tensor, torch.Tensor]]:
        """Iterate over the images ``batch_size`` at a time, in the order ``order``.

        Parameters
        ----------
        batch_size : int
            Images per batch (the last batch may be smaller).
        order : 1-D int64 tensor or None
            Indices to visit, e.g. a shuffled permutation; None visits all images in turn.

        Yields
        ------
        index : slice or 1-D int64 tensor
            The indices of the batch.
        images : torch.Tensor of shape (b, C, H, W)
            The images of the batch, as :meth:`read` returns them.
        """
        for index in _chunks(self.n_samples, batch_size, order):
            yield index, self.read(index)

    def subset(self, indices: np.ndarray | torch.Tensor) -> ImageSource:
        """Return the images at ``indices`` as another source, without reading them.

        Parameters
        ----------
        indices : 1-D int ndarray or torch.Tensor
            The images to keep, in this order.

        Returns
        -------
        ImageSource
            A source of ``len(indices)`` images.
        """
        raise NotImplementedError

    def to_tensor(self) -> torch.Tensor:
        """Read every image into one float tensor.

        Returns
        -------
        torch.Tensor of shape (n_samples, C, H, W)
            The images, for estimators that keep their data in memory.
        """
        return self.read(slice(0, self.n_samples))


def _chunks(n, batch_size, order):
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    if order is None:
        for start in range(0, n, batch_size):
            yield slice(start, min(start + batch_size, n))
    else:
        for start in range(0, len(order), batch_size):
            yield order[start:start + batch_size]


class ArrayImages(ImageSource):
    """A numpy array, memmap or torch tensor of images, kept in its own dtype.

    Its values are checked for NaN and infinity once, without a copy; each
    :meth:`read` copies only the rows it returns, into ``dtype``.

    Parameters
    ----------
    X : ndarray, numpy.memmap or torch.Tensor
        ``(n, C, H, W)``, ``(n, H, W)`` or flat ``(n, d)``; read-only arrays are fine.
    image_shape : tuple of int or None
        See ``skphase.utils._images.infer_image_shape``.
    dtype : torch.dtype, default=torch.float32
    min_samples : int, default=1
    name : str, default="X"
    """

    def __init__(self, X, *, image_shape=None, dtype=torch.float32, min_samples=1, name="X"):
        self.dtype = dtype
        self._data = _as_array(X, name)
        # Validate the layout on an empty slice (no data read), then the values chunk by chunk.
        empty = check_images(self._data[:0], image_shape=image_shape, min_samples=0, name=name,
                             dtype=dtype) if self._data.ndim != 2 else None
        if self._data.ndim == 2:
            if self._data.shape[1] == 0:
                raise ValueError(f"Found array with 0 feature(s) (shape={self._data.shape}) while a "
                                 "minimum of 1 is required.")
            self.image_shape = infer_image_shape(self._data.shape[1], image_shape)
        else:
            self.image_shape = tuple(empty.shape[1:])
        self.n_samples = int(self._data.shape[0])
        if self.n_samples < min_samples:
            raise ValueError(
                f"Found array with {self.n_samples} sample(s) (shape={tuple(self._data.shape)}) while a "
                f"minimum of {min_samples} is required."
            )
        self._name = name
        self.input_dtype = _torch_dtype(self._data.dtype)
        _check_finite(self._data, name)

    def read(self, index):
        if isinstance(index, torch.Tensor):
            index = index.numpy() if not isinstance(self._data, torch.Tensor) else index
        # A slice is a view of the stored images and must be copied; rows picked by an index
        # array are a fresh copy already. Either way the rows are copied once, into ``dtype``.
        view = isinstance(index, slice)
        rows = self._data[index]
        if isinstance(rows, torch.Tensor):
            tensor = rows.to(dtype=self.dtype, memory_format=torch.contiguous_format, copy=view)
        elif self.dtype in _NUMPY_DTYPES:
            dtype = _NUMPY_DTYPES[self.dtype]
            rows = np.array(rows, dtype=dtype, order="C") if view else np.ascontiguousarray(rows, dtype=dtype)
            tensor = torch.from_numpy(rows)
        else:  # a dtype numpy lacks (bfloat16)
            tensor = torch.from_numpy(np.array(rows, order="C")).to(self.dtype)
        return tensor.reshape((-1,) + self.image_shape)

    def subset(self, indices):
        out = object.__new__(ArrayImages)
        out.__dict__.update(self.__dict__)
        if isinstance(self._data, torch.Tensor):
            out._data = self._data[torch.as_tensor(indices)]
        else:
            out._data = self._data[np.asarray(indices)]
        out.n_samples = int(out._data.shape[0])
        return out


#: Batch dtypes numpy holds too, so that a batch is cast while it is copied.
_NUMPY_DTYPES = {torch.float16: np.float16, torch.float32: np.float32, torch.float64: np.float64}


def _torch_dtype(dtype):
    """The torch dtype of a numpy or torch ``dtype``, or None when torch has none."""
    if isinstance(dtype, torch.dtype):
        return dtype
    try:
        return torch.from_numpy(np.empty(0, dtype=dtype)).dtype
    except TypeError:
        return None


def _as_array(X, name):
    """``X`` as an ndarray or tensor with numeric values, without copying numeric arrays."""
    if hasattr(X, "tocsr") or hasattr(X, "toarray"):
        raise TypeError(f"{name} is a sparse matrix; skphase works on dense images. Use {name}.toarray().")
    if isinstance(X, torch.Tensor):
        X = X.detach()
        if X.is_complex():
            raise ValueError(f"Complex data not supported: {name} is complex; pass real-valued images.")
        return X.cpu() if X.device.type == "meta" else X
    if not isinstance(X, np.ndarray):
        try:
            X = np.asarray(X)
        except ValueError as exc:  # ragged lists and the like
            raise ValueError(
                f"{name} could not be read as an array of images: {exc}. Pass images of one shape "
                "as an (n, C, H, W), (n, H, W) or (n, d) array."
            ) from exc
    if np.iscomplexobj(X):
        raise ValueError(f"Complex data not supported: {name} is complex; pass real-valued images.")
    if X.dtype == object:
        X = X.astype(np.float64)  # numbers stored as objects; anything else raises
    elif not (np.issubdtype(X.dtype, np.number) or np.issubdtype(X.dtype, np.bool_)):
        raise ValueError(f"{name} must hold numbers, got an array of dtype {X.dtype}.")
    return X


def _check_finite(data, name):
    """Raise on NaN or inf, through reductions that allocate nothing the size of ``data``."""
    if not all_finite(data):
        raise ValueError(f"Input {name} contains NaN or infinity; remove or impute those values first.")


class DatasetImages(ImageSource):
    """A map-style :class:`torch.utils.data.Dataset` read through a :class:`~torch.utils.data.DataLoader`.

    Items are images ``(C, H, W)`` / ``(H, W)`` (tensors or arrays), or ``(image, label)``
    pairs; a torchvision ``ImageFolder`` with a ``ToTensor`` transform works as it is.

    Parameters
    ----------
    dataset : torch.utils.data.Dataset
    num_workers : int, default=0
        Worker processes of the DataLoader.
    dtype : torch.dtype, default=torch.float32
    min_samples : int, default=1
    name : str, default="X"
    """

    def __init__(self, dataset, *, num_workers=0, dtype=torch.float32, min_samples=1, name="X"):
        try:
            n = len(dataset)
        except TypeError as exc:
            raise TypeError(f"{name} is a Dataset without __len__; pass a map-style Dataset.") from exc
        if n < min_samples:
            raise ValueError(f"Found a Dataset with {n} sample(s) while a minimum of {min_samples} is required.")
        self.dataset, self.num_workers, self.dtype, self._name = dataset, int(num_workers), dtype, name
        self.n_samples = n
        first = dataset[0] if n else None
        self._has_labels = isinstance(first, (tuple, list))
        image = _as_array(first[0] if self._has_labels else first, name)
        self.input_dtype = _torch_dtype(image.dtype)
        self.image_shape = tuple(check_images(image[None], dtype=dtype, name=name).shape[1:])

    def _loader(self, batch_sampler):
        return torch.utils.data.DataLoader(self.dataset, batch_sampler=batch_sampler,
                                           num_workers=self.num_workers)

    def _images(self, batch):
        images = batch[0] if self._has_labels else batch
        images = torch.as_tensor(images)
        if images.ndim == 3:
            images = images.unsqueeze(1)
        if tuple(images.shape[1:]) != self.image_shape:
            raise ValueError(f"{self._name} yields images of shape {tuple(images.shape[1:])} after images of "
                             f"shape {self.image_shape}; every image must have one shape.")
        images = images.to(self.dtype).contiguous()
        _check_finite(images, self._name)
        return images

    def read(self, index):
        if isinstance(index, slice):
            index = range(*index.indices(self.n_samples))
        index = [int(i) for i in index]
        return next(iter(self.batches(len(index) or 1, torch.as_tensor(index, dtype=torch.int64))))[1]

    def batches(self, batch_size, order=None):
        chunks = [c if not isinstance(c, slice) else torch.arange(c.start, c.stop)
                  for c in _chunks(self.n_samples, batch_size, order)]
        sampler = [chunk.tolist() for chunk in chunks]
        for index, batch in zip(chunks, self._loader(sampler)):
            yield index, self._images(batch)

    def labels(self):
        """The labels of every item: ``dataset.targets`` when it has them, else one pass over the items."""
        if not self._has_labels:
            return None
        targets = getattr(self.dataset, "targets", None)
        if targets is not None and len(targets) == self.n_samples:
            return np.asarray(targets)
        return np.asarray([self.dataset[i][1] for i in range(self.n_samples)])

    def subset(self, indices):
        out = object.__new__(DatasetImages)
        out.__dict__.update(self.__dict__)
        indices = [int(i) for i in indices]
        out.dataset = torch.utils.data.Subset(self.dataset, indices)
        parent_targets = getattr(self.dataset, "targets", None)
        if parent_targets is not None and len(parent_targets) == self.n_samples:
            out.dataset.targets = [parent_targets[i] for i in indices]
        out.n_samples = len(indices)
        return out


def as_image_source(
    X: ArrayLike | torch.utils.data.Dataset | ImageSource,
    *,
    image_shape: tuple[int, ...] | None = None,
    dtype: torch.dtype = torch.float32,
    min_samples: int = 1,
    num_workers: int = 0,
    name: str = "X",
) -> ImageSource:
    """Wrap ``X`` in the :class:`ImageSource` that reads it batch by batch.

    Parameters
    ----------
    X : array-like, numpy.memmap, torch.Tensor, torch Dataset or ImageSource
        The images: ``(n, C, H, W)``, ``(n, H, W)`` or flat ``(n, d)`` rows with ``image_shape``; a
        Dataset yields an image or an ``(image, label)`` pair per index.
    image_shape : tuple of int or None
        ``(H, W)`` or ``(C, H, W)`` of flat rows.
    dtype : torch.dtype, default=torch.float32
        Dtype of the batches read.
    min_samples : int, default=1
        Fewest images accepted.
    num_workers : int, default=0
        DataLoader workers, for a Dataset.
    name : str, default="X"
        Name of the argument, in error messages.

    Returns
    -------
    ImageSource
        ``X`` itself when it is already a source.

    See Also
    --------
    ImageSource : what the returned source offers.

    Examples
    --------
    >>> import numpy as np
    >>> from skphase.utils import as_image_source
    >>> as_image_source(np.zeros((5, 64)), image_shape=(8, 8)).image_shape
    (1, 8, 8)
    """
    if isinstance(X, ImageSource):
        if X.dtype == dtype:
            return X
        out = object.__new__(type(X))  # the same images, read in another dtype
        out.__dict__.update(X.__dict__)
        out.dtype = dtype
        return out
    if is_torch_dataset(X):
        return DatasetImages(X, num_workers=num_workers, dtype=dtype, min_samples=min_samples, name=name)
    if isinstance(num_workers, numbers.Integral) and num_workers < 0:
        raise ValueError(f"num_workers must be >= 0, got {num_workers}.")
    return ArrayImages(X, image_shape=image_shape, dtype=dtype, min_samples=min_samples, name=name)
