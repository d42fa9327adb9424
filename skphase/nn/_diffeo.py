"""Deforming images by maximum-entropy random diffeomorphisms, and noise of matched norm.

An image ``x`` is deformed into ``x(p - tau(p))`` by bilinear (or nearest)
interpolation with coordinates clamped to the image, where ``tau`` is a
displacement field of :mod:`._diffeo_fields` (one field per image, shared
across its channels). Everything is batched.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..utils._images import min_image_size_error
from ._diffeo_fields import _check_cutoff, _resolve_temperature, _sines, diffeo_coefficients, displacement_field

__all__ = [
    "deform",
    "random_deform",
    "matched_noise",
    "RandomDiffeomorphism",
]

_INTERPOLATIONS = {"bilinear": "bilinear", "linear": "bilinear", "nearest": "nearest"}
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
    # c^2 = 9 for a GEMM against the (c^2, H W) basis of products of sines (benchmarks/bench_diffeo.py).
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


def deform(
    images: torch.Tensor,
    displacement: torch.Tensor,
    *,
    interpolation: str = "bilinear",
) -> torch.Tensor:
    """Deform images by displacement fields: ``out(p) = images(p - tau(p))``.

    Parameters
    ----------
    images : torch.Tensor of shape (n, C, H, W)
        The images to deform.
    displacement : torch.Tensor of shape (n, 2, H, W)
        In pixels, channel 0 along x (width), channel 1 along y (height); one
        field per image, applied to all of its channels.
    interpolation : {"bilinear", "nearest"}, default="bilinear"

    Returns
    -------
    torch.Tensor of shape (n, C, H, W)
        Source coordinates are clamped to the image (border values repeat).

    See Also
    --------
    random_deform : deform by random max-entropy displacement fields.
    sample_displacement : draw such fields.

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
    images: torch.Tensor,
    *,
    cutoff: int = 3,
    temperature: float | None = None,
    displacement: float | None = None,
    interpolation: str = "bilinear",
    generator: torch.Generator | None = None,
    return_displacement: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Apply one random max-entropy diffeomorphism to each image of a batch.

    Parameters
    ----------
    images : torch.Tensor of shape (n, C, H, W)
        The images to deform.
    cutoff, temperature, displacement : see :func:`sample_displacement`
        Default: typical displacement of 1 pixel, ``cutoff=3``.
    interpolation : {"bilinear", "nearest"}, default="bilinear"
    generator : torch.Generator, optional
        For reproducible draws; the global torch RNG otherwise.
    return_displacement : bool, default=False
        Also return the displacement fields.

    Returns
    -------
    deformed : torch.Tensor of shape (n, C, H, W)
        The deformed images.
    displacement : torch.Tensor of shape (n, 2, H, W)
        The displacement fields, in pixels; only if ``return_displacement``.

    See Also
    --------
    deform : deform by given displacement fields.
    RandomDiffeomorphism : the same as a data-augmentation module.

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


def matched_noise(
    images: torch.Tensor,
    perturbed: torch.Tensor,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Gaussian noise with, per image, the norm of ``perturbed - images``.

    ``eta_i = ||perturbed_i - x_i|| xi_i / ||xi_i||`` with ``xi_i ~ N(0, I)``: the
    isotropic perturbation that changes each image exactly as much as the
    deformation did, the reference for the relative stability ``R = D / G``.

    Parameters
    ----------
    images, perturbed : torch.Tensor of shape (n, ...)
        The images and their perturbed versions.
    generator : torch.Generator, optional
        The noise is drawn on the generator's device (CPU by default) and moved.

    Returns
    -------
    torch.Tensor shaped like ``images``
        The noise ``eta``, to add to ``images``.

    See Also
    --------
    random_deform : the perturbation whose norm the noise usually matches.

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
        Temperature of the diffeomorphisms; see :func:`sample_displacement`.
    cutoff : int, default=3
        Cut-off ``c >= 2`` of the sine series.
    interpolation : {"bilinear", "nearest"}, default="bilinear"
    p : float, default=1.0
        Probability that an image is deformed (the others pass unchanged).
    generator : torch.Generator, optional
        For reproducible augmentation; the global torch RNG otherwise.

    See Also
    --------
    random_deform : the function this module applies.

    Examples
    --------
    >>> aug = RandomDiffeomorphism(displacement=1.0, generator=torch.Generator().manual_seed(0))
    >>> aug(torch.rand(3, 28, 28)).shape  # a single (C, H, W) image, as in a Dataset transform
    torch.Size([3, 28, 28])
    >>> aug(torch.rand(8, 1, 28, 28)).shape  # or a batch
    torch.Size([8, 1, 28, 28])
    """

    def __init__(
        self,
        displacement: float = 1.0,
        *,
        temperature: float | None = None,
        cutoff: int = 3,
        interpolation: str = "bilinear",
        p: float = 1.0,
        generator: torch.Generator | None = None,
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
