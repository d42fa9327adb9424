"""Spatial Morlet and Gabor filters with kymatio's 2-D formulas, truncated to a small support.

The filters of one scattering block are small enough (sigma = 0.8 pixel at the
finest scale) to be applied as spatial convolutions, which is far cheaper than
FFTs at padded size. The formulas are kymatio's (``kymatio.scattering2d.
filter_bank.gabor_2d`` / ``morlet_2d``), evaluated on a centred grid without
periodisation; tests compare them against kymatio.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["gabor_2d", "morlet_2d", "kernel_radius", "block_filter_bank", "BLOCK_KINDS"]

#: Filter banks available per block: one octave ("standard"), or the two
#: half-octave steps of a factorised octave ("factorized_first" keeps the
#: resolution, "factorized_second" subsamples).
BLOCK_KINDS = ("standard", "factorized_first", "factorized_second")


def _grid(radius):
    coords = np.arange(-radius, radius + 1, dtype=np.float64)
    return np.meshgrid(coords, coords, indexing="ij")


def gabor_2d(radius: int, sigma: float, theta: float, xi: float, slant: float = 1.0) -> np.ndarray:
    """Gabor filter ``g_sigma(u) exp(i xi <u, e_theta>)`` on a ``(2r+1)^2`` centred grid.

    Parameters
    ----------
    radius : int
        Half-width of the support; the filter has shape ``(2*radius+1,) * 2``.
    sigma : float
        Width of the Gaussian envelope along the wave direction.
    theta : float
        Orientation in radians.
    xi : float
        Centre frequency in radians per pixel.
    slant : float, default=1.0
        Ratio of the envelope widths: the envelope is ``sigma / slant`` wide
        across the wave direction.

    Returns
    -------
    ndarray of complex128, shape (2*radius+1, 2*radius+1)
        Normalised by ``2 pi sigma^2 / slant`` as in kymatio. Axis 0 is the
        first spatial coordinate.

    See Also
    --------
    morlet_2d : the zero-mean wavelet built on it.
    kernel_radius : the radius at which the envelope is truncated.

    Examples
    --------
    >>> from skphase.filters import gabor_2d
    >>> gabor_2d(2, sigma=1.0, theta=0.0, xi=1.0).shape
    (5, 5)
    """
    rotation = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    curvature = rotation @ np.diag([1.0, slant**2]) @ rotation.T / (2 * sigma**2)
    xx, yy = _grid(radius)
    quadratic = curvature[0, 0] * xx**2 + 2 * curvature[0, 1] * xx * yy + curvature[1, 1] * yy**2
    phase = xi * (np.cos(theta) * xx + np.sin(theta) * yy)
    return np.exp(-quadratic + 1j * phase) / (2 * np.pi * sigma**2 / slant)


def morlet_2d(radius: int, sigma: float, theta: float, xi: float, slant: float = 0.5) -> np.ndarray:
    """Morlet wavelet: a Gabor filter minus a Gaussian so that it sums to zero.

    The correction is computed on the truncated support, so the returned filter has exactly zero
    mean.

    Parameters
    ----------
    radius : int
        Half-width of the support; the filter has shape ``(2*radius+1,) * 2``.
    sigma : float
        Width of the Gaussian envelope along the wave direction.
    theta : float
        Orientation in radians.
    xi : float
        Centre frequency in radians per pixel.
    slant : float, default=0.5
        Ratio of the envelope widths: the envelope is ``sigma / slant`` wide across the wave
        direction.

    Returns
    -------
    ndarray of complex128, shape (2*radius+1, 2*radius+1)
        The wavelet, normalised as :func:`gabor_2d`.

    See Also
    --------
    gabor_2d : the filter before the zero-mean correction.
    block_filter_bank : the Morlet wavelets of a scattering block.

    Examples
    --------
    >>> import numpy as np
    >>> from skphase.filters import morlet_2d
    >>> psi = morlet_2d(3, sigma=0.8, theta=0.0, xi=3 * np.pi / 4)
    >>> psi.shape, bool(abs(psi.sum()) < 1e-12)
    ((7, 7), True)
    """
    wave = gabor_2d(radius, sigma, theta, xi, slant)
    envelope = gabor_2d(radius, sigma, theta, 0.0, slant)
    return wave - wave.sum() / envelope.sum() * envelope


def kernel_radius(sigma: float, slant: float = 1.0, tol: float = 1e-3) -> int:
    """Smallest radius at which a Gaussian envelope has decayed below ``tol`` of its peak.

    The widest axis of the envelope has width ``sigma / min(slant, 1)``.

    Parameters
    ----------
    sigma : float
        Width of the Gaussian envelope along the wave direction.
    slant : float, default=1.0
        Ratio of the envelope widths, as in :func:`gabor_2d`.
    tol : float, default=1e-3
        Truncation threshold, relative to the peak.

    Returns
    -------
    int
        The radius ``r``: filters of shape ``(2r+1, 2r+1)`` hold the envelope above ``tol``.

    See Also
    --------
    gabor_2d, morlet_2d : the filters built on a grid of this radius.

    Examples
    --------
    >>> from skphase.filters import kernel_radius
    >>> kernel_radius(0.8)
    3
    """
    width = sigma / min(slant, 1.0)
    return max(1, math.ceil(width * math.sqrt(2 * math.log(1 / tol))))


def _angles(L):
    # kymatio's order of orientations: theta_l = (floor(L/2) - 1 - l) * pi / L.
    return [(int(L - L / 2 - 1) - l) * np.pi / L for l in range(L)]


def block_filter_bank(L: int, kind: str = "standard", tol: float = 1e-3) -> tuple[np.ndarray, bool]:
    """Low-pass and oriented wavelets of one scattering block.

    Parameters
    ----------
    L : int
        Number of orientations, spread over ``[0, pi)``.
    kind : {"standard", "factorized_first", "factorized_second"}
        ``"standard"``: kymatio's finest scale (``phi`` with sigma 0.8, ``psi``
        with sigma 0.8, xi 3 pi / 4), followed by subsampling by 2.
        A factorised octave uses two blocks with half-octave filters: the
        first (``psi`` at scale 1, ``phi`` at scale 1/2) keeps the resolution,
        the second (``psi`` at scale 3/2 built on ``phi`` at 1/2, so that the
        cascade matches the next octave) subsamples.
    tol : float, default=1e-3
        Truncation threshold of the Gaussian envelopes, relative to the peak.

    Returns
    -------
    filters : ndarray of complex128, shape (1 + L, k, k)
        ``filters[0]`` is the (real) low-pass, ``filters[1:]`` the wavelets.
    subsample : bool
        Whether the block subsamples by 2 after filtering.

    See Also
    --------
    morlet_2d : the wavelets of the bank.
    skphase.nn.WaveletFilter : the torch module that applies the bank.

    Examples
    --------
    >>> from skphase.filters import block_filter_bank
    >>> filters, subsample = block_filter_bank(4)
    >>> filters.shape, subsample
    ((5, 7, 7), True)
    """
    if kind not in BLOCK_KINDS:
        raise ValueError(f"kind must be one of {BLOCK_KINDS}, got {kind!r}.")
    slant = 4.0 / L
    if kind == "standard":
        phi_sigma, psi = 0.8, dict(sigma=0.8, xi=3 * np.pi / 4, slant=slant)
    elif kind == "factorized_first":
        phi_sigma, psi = 0.8 / math.sqrt(2), dict(sigma=0.8, xi=3 * np.pi / 4, slant=slant)
    else:
        if L <= 2:
            # The half-octave wavelet's slant sqrt(3 s^2 / (4 - s^2)) needs s = 4 / L < 2.
            raise ValueError(f"Factorized filters need L >= 3 orientations, got L={L}.")
        psi = dict(
            sigma=0.8 * math.sqrt(1.5),
            xi=np.pi / math.sqrt(2),
            slant=math.sqrt(3 * slant**2 / (4 - slant**2)),
        )
        phi_sigma = 0.8 / math.sqrt(2)
    radius = max(kernel_radius(phi_sigma, 1.0, tol), kernel_radius(psi["sigma"], psi["slant"], tol))
    phi = gabor_2d(radius, phi_sigma, 0.0, 0.0)
    psis = [morlet_2d(radius, theta=theta, **psi) for theta in _angles(L)]
    return np.stack([phi] + psis), kind != "factorized_first"
