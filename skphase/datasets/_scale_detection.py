"""The scale-detection task: is the distance between two active pixels small or large?

Tomasini, Petrini, Cagnetta, Wyart (2022) use it to show how networks lose spatial
information: the label depends only on the distance between two pixels, so it is invariant to
smooth deformations but not to noise, and a network must pool space to solve it.
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.utils import check_random_state

from ._checks import check_finite_number

__all__ = ["make_scale_detection"]


def _pair_distance(a, b, size, periodic):
    delta = np.abs(a - b).astype(np.float64)
    if periodic:
        delta = np.minimum(delta, size - delta)
    return np.sqrt((delta**2).sum(axis=-1))


def make_scale_detection(
    n_samples: int = 1000,
    *,
    dim: int = 2,
    size: int = 28,
    xi: float = 14.0,
    gap: float = 2.0,
    periodic: bool | None = None,
    value: float | None = None,
    random_state: int | np.random.RandomState | None = None,
    return_positions: bool = False,
) -> tuple[np.ndarray, ...]:
    """Generate the scale-detection task in 2-D (images) or 1-D (signals).

    Each sample is zero but for two distinct active pixels, drawn uniformly, of value
    ``value``. Its label is 1 ("close", the papers' +1) when their distance is below
    ``xi - gap / 2`` and 0 ("far", the papers' -1) when it is at least ``xi + gap / 2``; pairs
    in between are redrawn. Classes are balanced and samples shuffled.

    Parameters
    ----------
    n_samples : int, default=1000
        Number of samples (``n_samples // 2`` far, the rest close).
    dim : {1, 2}, default=2
    size : int, default=28
        Side ``d`` of the image (2-D) or length of the signal (1-D).
    xi : float, default=14.0
        Characteristic scale separating the classes.
    gap : float, default=2.0
        Width of the excluded band of distances around ``xi``.
    periodic : bool, optional
        Measure distances on the torus (``min(|delta|, d - |delta|)`` per axis). Default: False
        in 2-D (as the 2-D task of the paper) and True in 1-D (as the authors' 1-D code).
    value : float, optional
        Value of the active pixels; default ``d^2 / 2`` in 2-D (as the paper) and ``d / 2`` in 1-D.
    random_state : int, RandomState or None
        Seeds the positions and the shuffle.
    return_positions : bool, default=False
        Also return the positions of the two pixels.

    Returns
    -------
    X : ndarray of float32, shape (n_samples, 1, d, d) in 2-D or (n_samples, 1, d) in 1-D
        The samples, zero but for the two active pixels.
    y : ndarray of int64, shape (n_samples,)
        1 for close pairs, 0 for far ones.
    positions : ndarray of int64, shape (n_samples, 2, dim)
        Only if ``return_positions``: (row, column) of each pixel in 2-D, its index in 1-D.

    See Also
    --------
    make_star_task : a small star to detect in a noise image.

    Examples
    --------
    >>> X, y = make_scale_detection(10, random_state=0)
    >>> X.shape, int(y.sum()), float(X[0].max()), int((X[0] > 0).sum())
    ((10, 1, 28, 28), 5, 392.0, 2)
    >>> X1, y1 = make_scale_detection(6, dim=1, size=32, xi=8, random_state=0)
    >>> X1.shape
    (6, 1, 32)
    """
    if dim not in (1, 2):
        raise ValueError(f"dim must be 1 or 2, got {dim!r}.")
    if not isinstance(n_samples, numbers.Integral) or n_samples < 2:
        raise ValueError(f"n_samples must be an integer >= 2 (one sample per class at least), got {n_samples!r}.")
    if not isinstance(size, numbers.Integral) or size < 2:
        raise ValueError(f"size must be an integer >= 2, got {size!r}.")
    xi = check_finite_number(xi, "xi")
    gap = check_finite_number(gap, "gap", minimum=0)
    if xi - gap / 2 <= 1:
        raise ValueError(
            f"xi - gap / 2 = {xi - gap / 2} leaves no pair of distinct pixels closer than it (pixels are >= 1 "
            "apart); increase xi or decrease gap."
        )
    periodic = (dim == 1) if periodic is None else bool(periodic)
    max_delta = size // 2 if periodic else size - 1
    max_distance = np.sqrt(dim) * max_delta
    if xi + gap / 2 > max_distance:
        raise ValueError(
            f"No pair of pixels of a size-{size} {'torus' if periodic else 'grid'} is as far as xi + gap / 2 = "
            f"{xi + gap / 2} (largest distance {max_distance:.3g}); decrease xi or gap, or increase size."
        )
    value = (size**2 / 2 if dim == 2 else size / 2) if value is None else check_finite_number(value, "value")
    rng = check_random_state(random_state)
    n_far = n_samples // 2
    wanted = {1: n_samples - n_far, 0: n_far}
    found = {1: [], 0: []}
    while any(sum(len(c) for c in found[k]) < wanted[k] for k in (0, 1)):
        # Vectorised rejection sampling: draw a chunk of pairs, keep those of a class still short.
        a = rng.randint(0, size, size=(4 * n_samples + 64, dim))
        b = rng.randint(0, size, size=(4 * n_samples + 64, dim))
        distinct = np.any(a != b, axis=1)
        distance = _pair_distance(a, b, size, periodic)
        for label, mask in ((1, distance < xi - gap / 2), (0, distance >= xi + gap / 2)):
            have = sum(len(c) for c in found[label])
            keep = np.flatnonzero(mask & distinct)[: max(wanted[label] - have, 0)]
            found[label].append(np.stack([a[keep], b[keep]], axis=1))
    positions = np.concatenate(found[1] + found[0])
    y = np.concatenate([np.ones(wanted[1], dtype=np.int64), np.zeros(wanted[0], dtype=np.int64)])
    order = rng.permutation(n_samples)
    positions, y = positions[order], y[order]
    X = np.zeros((n_samples, 1) + (size,) * dim, dtype=np.float32)
    rows = np.arange(n_samples)
    for k in range(2):
        X[(rows, 0) + tuple(positions[:, k, axis] for axis in range(dim))] = value
    return (X, y, positions) if return_positions else (X, y)
