"""Maximum-entropy random diffeomorphisms of images and noise of matched norm.

The model (Petrini, Favero, Geiger, Wyart, NeurIPS 2021): on the unit square
each displacement component is a sine series

    tau(u, v) = sum_{i, j >= 1} C_ij sin(i pi u) sin(j pi v),
    C_ij ~ N(0, T / (i^2 + j^2)),  kept only where sqrt(i^2 + j^2) < c + 0.5,

scaled to pixels by the image side, so that the field vanishes on the border
and its smoothness is set by the cut-off ``c`` and its size by the temperature
``T``. An image ``x`` is deformed into ``x(p - tau(p))`` by bilinear (or
nearest) interpolation with coordinates clamped to the image.

Everything here is batched: one field per image, shared across its channels,
drawn from a :class:`torch.Generator` so that runs are reproducible.
"""

import math
import numbers
import warnings

import numpy as np
import torch
import torch.nn.functional as F

from ..utils import min_image_size_error

__all__ = [
    "temperature_from_displacement",
    "temperature_range",
    "diffeo_coefficients",
    "displacement_field",
    "sample_displacement",
    "deform",
    "random_deform",
    "matched_noise",
    "RandomDiffeomorphism",
]

_INTERPOLATIONS = {"bilinear": "bilinear", "linear": "bilinear", "nearest": "nearest"}


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


def temperature_from_displacement(displacement, n, cutoff=3):
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


def temperature_range(n, cutoff=3):
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

    Returns
    -------
    (float, float)

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
        if displacement is None:
            displacement = 1.0
        return temperature_from_displacement(displacement, n, cutoff)
    if displacement is not None:
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
# their buffers are reused from chunk to chunk. Batch-sized temporaries cost a fresh allocation
# each time, and their page faults took about as long as the interpolation itself (10,000 images
# of 3 x 32 x 32 on 2 CPU cores, benchmarks/bench_diffeo.py).
_CHUNK_ELEMENTS = 2**20


def _grid_planes(height, width, dtype, device):
    """The identity sampling grid and the pixel-to-grid scale, in the planar layout of :func:`_warp`.

    Parameters
    ----------
    height, width : int
    dtype : torch.dtype
    device : torch.device

    Returns
    -------
    base : torch.Tensor of shape (2, 1, height * width)
        grid_sample coordinates (``align_corners=True``) of every pixel in [-1, 1]: plane 0 is x
        (the column), plane 1 is y (the row).
    scale : torch.Tensor of shape (2, 1, 1)
        Grid units per pixel along x and y.
    """
    cols = torch.linspace(-1, 1, width, dtype=dtype, device=device)
    rows = torch.linspace(-1, 1, height, dtype=dtype, device=device)
    base = torch.stack([cols.repeat(height), rows.repeat_interleave(width)])[:, None, :]
    # align_corners=True maps -1 and 1 onto the centres of the first and last pixels.
    scale = torch.tensor([2.0 / max(width - 1, 1), 2.0 / max(height - 1, 1)], dtype=dtype, device=device)
    return base, scale.view(2, 1, 1)


def _coefficient_sines(cutoff, height, width, dtype, device):
    """The two sine factors that map coefficients straight onto grid units of ``-tau``.

    Parameters
    ----------
    cutoff, height, width : int
    dtype : torch.dtype
    device : torch.device

    Returns
    -------
    sin_rows : torch.Tensor of shape (height, cutoff)
    sin_cols : torch.Tensor of shape (2, cutoff, width)
        ``[k]`` are the column sines of component k times its pixels per unit (``width`` or
        ``height``) times grid units per pixel, negated (the source is ``p - tau(p)``), so no
        field in pixels is ever built.
    """
    _, scale = _grid_planes(height, width, dtype, device)
    pixels = torch.tensor([width, height], dtype=dtype, device=device).view(2, 1, 1)
    return _sines(cutoff, height, dtype, device), _sines(cutoff, width, dtype, device).T * (-pixels * scale)


def _planes_from_coefficients(coefficients, sines, base, out=None):
    """Sampling grid of ``p - tau(p)`` from sine coefficients: ``base + sin_rows @ C @ sin_cols``.

    Parameters
    ----------
    coefficients : torch.Tensor of shape (m, 2, c, c)
    sines : (torch.Tensor, torch.Tensor)
        ``(sin_rows, sin_cols)`` from :func:`_coefficient_sines`.
    base : torch.Tensor of shape (2, 1, H*W)
        From :func:`_grid_planes`.
    out : torch.Tensor of shape (2, m, H*W), optional

    Returns
    -------
    torch.Tensor of shape (2, m, H*W)
        The x plane, then the y plane, in grid units.
    """
    sin_rows, sin_cols = sines
    m, _, cutoff, _ = coefficients.shape
    height, width = sin_rows.shape[0], sin_cols.shape[-1]
    # The series is separable: contracting the column modes on the tiny coefficients first leaves
    # one (H, c) x (c, W) product per image and component, 3 multiply-adds per grid value against
    # c^2 = 9 for a GEMM against the (c^2, H W) basis of products of sines (about 3x faster, measured).
    half = torch.bmm(coefficients.transpose(0, 1).reshape(2, m * cutoff, cutoff), sin_cols)  # (2, m c, W)
    planes = torch.bmm(
        sin_rows.expand(2 * m, height, cutoff),
        half.reshape(2 * m, cutoff, width),
        out=None if out is None else out.view(2 * m, height, width),
    )
    return planes.view(2, m, height * width).add_(base)


def _planes_from_field(displacement, base, scale, out=None):
    """Sampling grid of ``p - tau(p)`` from a displacement field in pixels.

    Parameters
    ----------
    displacement : torch.Tensor of shape (m, 2, H, W)
    base, scale : torch.Tensor
        From :func:`_grid_planes`.
    out : torch.Tensor of shape (2, m, H*W), optional

    Returns
    -------
    torch.Tensor of shape (2, m, H*W)
    """
    m = displacement.shape[0]
    return torch.addcmul(base, displacement.reshape(m, 2, -1).transpose(0, 1), scale, value=-1, out=out)


def _empty_cpu(shape, dtype):
    """An uninitialised CPU tensor whose first writes are cheap, for large outputs.

    Parameters
    ----------
    shape : tuple of int
    dtype : torch.dtype

    Returns
    -------
    torch.Tensor
        Backed by a numpy array for float32 and float64, else allocated by torch.

    Notes
    -----
    numpy asks Linux for transparent huge pages on large arrays (``madvise``), torch's CPU
    allocator does not (unless ``THP_MEM_ALLOC_ENABLE=1`` is set before start): the first write
    to a fresh 120 MB torch tensor page-faults 30,000 times, measured at 50 ms on 2 cores, more
    than grid_sample takes to fill it, against 7 ms for the numpy array.
    """
    if dtype not in (torch.float32, torch.float64):
        return torch.empty(shape, dtype=dtype)
    return torch.from_numpy(np.empty(shape, dtype=np.float32 if dtype == torch.float32 else np.float64))


def _warp(images, source, planes_of, interpolation):
    """Sample each image at its grid: grid_sample with border clamping, in cache-sized chunks.

    Parameters
    ----------
    images : torch.Tensor of shape (n, C, H, W)
    source : torch.Tensor of shape (n, ...)
        What the grids are made from (coefficients or displacement fields), one row per image.
    planes_of : callable
        ``planes_of(source[start:stop], out)`` returns the grid of those images in the planar
        (2, stop - start, H*W) layout, written into ``out`` when it is not None.
    interpolation : {"bilinear", "linear", "nearest"}

    Returns
    -------
    torch.Tensor of shape (n, C, H, W)
        ``out[:, c](p) = images[:, c](grid(p))``, source coordinates clamped to the image.

    Notes
    -----
    grid_sample is used on every device: on the CPU, hand-written bilinear gathers with the four
    weights shared across channels (four ``torch.gather`` and three ``lerp``, or one
    ``embedding_bag`` over channels-last pixels) measured 1.5 to 3 times slower than its
    vectorised kernel, and on GPUs it is a single fused kernel.
    """
    n, channels, height, width = images.shape
    mode = _INTERPOLATIONS[interpolation]

    def sample(batch, planes):
        # grid_sample reads the planar grid through the strides of this (m, H, W, 2) view, with x
        # contiguous along W; no interleaved copy is made.
        grid = planes.view(2, -1, height, width).permute(1, 2, 3, 0)
        # padding_mode="border" clamps the source coordinates to the image, as the reference does.
        return F.grid_sample(batch, grid, mode=mode, padding_mode="border", align_corners=True)

    chunk = max(1, _CHUNK_ELEMENTS // ((channels + 2) * height * width))
    differentiable = torch.is_grad_enabled() and (images.requires_grad or source.requires_grad)
    # One call on GPUs (a single launch; there is no page-fault cost to dodge), for small batches,
    # and under autograd (the chunked loop writes into buffers, which autograd cannot follow).
    if images.device.type != "cpu" or n <= chunk or differentiable:
        return sample(images, planes_of(source, None))
    out = _empty_cpu((n, channels, height, width), images.dtype)
    buffer = images.new_empty(2 * chunk * height * width)
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        planes = planes_of(source[start:stop], buffer[: 2 * (stop - start) * height * width].view(2, stop - start, -1))
        out[start:stop] = sample(images[start:stop], planes)
    return out


def sample_displacement(
    n_samples,
    image_size,
    *,
    cutoff=3,
    temperature=None,
    displacement=None,
    generator=None,
    device=None,
    dtype=torch.float32,
):
    """Draw ``n_samples`` random displacement fields in pixels.

    Parameters
    ----------
    n_samples : int
    image_size : int or (int, int)
        ``n`` or ``(height, width)``; the temperature helpers use the width.
    cutoff : int, default=3
    temperature : float, optional
        Warns when above ``T_max`` (see :func:`temperature_range`).
    displacement : float, optional
        Typical displacement in pixels; used when ``temperature`` is None
        (default 1 pixel).
    generator : torch.Generator, optional
    device : torch.device, optional
    dtype : torch.dtype, default=torch.float32

    Returns
    -------
    torch.Tensor of shape (n_samples, 2, height, width)

    Examples
    --------
    >>> tau = sample_displacement(8, 32, generator=torch.Generator().manual_seed(0))
    >>> tuple(tau.shape), float(tau[..., 0, :].abs().max())  # zero on the border
    ((8, 2, 32, 32), 0.0)
    """
    height, width = (image_size, image_size) if isinstance(image_size, numbers.Integral) else image_size
    if min(height, width) < 3:
        raise min_image_size_error((height, width), (3, 3), "a displacement field vanishing on the border")
    temperature = _resolve_temperature(temperature, displacement, width, cutoff)
    coef = diffeo_coefficients(
        n_samples, cutoff=cutoff, temperature=temperature, generator=generator, device=device, dtype=dtype
    )
    return displacement_field(coef, height, width)


def deform(images, displacement, *, interpolation="bilinear"):
    """Deform images by displacement fields: ``out(p) = images(p - tau(p))``.

    Parameters
    ----------
    images : torch.Tensor of shape (n, C, H, W)
    displacement : torch.Tensor of shape (n, 2, H, W)
        In pixels, channel 0 along x (width), channel 1 along y (height); one
        field per image, applied to all of its channels.
    interpolation : {"bilinear", "nearest"}, default="bilinear"

    Returns
    -------
    torch.Tensor of shape (n, C, H, W)
        Source coordinates are clamped to the image (border values repeat).

    Examples
    --------
    >>> x = torch.arange(16.0).reshape(1, 1, 4, 4)
    >>> torch.allclose(deform(x, torch.zeros(1, 2, 4, 4)), x)
    True
    """
    if images.ndim != 4:
        raise ValueError(f"images must have shape (n, C, H, W), got {tuple(images.shape)}.")
    n, _, height, width = images.shape
    if displacement.shape != (n, 2, height, width):
        raise ValueError(
            f"displacement must have shape {(n, 2, height, width)} to match the images, "
            f"got {tuple(displacement.shape)}."
        )
    if interpolation not in _INTERPOLATIONS:
        raise ValueError(f"interpolation must be 'bilinear' or 'nearest', got {interpolation!r}.")
    if not images.is_floating_point():
        images = images.float()
    dtype, device = images.dtype, images.device
    displacement = displacement.to(dtype=dtype, device=device)
    base, scale = _grid_planes(height, width, dtype, device)
    return _warp(images, displacement, lambda field, out: _planes_from_field(field, base, scale, out), interpolation)


def random_deform(
    images,
    *,
    cutoff=3,
    temperature=None,
    displacement=None,
    interpolation="bilinear",
    generator=None,
    return_displacement=False,
):
    """Apply one random max-entropy diffeomorphism to each image of a batch.

    Parameters
    ----------
    images : torch.Tensor of shape (n, C, H, W)
    cutoff, temperature, displacement : see :func:`sample_displacement`
        Default: typical displacement of 1 pixel, ``cutoff=3``.
    interpolation : {"bilinear", "nearest"}, default="bilinear"
    generator : torch.Generator, optional
    return_displacement : bool, default=False

    Returns
    -------
    deformed : torch.Tensor of shape (n, C, H, W)
    displacement : torch.Tensor of shape (n, 2, H, W), only if ``return_displacement``

    Examples
    --------
    >>> x = torch.rand(5, 3, 16, 16)
    >>> g = torch.Generator().manual_seed(0)
    >>> random_deform(x, generator=g).shape
    torch.Size([5, 3, 16, 16])
    """
    if images.ndim != 4:
        raise ValueError(f"images must have shape (n, C, H, W), got {tuple(images.shape)}.")
    if interpolation not in _INTERPOLATIONS:
        raise ValueError(f"interpolation must be 'bilinear' or 'nearest', got {interpolation!r}.")
    if not images.is_floating_point():
        images = images.float()
    n, _, height, width = images.shape
    if min(height, width) < 3:
        raise min_image_size_error((height, width), (3, 3), "a displacement field vanishing on the border")
    temperature = _resolve_temperature(temperature, displacement, width, cutoff)
    coef = diffeo_coefficients(
        n, cutoff=cutoff, temperature=temperature, generator=generator, device=images.device, dtype=images.dtype
    )
    # The grid comes straight from the coefficients (no intermediate field in pixels): same result as
    # deform(images, displacement_field(coef, H, W)) at a fraction of the memory traffic.
    sines = _coefficient_sines(cutoff, height, width, images.dtype, images.device)
    base, _ = _grid_planes(height, width, images.dtype, images.device)
    out = _warp(images, coef, lambda c, buf: _planes_from_coefficients(c, sines, base, buf), interpolation)
    return (out, displacement_field(coef, height, width)) if return_displacement else out


def matched_noise(images, perturbed, *, generator=None):
    """Gaussian noise with, per image, the norm of ``perturbed - images``.

    ``eta_i = ||perturbed_i - x_i|| xi_i / ||xi_i||`` with ``xi_i ~ N(0, I)``: the
    isotropic perturbation that changes each image exactly as much as the
    deformation did, the reference for the relative stability ``R = D / G``.

    Parameters
    ----------
    images, perturbed : torch.Tensor of shape (n, ...)
    generator : torch.Generator, optional
        The noise is drawn on the generator's device (CPU by default) and moved.

    Returns
    -------
    torch.Tensor shaped like ``images``

    Examples
    --------
    >>> x = torch.zeros(2, 1, 4, 4); y = x + 1.0
    >>> eta = matched_noise(x, y, generator=torch.Generator().manual_seed(0))
    >>> [round(float(v), 4) for v in eta.flatten(1).norm(dim=1)]
    [4.0, 4.0]
    """
    if images.shape != perturbed.shape:
        raise ValueError(f"images {tuple(images.shape)} and perturbed {tuple(perturbed.shape)} differ in shape.")
    dtype = images.dtype if images.is_floating_point() else torch.float32
    draw_device = generator.device if generator is not None else images.device
    xi = torch.randn(images.shape, generator=generator, device=draw_device, dtype=dtype).to(images.device)
    target = (perturbed.to(dtype) - images.to(dtype)).flatten(1).norm(dim=1)
    norm = xi.flatten(1).norm(dim=1).clamp_min(torch.finfo(dtype).tiny)
    return xi * (target / norm).view(-1, *([1] * (images.ndim - 1)))


class RandomDiffeomorphism(torch.nn.Module):
    """Random max-entropy diffeomorphism as a data-augmentation transform.

    Parameters
    ----------
    displacement : float, default=1.0
        Typical displacement in pixels (ignored when ``temperature`` is given);
        the temperature is derived from each input's width.
    temperature : float, optional
    cutoff : int, default=3
    interpolation : {"bilinear", "nearest"}, default="bilinear"
    p : float, default=1.0
        Probability that an image is deformed (the others pass unchanged).
    generator : torch.Generator, optional
        For reproducible augmentation; the global torch RNG otherwise.

    Examples
    --------
    >>> aug = RandomDiffeomorphism(displacement=1.0, generator=torch.Generator().manual_seed(0))
    >>> aug(torch.rand(3, 28, 28)).shape  # a single (C, H, W) image, as in a Dataset transform
    torch.Size([3, 28, 28])
    >>> aug(torch.rand(8, 1, 28, 28)).shape  # or a batch
    torch.Size([8, 1, 28, 28])
    """

    def __init__(
        self, displacement=1.0, *, temperature=None, cutoff=3, interpolation="bilinear", p=1.0, generator=None
    ):
        super().__init__()
        _check_cutoff(cutoff)
        if interpolation not in _INTERPOLATIONS:
            raise ValueError(f"interpolation must be 'bilinear' or 'nearest', got {interpolation!r}.")
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must lie in [0, 1], got {p!r}.")
        self.displacement = displacement
        self.temperature = temperature
        self.cutoff = cutoff
        self.interpolation = interpolation
        self.p = p
        self.generator = generator

    def forward(self, images):
        single = images.ndim == 3
        batch = images.unsqueeze(0) if single else images
        if batch.ndim != 4:
            raise ValueError(f"RandomDiffeomorphism expects (C, H, W) or (n, C, H, W), got {tuple(images.shape)}.")
        out = random_deform(
            batch,
            cutoff=self.cutoff,
            temperature=self.temperature,
            displacement=None if self.temperature is not None else self.displacement,
            interpolation=self.interpolation,
            generator=self.generator,
        )
        if self.p < 1.0:
            draw_device = self.generator.device if self.generator is not None else batch.device
            keep = torch.rand(batch.shape[0], generator=self.generator, device=draw_device).to(batch.device) >= self.p
            out = torch.where(keep.view(-1, 1, 1, 1), batch.to(out.dtype), out)
        return out[0] if single else out

    def extra_repr(self):
        if self.temperature is not None:
            size = f"temperature={self.temperature}"
        else:
            size = f"displacement={self.displacement}"
        return f"{size}, cutoff={self.cutoff}, interpolation={self.interpolation!r}, p={self.p}"
