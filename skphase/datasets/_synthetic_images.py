"""Synthetic image tasks of the ConvRFM paper: the star task and images in a noise frame.

Both tasks need features that are local and found anywhere in the image: a
small pattern at an unknown place. A kernel that compares whole images
patch-position by patch-position sees mostly noise; learning which patch
directions matter (the patch AGOP) removes it.
"""

import numpy as np
import torch

from ..utils import check_images, is_integer, make_generator

__all__ = ["make_noisy_frame_task", "make_star_task", "star_pattern"]


def star_pattern(size=5):
    """A ``size x size`` asterisk (row, column and both diagonals through the centre) of ones.

    Examples
    --------
    >>> star_pattern(3).astype(int)
    array([[1, 1, 1],
           [1, 1, 1],
           [1, 1, 1]])
    >>> int(star_pattern(5).sum())
    17
    """
    if not is_integer(size) or size < 1 or size % 2 == 0:
        raise ValueError(f"size must be an odd integer >= 1, got {size!r}.")
    pattern = np.zeros((size, size), dtype=np.float32)
    centre = size // 2
    index = np.arange(size)
    pattern[centre, :] = pattern[:, centre] = 1.0
    pattern[index, index] = pattern[index, size - 1 - index] = 1.0
    return pattern


def make_star_task(n_samples=100, *, image_size=32, n_channels=3, noise_std=0.3, star_size=9, amplitude=1.0,
                   star_channels=(0, 1), random_state=None):
    """The star task: is there a small star somewhere in a noise image?

    Every image is Gaussian noise ``N(0, noise_std^2)`` of shape
    ``(n_channels, image_size, image_size)``; images of class 1 also hold a
    star (:func:`star_pattern`) of height ``amplitude`` added to the channels
    ``star_channels`` at a uniformly random place where it fits. Classes are
    balanced (alternating, then shuffled).

    Parameters
    ----------
    n_samples : int, default=100
    image_size : int, default=32
    n_channels : int, default=3
    noise_std : float, default=0.3
    star_size : int, default=9
        Odd side of the star (an asterisk of ``4 * star_size - 3`` pixels).
    amplitude : float, default=1.0
    star_channels : tuple of int, default=(0, 1)
    random_state : int, RandomState or None

    Returns
    -------
    X : ndarray of shape (n_samples, n_channels, image_size, image_size), float32
    y : ndarray of shape (n_samples,), int64
        1 where a star is present.

    Examples
    --------
    >>> X, y = make_star_task(10, random_state=0)
    >>> X.shape, int(y.sum())
    ((10, 3, 32, 32), 5)
    """
    if not is_integer(n_samples) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}.")
    pattern = star_pattern(star_size)
    if star_size > image_size:
        raise ValueError(f"star_size={star_size} does not fit in images of size {image_size}; "
                         "use a smaller star or larger images.")
    channels = list(star_channels)
    if not channels or min(channels) < 0 or max(channels) >= n_channels:
        raise ValueError(f"star_channels={star_channels!r} must name channels in [0, {n_channels}).")
    if not noise_std >= 0:
        raise ValueError(f"noise_std must be >= 0, got {noise_std!r}.")
    generator = make_generator(random_state)
    X = noise_std * torch.randn(n_samples, n_channels, image_size, image_size, generator=generator)
    y = torch.arange(n_samples) % 2
    y = y[torch.randperm(n_samples, generator=generator)]
    positives = torch.nonzero(y).flatten()
    span = image_size - star_size + 1
    rows = torch.randint(span, (len(positives),), generator=generator)
    cols = torch.randint(span, (len(positives),), generator=generator)
    # Scatter the star into each positive image at its own offset without a
    # loop over samples: index grids of shape (n_pos, size, size).
    offsets = torch.arange(star_size)
    grid_r = (rows[:, None, None] + offsets[None, :, None]).expand(-1, star_size, star_size)
    grid_c = (cols[:, None, None] + offsets[None, None, :]).expand(-1, star_size, star_size)
    sample = positives[:, None, None].expand_as(grid_r)
    star = amplitude * torch.as_tensor(pattern)
    for channel in channels:  # a loop over (at most n_channels) channels, not samples
        X[sample, channel, grid_r, grid_c] += star
    return X.numpy().astype(np.float32), y.numpy().astype(np.int64)


def make_noisy_frame_task(images, labels=None, *, frame_size=42, noise_std=1.0, return_offsets=False,
                          random_state=None):
    """Paste each image at a random place in a larger Gaussian-noise frame.

    The noisy-MNIST task of the ConvRFM paper: a 28 x 28 digit in a
    42 x 42 frame of ``N(0, 1)`` noise. Works with any image set.

    Parameters
    ----------
    images : array-like of shape (n, C, H, W), (n, H, W) or flat (n, d)
    labels : array-like of shape (n,) or None
        Returned unchanged (as an ndarray) when given.
    frame_size : int or pair of int, default=42
        ``(H_frame, W_frame)``; at least the image size.
    noise_std : float, default=1.0
    return_offsets : bool, default=False
        Also return the ``(row, col)`` of each image's top-left corner.
    random_state : int, RandomState or None

    Returns
    -------
    X : ndarray of shape (n, C, H_frame, W_frame), float32
    y : ndarray of shape (n,)
        Only when ``labels`` is given.
    offsets : ndarray of shape (n, 2), int64
        Only when ``return_offsets``.

    Examples
    --------
    >>> import numpy as np
    >>> X, offsets = make_noisy_frame_task(np.ones((4, 1, 8, 8)), frame_size=12, return_offsets=True,
    ...                                    random_state=0)
    >>> X.shape, bool(np.all(X[0, 0, offsets[0, 0], offsets[0, 1]:offsets[0, 1] + 8] == 1))
    ((4, 1, 12, 12), True)
    """
    X = check_images(images, name="images")
    n, n_channels, height, width = X.shape
    frame_h, frame_w = (frame_size, frame_size) if is_integer(frame_size) else tuple(int(s) for s in frame_size)
    if frame_h < height or frame_w < width:
        raise ValueError(f"frame_size={(frame_h, frame_w)} is smaller than the images {(height, width)}; "
                         "use a frame at least as large as the images.")
    if not noise_std >= 0:
        raise ValueError(f"noise_std must be >= 0, got {noise_std!r}.")
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (n,):
            raise ValueError(f"labels must have shape ({n},), got {labels.shape}.")
    generator = make_generator(random_state)
    frame = noise_std * torch.randn(n, n_channels, frame_h, frame_w, generator=generator)
    rows = torch.randint(frame_h - height + 1, (n,), generator=generator)
    cols = torch.randint(frame_w - width + 1, (n,), generator=generator)
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
