"""Maximum-entropy random displacement fields (the sine-series model) and their temperatures.

The model (Petrini, Favero, Geiger, Wyart, NeurIPS 2021): on the unit square
each displacement component is a sine series

    tau(u, v) = sum_{i, j >= 1} C_ij sin(i pi u) sin(j pi v),
    C_ij ~ N(0, T / (i^2 + j^2)),  kept only where sqrt(i^2 + j^2) < c + 0.5,

scaled to pixels by the image side, so that the field vanishes on the border
and its smoothness is set by the cut-off ``c`` and its size by the temperature
``T``. Fields are drawn in batches from a :class:`torch.Generator`, so that
runs are reproducible. :mod:`._diffeo` deforms images with them.
"""

from __future__ import annotations

import math
import numbers
import warnings
from typing import Any

import torch

from ..utils._images import min_image_size_error

__all__ = [
    "temperature_from_displacement",
    "temperature_range",
    "diffeo_coefficients",
    "displacement_field",
    "sample_displacement",
]


def _check_cutoff(cutoff):
    if not isinstance(cutoff, numbers.Integral) or isinstance(cutoff, bool):
        raise TypeError(f"cutoff must be an integer >= 2, got {cutoff!r}.")
    if cutoff < 2:
        raise ValueError(
            f"cutoff={cutoff} is too small: the max-entropy model needs a cut-off c >= 2 "
            "(c = 1 keeps a single mode and the typical displacement ~ sqrt(ln c) vanishes); use cutoff=3."
        )


def _check_side(n):
    if not isinstance(n, numbers.Integral) or n < 3:
        raise ValueError(f"The image side n must be an integer >= 3, got {n!r}.")


def temperature_from_displacement(displacement: float, n: int, cutoff: int = 3) -> float:
    """Temperature whose typical displacement is ``displacement`` pixels.

    Uses the asymptotic relation ``delta = (n / 2) sqrt(pi T ln c)``, that is
    ``T = 4 delta^2 / (pi n^2 ln c)``.

    Parameters
    ----------
    displacement : float
        Typical displacement ``delta`` in pixels (the papers use 1).
    n : int
        Image side in pixels.
    cutoff : int, default=3
        Cut-off ``c >= 2`` of the sine series.

    Returns
    -------
    float
        The temperature ``T``.

    See Also
    --------
    temperature_range : the useful temperatures for an image size.

    Examples
    --------
    >>> round(temperature_from_displacement(1.0, 32, cutoff=3), 6)
    0.001132
    """
    _check_cutoff(cutoff)
    _check_side(n)
    if not displacement > 0 or not math.isfinite(displacement):
        raise ValueError(f"displacement must be a positive number of pixels, got {displacement!r}.")
    return 4.0 * displacement**2 / (math.pi * n**2 * math.log(cutoff))


def temperature_range(n: int, cutoff: int = 3) -> tuple[float, float]:
    """The useful temperatures ``(T_min, T_max)`` for an ``n x n`` image.

    ``T_min = 1 / (pi n^2 ln c)`` gives a typical displacement of half a pixel
    (below it interpolation barely changes the image); ``T_max = 4 / (pi^3 c^2 ln c)``
    is the largest temperature for which the deformation keeps no overhang
    (it stays a diffeomorphism).

    Parameters
    ----------
    n : int
        Image side in pixels.
    cutoff : int, default=3
        Cut-off ``c >= 2`` of the sine series.

    Returns
    -------
    (float, float)
        ``(T_min, T_max)``.

    See Also
    --------
    temperature_from_displacement : the temperature of a typical displacement.

    Examples
    --------
    >>> t_min, t_max = temperature_range(32, cutoff=3)
    >>> t_min < temperature_from_displacement(1.0, 32) < t_max
    True
    """
    _check_cutoff(cutoff)
    _check_side(n)
    log_c = math.log(cutoff)
    return 1.0 / (math.pi * n**2 * log_c), 4.0 / (math.pi**3 * cutoff**2 * log_c)


def _mode_std(cutoff, dtype, device):
    """Standard deviation per unit temperature of each coefficient C_ij, 0 outside the cut-off."""
    k = torch.arange(1, cutoff + 1, dtype=torch.float64)
    r2 = k[:, None] ** 2 + k[None, :] ** 2
    keep = r2.sqrt() < cutoff + 0.5
    return torch.where(keep, r2.rsqrt(), torch.zeros_like(r2)).to(dtype=dtype, device=device)


def _resolve_temperature(temperature, displacement, n, cutoff):
    if temperature is None:
        temperature = temperature_from_displacement(1.0 if displacement is None else displacement, n, cutoff)
    elif displacement is not None:
        raise ValueError("Give either temperature or displacement, not both.")
    if not temperature >= 0 or not math.isfinite(temperature):
        raise ValueError(f"temperature must be a finite number >= 0, got {temperature!r}.")
    t_max = temperature_range(n, cutoff)[1]
    if temperature > t_max:
        warnings.warn(
            f"temperature={temperature:.3g} exceeds T_max={t_max:.3g} for cutoff={cutoff}: the "
            "displacement field may fold the image (overhangs), so it is no longer a diffeomorphism.",
            UserWarning,
            stacklevel=3,
        )
    return float(temperature)


def diffeo_coefficients(n_samples, *, cutoff=3, temperature, generator=None, device=None, dtype=torch.float32):
    """Draw the sine-series coefficients of ``n_samples`` displacement fields.

    Parameters
    ----------
    n_samples : int
    cutoff : int, default=3
        Modes with ``sqrt(i^2 + j^2) >= cutoff + 0.5`` are zero.
    temperature : float
        ``C_ij ~ N(0, temperature / (i^2 + j^2))``.
    generator : torch.Generator, optional
        Source of randomness; its device is where the draw happens.
    device : torch.device, optional
        Where the result goes (default: the generator's device, else CPU).
    dtype : torch.dtype, default=torch.float32

    Returns
    -------
    torch.Tensor of shape (n_samples, 2, cutoff, cutoff)
        ``[:, 0]`` displaces along the width (x), ``[:, 1]`` along the height
        (y); entry ``[b, k, i-1, j-1]`` multiplies ``sin(i pi u) sin(j pi v)``
        with ``u`` the row (height) coordinate and ``v`` the column coordinate.

    Examples
    --------
    >>> coef = diffeo_coefficients(4, cutoff=3, temperature=1e-3, generator=torch.Generator().manual_seed(0))
    >>> tuple(coef.shape), float(coef[:, :, 2, 2].abs().max())  # (3, 3) lies beyond the cut-off
    ((4, 2, 3, 3), 0.0)
    """
    _check_cutoff(cutoff)
    draw_device = generator.device if generator is not None else (device or "cpu")
    std = _mode_std(cutoff, torch.float64, draw_device) * math.sqrt(temperature)
    noise = torch.randn((n_samples, 2, cutoff, cutoff), generator=generator, device=draw_device, dtype=torch.float64)
    out = noise * std
    return out.to(dtype=dtype, device=device if device is not None else draw_device)


def displacement_field(coefficients, height, width):
    """Evaluate sine-series coefficients on a pixel grid, in pixels.

    The grid of each axis is ``linspace(0, 1, side)``, so the field is exactly
    zero on the four borders; components are scaled to pixels by the side
    along which they move (``height`` and ``width`` are equal in the papers).

    Parameters
    ----------
    coefficients : torch.Tensor of shape (n, 2, c, c)
        As returned by :func:`diffeo_coefficients`.
    height, width : int

    Returns
    -------
    torch.Tensor of shape (n, 2, height, width)
        Channel 0: displacement along x (columns), channel 1: along y (rows).
    """
    if coefficients.ndim != 4 or coefficients.shape[1] != 2 or coefficients.shape[2] != coefficients.shape[3]:
        raise ValueError(f"coefficients must have shape (n, 2, c, c), got {tuple(coefficients.shape)}.")
    cutoff = coefficients.shape[-1]
    # One GEMM against the (c*c, H*W) basis of products of sines: far faster than per-image
    # products of small matrices, and the result comes out contiguous.
    basis = _sine_basis(cutoff, height, width, coefficients.dtype, coefficients.device)
    scale = torch.tensor([width, height], dtype=coefficients.dtype, device=coefficients.device)
    flat = (coefficients * scale[None, :, None, None]).reshape(-1, cutoff * cutoff)
    return (flat @ basis).reshape(coefficients.shape[0], 2, height, width)


def _sines(cutoff, n, dtype, device):
    """``sines[y, i] = sin((i+1) pi y / (n-1))``, shape (n, cutoff), exactly 0 on the first and last rows."""
    k = torch.arange(1, cutoff + 1, dtype=dtype, device=device)
    sines = torch.sin(math.pi * torch.linspace(0, 1, n, dtype=dtype, device=device)[:, None] * k[None, :])
    # sin(k pi) is ~1e-16 (1e-7 in float32), not 0: pin the borders so they never move.
    sines[0] = 0
    sines[-1] = 0
    return sines


def _sine_basis(cutoff, height, width, dtype, device):
    """``basis[i * c + j, y * W + x] = sin((i+1) pi y / (H-1)) sin((j+1) pi x / (W-1))``."""
    sin_rows = _sines(cutoff, height, dtype, device)  # (H, c)
    sin_cols = _sines(cutoff, width, dtype, device)  # (W, c)
    return (sin_rows.T[:, None, :, None] * sin_cols.T[None, :, None, :]).reshape(cutoff * cutoff, height * width)


# Elements (channels plus the two grid planes, times pixels, times images) per chunk of work on
# the CPU: about 4 MB in float32, so each chunk's grid and grid_sample result stay in cache and
# their buffers are reused from chunk to chunk. Batch-sized temporaries would cost a fresh
# allocation, and page faults, each time (benchmarks/bench_diffeo.py times it).
def sample_displacement(
    n_samples: int,
    image_size: int | tuple[int, int],
    *,
    cutoff: int = 3,
    temperature: float | None = None,
    displacement: float | None = None,
    generator: torch.Generator | None = None,
    device: str | torch.device | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Draw ``n_samples`` random displacement fields in pixels.

    Parameters
    ----------
    n_samples : int
        Number of fields.
    image_size : int or (int, int)
        ``n`` or ``(height, width)``; the temperature helpers use the width.
    cutoff : int, default=3
        Cut-off ``c >= 2`` of the sine series.
    temperature : float, optional
        Warns when above ``T_max`` (see :func:`temperature_range`).
    displacement : float, optional
        Typical displacement in pixels; used when ``temperature`` is None
        (default 1 pixel).
    generator : torch.Generator, optional
        For reproducible draws; the global torch RNG otherwise.
    device : torch.device, optional
        Device of the fields (the CPU by default).
    dtype : torch.dtype, default=torch.float32
        Floating dtype of the fields.

    Returns
    -------
    torch.Tensor of shape (n_samples, 2, height, width)
        Displacement along x (channel 0) and y (channel 1), zero on the border.

    See Also
    --------
    deform : apply the fields to images.
    temperature_range : the useful temperatures.

    Examples
    --------
    >>> tau = sample_displacement(8, 32, generator=torch.Generator().manual_seed(0))
    >>> tuple(tau.shape), float(tau[..., 0, :].abs().max())  # zero on the border
    ((8, 2, 32, 32), 0.0)
    """
    sizes: Any = (image_size, image_size) if isinstance(image_size, numbers.Integral) else image_size
    height, width = sizes
    if min(height, width) < 3:
        raise min_image_size_error((height, width), (3, 3), "a displacement field vanishing on the border")
    temperature = _resolve_temperature(temperature, displacement, width, cutoff)
    coef = diffeo_coefficients(
        n_samples, cutoff=cutoff, temperature=temperature, generator=generator, device=device, dtype=dtype
    )
    return displacement_field(coef, height, width)
