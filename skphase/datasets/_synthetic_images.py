"""Synthetic image tasks of the ConvRFM paper: the star task and images in a noise frame.

Both tasks need features that are local and found anywhere in the image: a
small pattern at an unknown place. A kernel that compares whole images
patch-position by patch-position sees mostly noise; learning which patch
directions matter (the patch AGOP) removes it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike

from ..utils import make_generator
from ..utils._images import check_images, is_integer
from ._checks import check_finite_number

__all__ = ["make_noisy_frame_task", "make_star_task", "star_pattern"]


# The star of the authors' generator (aradha/agop_feature_learning,
# kernel_machine_agop/conv_rfm/crfm_src/star_dataset.py, ``draw_star``): a
# five-pointed star of 28 pixels in a 7 x 7 box, redrawn here as a picture.
_STAR = (
    "...#...",
    "..###..",
    "#######",
    ".#####.",
    "..###..",
    ".#####.",
    ".##.##.",
)

# Inclusive range of the star box's top-left (row, column) in the authors'
# 32 x 32 images: their offsets are uniform in [0, 17] (both ends drawn) and
# the star is drawn 3 rows down and 7 columns right of the offset.
_PAPER_CORNER_RANGE = ((3, 20), (7, 24))


def star_pattern() -> np.ndarray:
    """The 7 x 7 five-pointed star of the ConvRFM star task: 28 ones, zeros elsewhere.

    Returns
    -------
    ndarray of shape (7, 7), float32
        The star, one where it is drawn.

    See Also
    --------
    make_star_task : the task that draws this star in noise images.

    Examples
    --------
    >>> star_pattern().astype(int)
    array([[0, 0, 0, 1, 0, 0, 0],
           [0, 0, 1, 1, 1, 0, 0],
           [1, 1, 1, 1, 1, 1, 1],
           [0, 1, 1, 1, 1, 1, 0],
           [0, 0, 1, 1, 1, 0, 0],
           [0, 1, 1, 1, 1, 1, 0],
           [0, 1, 1, 0, 1, 1, 0]])
    >>> int(star_pattern().sum())
    28
    """
    return np.array([[char == "#" for char in row] for row in _STAR], dtype=np.float32)


def make_star_task(
    n_samples: int = 100,
    *,
    image_size: int = 32,
    n_channels: int = 3,
    noise_std: float = 0.3,
    star_value: float = 1.0,
    star_channels: tuple[int, ...] = (0, 1),
    corner_range: tuple[tuple[int, int], tuple[int, int]] | None = _PAPER_CORNER_RANGE,
    random_state: int | np.random.RandomState | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Generate the star task of the ConvRFM paper: a small star to detect in noise images.

    Follows the authors' generator (``star_dataset`` in
    aradha/agop_feature_learning, ``kernel_machine_agop/conv_rfm``). Every
    image is Gaussian noise ``N(0, noise_std^2)`` of shape
    ``(n_channels, image_size, image_size)``; in images of class 1 the 28
    pixels of a star (:func:`star_pattern`) are set to ``star_value`` (they
    replace the noise) in the channels ``star_channels``, at a place drawn
    uniformly within ``corner_range``. Half the images, rounded down, are of
    class 1, in random order: the authors draw one such balanced, shuffled
    pool and split it into training and test sets, so a training set taken
    as the first ``n_train`` images is not exactly balanced either.

    Parameters
    ----------
    n_samples : int, default=100
        Number of images.
    image_size : int, default=32
        Side of the square images.
    n_channels : int, default=3
        Channels of the images.
    noise_std : float, default=0.3
        Standard deviation of the Gaussian noise.
    star_value : float, default=1.0
        Value the star's pixels are set to.
    star_channels : tuple of int, default=(0, 1)
        Channels the star is drawn in (the authors': the first two of three).
    corner_range : pair of (int, int), or None, default=((3, 20), (7, 24))
        Inclusive ``((row_min, row_max), (col_min, col_max))`` of the star's
        7 x 7 box's top-left corner; the default is the authors' range in
        32 x 32 images (the star never touches the top rows or the left
        columns). None draws it anywhere the star fits.
    random_state : int, RandomState or None
        Seeds the noise, the star positions and the order of the images.

    Returns
    -------
    X : ndarray of shape (n_samples, n_channels, image_size, image_size), float32
        The noise images, a star in those of class 1.
    y : ndarray of shape (n_samples,), int64
        1 where a star is present.

    See Also
    --------
    star_pattern : the star drawn in the images of class 1.
    make_noisy_frame_task : the other synthetic task of the ConvRFM paper.

    Examples
    --------
    >>> X, y = make_star_task(10, random_state=0)
    >>> X.shape, int(y.sum())
    ((10, 3, 32, 32), 5)
    """
    if not is_integer(n_samples) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}.")
    star_value = check_finite_number(star_value, "star_value")
    noise_std = check_finite_number(noise_std, "noise_std", minimum=0)
    pattern = star_pattern()
    size = pattern.shape[0]
    last = image_size - size  # largest corner index at which the star fits
    if last < 0:
        raise ValueError(f"The {size} x {size} star does not fit in images of size {image_size}; "
                         "use larger images.")
    if corner_range is None:
        corner_range = ((0, last), (0, last))
    (row_min, row_max), (col_min, col_max) = corner_range
    if not 0 <= row_min <= row_max <= last or not 0 <= col_min <= col_max <= last:
        raise ValueError(f"corner_range={corner_range!r} puts the star outside {image_size} x {image_size} "
                         f"images; corners must lie in [0, {last}] (or pass corner_range=None).")
    channels = list(star_channels)
    if not channels or min(channels) < 0 or max(channels) >= n_channels:
        raise ValueError(f"star_channels={star_channels!r} must name channels in [0, {n_channels}).")
    generator = make_generator(random_state)
    X = noise_std * torch.randn(n_samples, n_channels, image_size, image_size, generator=generator)
    y = (torch.arange(n_samples) < n_samples // 2).long()
    y = y[torch.randperm(n_samples, generator=generator)]
    positives = torch.nonzero(y).flatten()
    rows = torch.randint(row_min, row_max + 1, (len(positives),), generator=generator)
    cols = torch.randint(col_min, col_max + 1, (len(positives),), generator=generator)
    # Set the star's pixels of every positive image at its own corner without
    # a loop over samples: index arrays of shape (n_pos, n_star_pixels).
    star_r, star_c = (torch.as_tensor(index) for index in np.nonzero(pattern))
    grid_r = rows[:, None] + star_r[None, :]
    grid_c = cols[:, None] + star_c[None, :]
    sample = positives[:, None].expand_as(grid_r)
    for channel in channels:  # a loop over (at most n_channels) channels, not samples
        X[sample, channel, grid_r, grid_c] = star_value
    return X.numpy().astype(np.float32), y.numpy().astype(np.int64)


# The authors' noisy-MNIST generator (aradha/convrfm, ``gen_toy_data.py``,
# ``gen_toy_mnist_backgrounds``; loaded by ``get_toy_mnist`` in
# ``deep_conv_rfm/dataset.py`` there and in aradha/agop_feature_learning,
# ``kernel_machine_agop/conv_rfm/crfm_src/dataset.py``): frames of
# ``torch.randn`` scaled by ``0.5 * sigma ** 0.5`` with ``sigma = 1.0`` in
# ``CRFM_noisy_mnist.ipynb`` (the run reporting 52.0 -> 59.4 %), so N(0, 0.5^2);
# the digit's top-left corner drawn by ``torch.randint(high=42 - 28)``, i.e. in
# [0, 13]: the last offset, 14, is never drawn.
_PAPER_NOISE_STD = 0.5


def _frame_corner_range(corner_range, last, axis_name):
    """Inclusive ``(min, max)`` of the corner along one axis; ``last`` is the largest corner that fits."""
    if corner_range == "paper":
        # torch.randint(high=last) in the authors' code: `last` itself is excluded,
        # unless it is the only place (image as large as the frame), where they would fail.
        return 0, max(last - 1, 0)
    if corner_range is None:
        return 0, last
    low, high = (int(v) for v in corner_range)
    if not 0 <= low <= high <= last:
        raise ValueError(f"corner_range puts the images outside the frame along the {axis_name}: "
                         f"({low}, {high}) must satisfy 0 <= min <= max <= {last} (or pass corner_range=None "
                         "or 'paper').")
    return low, high


def make_noisy_frame_task(
    images: ArrayLike,
    labels: ArrayLike | None = None,
    *,
    frame_size: int | tuple[int, int] = 42,
    noise_std: float = _PAPER_NOISE_STD,
    corner_range: str | tuple[tuple[int, int], tuple[int, int]] | None = "paper",
    return_offsets: bool = False,
    random_state: int | np.random.RandomState | None = None,
) -> np.ndarray | tuple[np.ndarray, ...]:
    """Paste each image at a random place in a larger Gaussian-noise frame.

    The noisy-MNIST task of the ConvRFM paper (Radhakrishnan et al., arXiv
    2309.00570), as the authors generate it (aradha/convrfm,
    ``gen_toy_data.py`` and ``get_toy_mnist`` in ``deep_conv_rfm/dataset.py``;
    the same loader in aradha/agop_feature_learning,
    ``kernel_machine_agop/conv_rfm/crfm_src/dataset.py``, used by
    ``CRFM_noisy_mnist.ipynb``): every image gets its own frame of i.i.d.
    ``N(0, noise_std^2)`` noise, and the image *replaces* the noise in a
    window whose top-left corner is drawn uniformly and independently along
    each axis. Inside that window there is no noise, the image's own
    background included. Works with any image set; labels are not used
    (the authors keep the first ``n`` images of each MNIST split, with
    their natural class frequencies, as pixel values in [0, 1]:
    ``torchvision.transforms.ToTensor``, no standardisation -- pass images
    scaled that way, e.g. from :func:`load_fashion_mnist`, to match).

    Parameters
    ----------
    images : array-like of shape (n, C, H, W), (n, H, W) or flat (n, d)
        All channels are pasted (the authors' MNIST has one).
    labels : array-like of shape (n,) or None
        Returned unchanged (as an ndarray) when given.
    frame_size : int or pair of int, default=42
        ``(H_frame, W_frame)``; at least the image size. The authors': 42
        for 28 x 28 digits.
    noise_std : float, default=0.5
        Standard deviation of the frame's noise. The authors' is
        ``0.5 * sqrt(sigma)`` with ``sigma = 1.0`` in their noisy-MNIST
        notebook, i.e. 0.5 (their frames are ``torch.randn`` scaled by it).
    corner_range : "paper", None, or pair of (int, int), default="paper"
        Where the image's top-left corner may fall. ``"paper"``: the
        authors' ``torch.randint(high=H_frame - H)``, i.e. rows in
        ``[0, H_frame - H - 1]`` (and columns likewise), so the image never
        touches the frame's last row or column -- ``[0, 13]`` for 28 x 28
        images in a 42 x 42 frame (when the image is as large as the frame
        it is placed at 0). None: anywhere the image fits,
        ``[0, H_frame - H]``. A pair ``((row_min, row_max), (col_min,
        col_max))``: inclusive ranges of your own.
    return_offsets : bool, default=False
        Also return the ``(row, col)`` of each image's top-left corner.
    random_state : int, RandomState or None
        Seeds the noise and the corners (the authors' generator is unseeded).

    Returns
    -------
    X : ndarray of shape (n, C, H_frame, W_frame), float32
        The images pasted into their noise frames.
    y : ndarray of shape (n,)
        Only when ``labels`` is given.
    offsets : ndarray of shape (n, 2), int64
        Only when ``return_offsets``.

    See Also
    --------
    make_star_task : the other synthetic task of the ConvRFM paper.

    Examples
    --------
    >>> import numpy as np
    >>> X, offsets = make_noisy_frame_task(np.ones((4, 1, 8, 8)), frame_size=12, return_offsets=True,
    ...                                    random_state=0)
    >>> X.shape, bool(np.all(X[0, 0, offsets[0, 0], offsets[0, 1]:offsets[0, 1] + 8] == 1))
    ((4, 1, 12, 12), True)
    >>> bool(offsets.max() <= 12 - 8 - 1)  # the authors' range: the last offset is never drawn
    True
    """
    X = check_images(images, name="images")
    n, n_channels, height, width = X.shape
    sizes: Any = (frame_size, frame_size) if is_integer(frame_size) else frame_size
    frame_h, frame_w = (int(size) for size in sizes)
    if frame_h < height or frame_w < width:
        raise ValueError(f"frame_size={(frame_h, frame_w)} is smaller than the images {(height, width)}; "
                         "use a frame at least as large as the images.")
    noise_std = check_finite_number(noise_std, "noise_std", minimum=0)
    row_range: Any
    col_range: Any
    if isinstance(corner_range, str):
        if corner_range != "paper":
            raise ValueError(f"corner_range must be 'paper', None or ((row_min, row_max), (col_min, col_max)), "
                             f"got {corner_range!r}.")
        row_range, col_range = "paper", "paper"
    elif corner_range is None:
        row_range, col_range = None, None
    else:
        try:
            row_range, col_range = corner_range
            row_range, col_range = tuple(row_range), tuple(col_range)
        except (TypeError, ValueError):
            raise ValueError(f"corner_range must be 'paper', None or ((row_min, row_max), (col_min, col_max)), "
                             f"got {corner_range!r}.") from None
        if len(row_range) != 2 or len(col_range) != 2:
            raise ValueError(f"corner_range must be 'paper', None or ((row_min, row_max), (col_min, col_max)), "
                             f"got {corner_range!r}.")
    row_min, row_max = _frame_corner_range(row_range, frame_h - height, "rows")
    col_min, col_max = _frame_corner_range(col_range, frame_w - width, "columns")
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (n,):
            raise ValueError(f"labels must have shape ({n},), got {labels.shape}.")
    generator = make_generator(random_state)
    frame = noise_std * torch.randn(n, n_channels, frame_h, frame_w, generator=generator)
    rows = torch.randint(row_min, row_max + 1, (n,), generator=generator)
    cols = torch.randint(col_min, col_max + 1, (n,), generator=generator)
    grid_r = (rows[:, None, None] + torch.arange(height)[None, :, None]).expand(-1, height, width)
    grid_c = (cols[:, None, None] + torch.arange(width)[None, None, :]).expand(-1, height, width)
    sample = torch.arange(n)[:, None, None].expand(-1, height, width)
    # Advanced indexing puts the sample/row/col axes first: (n, H, W, C).
    frame.permute(0, 2, 3, 1)[sample, grid_r, grid_c] = X.permute(0, 2, 3, 1)
    out = [frame.numpy().astype(np.float32)]
    if labels is not None:
        out.append(labels)
    if return_offsets:
        out.append(torch.stack([rows, cols], 1).numpy().astype(np.int64))
    return out[0] if len(out) == 1 else tuple(out)
