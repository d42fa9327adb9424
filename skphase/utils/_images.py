"""Validation of image batches: every estimator reads images through here."""

import math
import numbers

import numpy as np
import torch


def all_finite(data):
    """Whether a tensor or array holds no NaN or infinity, through reductions only.

    The minimum and the maximum are NaN when any value is, and infinite when any value is:
    no ``isfinite`` mask (a temporary as large as ``data``) is built.

    Parameters
    ----------
    data : torch.Tensor or ndarray
        Any dtype; integers and booleans are finite.

    Returns
    -------
    bool
    """
    if isinstance(data, torch.Tensor):
        if data.is_complex():
            data = torch.view_as_real(data)
        if not data.is_floating_point() or data.numel() == 0:
            return True
        low, high = torch.aminmax(data)  # one pass for both
        return bool(torch.isfinite(low) & torch.isfinite(high))
    if np.iscomplexobj(data):
        return all_finite(data.real) and all_finite(data.imag)
    if not np.issubdtype(data.dtype, np.floating) or data.size == 0:
        return True
    return all(bool(np.isfinite(float(extreme))) for extreme in (data.min(), data.max()))

__all__ = ["check_channels_first", "check_images", "check_packet_levels", "infer_image_shape", "is_integer",
           "min_image_size_error"]

#: Flat rows of ``3 * s**2`` values are refused without ``image_shape`` from this side on.
_MIN_COLOUR_SIDE = 4
#: Channel counts of channels-last images (grey, RGB, RGBA) recognised by :func:`check_images`.
_CHANNELS_LAST_SIZES = (1, 3, 4)


def infer_image_shape(n_features, image_shape=None):
    """Image shape ``(C, H, W)`` for flat rows of ``n_features`` values.

    Parameters
    ----------
    n_features : int
        Length of each flat row.
    image_shape : tuple of int or None
        ``(H, W)`` or ``(C, H, W)``. When None, a row whose length is a
        perfect square ``s**2`` is read as one ``s x s`` grey image and any
        other row as a one-pixel-high image ``1 x d`` (a 1-D signal), except
        rows of ``3 * s**2`` values with ``s >= 4`` (e.g. 3072 for CIFAR-10),
        which are refused: they are almost always flattened colour images.

    Returns
    -------
    tuple of int
        ``(C, H, W)``.

    Raises
    ------
    ValueError
        When ``image_shape`` does not hold ``n_features`` values, or when it is
        None and rows of ``3 * s**2`` values leave the layout ambiguous.
    """
    if image_shape is None:
        side = math.isqrt(n_features)
        if side * side == n_features:
            return (1, side, side)
        colour_side = math.isqrt(n_features // 3)
        if n_features % 3 == 0 and colour_side >= _MIN_COLOUR_SIDE and 3 * colour_side**2 == n_features:
            # Reading a flattened RGB image as a 1 x d signal silently mixes pixels of every
            # channel and row in each filter; the user must say which layout they mean.
            raise ValueError(
                f"Flat rows of {n_features} = 3 x {colour_side} x {colour_side} values look like "
                f"flattened colour images: pass image_shape=(3, {colour_side}, {colour_side}) (rows "
                f"flattened from (C, H, W) images), or image_shape=(1, 1, {n_features}) to read them "
                "as 1-D signals."
            )
        return (1, 1, n_features)
    shape = tuple(int(s) for s in image_shape)
    if len(shape) == 2:
        shape = (1,) + shape
    if len(shape) != 3 or any(s < 1 for s in shape):
        raise ValueError(
            f"image_shape={image_shape!r} must be (H, W) or (C, H, W) with positive sizes."
        )
    if math.prod(shape) != n_features:
        raise ValueError(
            f"image_shape={image_shape!r} holds {math.prod(shape)} values but each row of X "
            f"has {n_features}; pass the shape of one image."
        )
    return shape


def _as_tensor(X, dtype):
    if isinstance(X, torch.Tensor):
        X = X.detach()
        if X.is_complex():
            raise ValueError("Complex data not supported: X is complex; pass real-valued images.")
        return X.to(dtype=dtype)
    try:
        array = np.asarray(X)
    except Exception as exc:  # ragged lists and the like
        raise ValueError(f"X could not be read as an array: {exc}") from exc
    if np.iscomplexobj(array):
        raise ValueError("Complex data not supported: X is complex; pass real-valued images.")
    if array.dtype == object:
        array = array.astype(np.float64)  # numbers stored as objects; anything else raises
    elif not (np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.bool_)):
        raise ValueError(f"X must hold numbers, got an array of dtype {array.dtype}.")
    array = np.ascontiguousarray(array)
    if not array.flags.writeable:  # torch cannot wrap read-only memory (e.g. memmaps)
        array = array.copy()
    return torch.from_numpy(array).to(dtype=dtype)


def check_images(X, *, image_shape=None, dtype=torch.float32, min_samples=1, name="X"):
    """Validate a batch of images and return it as a ``(n, C, H, W)`` tensor.

    Parameters
    ----------
    X : array-like or torch.Tensor
        ``(n, C, H, W)``, ``(n, H, W)`` (one channel) or flat ``(n, d)``.
    image_shape : tuple of int or None
        Shape of one image for flat input; see :func:`infer_image_shape`.
        Ignored (but checked for consistency) for image-shaped input.
    dtype : torch.dtype, default=torch.float32
    min_samples : int, default=1
        Fewer samples raise a ValueError.
    name : str, default="X"
        Name used in error messages.

    Returns
    -------
    torch.Tensor
        Contiguous CPU tensor of shape ``(n, C, H, W)`` and the given dtype.

    Raises
    ------
    TypeError
        On sparse input.
    ValueError
        On a wrong number of dimensions, complex or non-numeric values, NaN or
        infinite values, too few samples, a flat row length that does not
        match ``image_shape`` (or ``3 * s**2`` values without it, see
        :func:`infer_image_shape`), or a channels-last layout (see
        :func:`check_channels_first`).
    """
    if hasattr(X, "tocsr") or hasattr(X, "toarray"):
        raise TypeError(f"{name} is a sparse matrix; skphase works on dense images. Use {name}.toarray().")
    tensor = _as_tensor(X, dtype)
    if tensor.ndim == 2:
        if tensor.shape[1] == 0:
            raise ValueError(
                f"Found array with 0 feature(s) (shape={tuple(tensor.shape)}) while a minimum of 1 is required."
            )
        shape = infer_image_shape(tensor.shape[1], image_shape)
        tensor = tensor.reshape((tensor.shape[0],) + shape)
    elif tensor.ndim == 3:
        tensor = tensor.unsqueeze(1)
    elif tensor.ndim != 4:
        raise ValueError(
            f"Reshape your data: {name} must have shape (n, C, H, W), (n, H, W) or flat (n, d) with image_shape; "
            f"got an array with {tensor.ndim} dimension(s) of shape {tuple(tensor.shape)}. "
            "Reshape a single image with X[None]."
        )
    elif image_shape is None or tuple(int(v) for v in image_shape) != tuple(tensor.shape[1:]):
        check_channels_first(tensor.shape, name)  # an image_shape equal to (C, H, W) confirms the layout
    if image_shape is not None and _disagrees_with_image_shape(tensor, image_shape):
        raise ValueError(
            f"{name} has images of shape {tuple(tensor.shape[1:])} but image_shape={tuple(image_shape)}; "
            "drop image_shape or make it match."
        )
    if 0 in tensor.shape[1:]:
        raise ValueError(f"{name} has images of shape {tuple(tensor.shape[1:])}, which hold no pixel; "
                         "every image needs at least one channel, row and column.")
    n = tensor.shape[0]
    if n < min_samples:
        raise ValueError(
            f"Found array with {n} sample(s) (shape={tuple(tensor.shape)}) while a minimum of "
            f"{min_samples} is required."
        )
    if not all_finite(tensor):
        raise ValueError(f"Input {name} contains NaN or infinity; remove or impute those values first.")
    return tensor.contiguous()


def check_channels_first(shape, name="X"):
    """Refuse a 4-D ``shape`` that is almost certainly channels-last ``(n, H, W, C)``.

    The last axis holds 1, 3 or 4 values (grey, RGB, RGBA) while axes 1 and 2
    both hold more than 4: read as ``(n, C, H, W)`` that would be many channels
    of images a few pixels wide, which is almost never meant. :func:`check_images`
    skips this check when ``image_shape`` equals ``(C, H, W)`` of the batch.

    Parameters
    ----------
    shape : tuple of int
        Shape of a 4-D batch.
    name : str, default="X"

    Raises
    ------
    ValueError
        Saying how to pass ``(n, C, H, W)`` instead.
    """
    n, first, second, last = (int(s) for s in shape)
    if last in _CHANNELS_LAST_SIZES and first > max(_CHANNELS_LAST_SIZES) and second > max(_CHANNELS_LAST_SIZES):
        raise ValueError(
            f"{name} has shape {(n, first, second, last)}, which looks like channels-last images "
            f"(n, H, W, C) with C = {last}; skphase reads images as (n, C, H, W). Pass "
            f"{name}.transpose(0, 3, 1, 2) (numpy) or {name}.permute(0, 3, 1, 2) (torch); if the layout "
            f"really is (n, C, H, W), say so with image_shape={(first, second, last)}."
        )


def _disagrees_with_image_shape(tensor, image_shape):
    """True when an image-shaped batch disagrees with ``image_shape``."""
    expected = tuple(int(s) for s in image_shape)
    return tuple(tensor.shape[1:])[-len(expected):] != expected


def min_image_size_error(image_hw, min_hw, reason):
    """A ValueError for images smaller than an estimator needs.

    Parameters
    ----------
    image_hw : tuple of int
        ``(H, W)`` of the input images.
    min_hw : tuple of int
        Smallest ``(H, W)`` accepted.
    reason : str
        What needs that size, e.g. ``"n_blocks=4 subsamplings by 2"``.
    """
    return ValueError(
        f"Images of size {tuple(image_hw)} are too small for {reason}: at least "
        f"{tuple(min_hw)} is needed. Use fewer scales/blocks or larger images."
    )


def is_integer(value):
    """True for Python and numpy integers (not bools)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_packet_levels(J):
    """Validate ``J``, the number of levels of a wavelet packet tree.

    Parameters
    ----------
    J : int
        Number of levels; at least 1.

    Returns
    -------
    int
        ``J`` as a Python int.

    Raises
    ------
    ValueError
        If ``J`` is not an integer >= 1.
    """
    if not is_integer(J) or J < 1:
        raise ValueError(f"J (number of packet levels) must be an integer >= 1, got {J!r}.")
    return int(J)
