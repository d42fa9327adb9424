"""Shift invariance: relative output change under shifts, max pooling vs modulus, gamma_q, flip rate.

Measures from Leterme, Polisano, Perrier, Alahari, "On the shift invariance of
max pooling feature maps in convolutional neural networks" (arXiv 2209.11740),
written for any representation: a torch module, a fitted transformer or
pipeline prefix, or a callable (through :class:`skphase.metrics._probes.ModelProbe`, so the
model gets batches shaped like ``X``: a pipeline fitted on flat rows gets shifted flat rows).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import ArrayLike

from ..filters import dtcwpt_packet_info, packet_filters_1d
from ..nn import dtcwpt_pool
from ..utils import resolve_device
from ..utils._images import check_images
from ..utils._torch import iter_batches
from ._probes import ModelProbe, input_dtype

__all__ = [
    "shift_images",
    "shift_sensitivity",
    "maxpool_modulus_error",
    "gamma_q",
    "dtcwpt_gamma",
    "mean_flip_rate",
]

_ONE_PIXEL = ((0, 1), (1, 0), (0, -1), (-1, 0))


def shift_images(X: torch.Tensor, shift: tuple[float, float], *, mode: str = "circular") -> torch.Tensor:
    """Translate images by ``shift = (dy, dx)`` pixels (down, right), integer or sub-pixel.

    Parameters
    ----------
    X : torch.Tensor of shape (n, C, H, W)
        The images.
    shift : tuple of 2 floats
        ``(dy, dx)`` in pixels, down and right.
    mode : {"circular", "zero"}, default="circular"
        "circular": periodic images; integer shifts roll, sub-pixel shifts are
        band-limited (Fourier phase ramp). "zero": pixels shifted in are zero;
        sub-pixel shifts interpolate bilinearly (exact for integer shifts).

    Returns
    -------
    torch.Tensor of the shape and dtype of ``X``
        The shifted images.

    See Also
    --------
    shift_sensitivity, mean_flip_rate : the measurements that shift images with it.

    Examples
    --------
    >>> import torch
    >>> x = torch.arange(4.0).view(1, 1, 1, 4)
    >>> shift_images(x, (0, 1)).flatten().tolist()
    [3.0, 0.0, 1.0, 2.0]
    >>> shift_images(x, (0, 1), mode="zero").flatten().tolist()
    [0.0, 0.0, 1.0, 2.0]
    """
    dy, dx = (float(s) for s in shift)
    if mode not in ("circular", "zero"):
        raise ValueError(f"mode must be 'circular' or 'zero', got {mode!r}.")
    height, width = X.shape[-2:]
    integer = dy.is_integer() and dx.is_integer()
    if mode == "circular":
        if integer:
            return torch.roll(X, shifts=(int(dy), int(dx)), dims=(-2, -1))
        ky = torch.fft.fftfreq(height, device=X.device, dtype=X.dtype)[:, None]
        kx = torch.fft.fftfreq(width, device=X.device, dtype=X.dtype)[None, :]
        ramp = torch.exp(-2j * math.pi * (ky * dy + kx * dx))
        # the input is real: the real part drops the imaginary residue of the Nyquist bins
        return torch.fft.ifft2(torch.fft.fft2(X) * ramp).real.to(X.dtype)
    if integer:
        out = torch.zeros_like(X)
        iy, ix = int(dy), int(dx)
        src_y = slice(max(0, -iy), height - max(0, iy))
        src_x = slice(max(0, -ix), width - max(0, ix))
        dst_y = slice(max(0, iy), height - max(0, -iy))
        dst_x = slice(max(0, ix), width - max(0, -ix))
        out[..., dst_y, dst_x] = X[..., src_y, src_x]
        return out
    # bilinear with zeros outside: output pixel (i, j) reads input at (i - dy, j - dx)
    theta = torch.tensor(
        [[1.0, 0.0, -2.0 * dx / max(width - 1, 1)], [0.0, 1.0, -2.0 * dy / max(height - 1, 1)]],
        dtype=X.dtype,
        device=X.device,
    )
    flat = X.reshape((-1, 1) + X.shape[-2:]) if X.ndim != 4 else X
    grid = F.affine_grid(theta.expand(flat.shape[0], 2, 3), list(flat.shape), align_corners=True)
    out = F.grid_sample(flat, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    return out.reshape(X.shape)


def _grouped(output, n_channels):
    """``(n, n_channels, -1)`` view of a representation, channels on axis 1."""
    output = output.reshape(output.shape[0], -1) if output.ndim == 2 else output
    if output.ndim >= 3:
        return output.reshape(output.shape[0], output.shape[1], -1)
    if output.shape[1] % n_channels:
        raise ValueError(
            f"The output has {output.shape[1]} features, not a multiple of n_channels={n_channels}; "
            "pass the number of output maps (e.g. a fitted transformer's output_shape_[0])."
        )
    return output.reshape(output.shape[0], n_channels, -1)


def _as_float(t):
    t = t.detach()
    if t.is_complex():
        t = torch.view_as_real(t).movedim(-1, 2)  # real and imaginary parts stay in their channel
    return t.to(torch.float64)


def _check_shifts(shifts):
    """``shifts`` as a list of pairs ``(dy, dx)`` (pixels, fractions allowed); a clear error for anything else."""
    try:
        pairs = [tuple(shift) for shift in shifts]
    except TypeError:
        pairs = None
    def is_number(v):
        return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)

    if pairs is None or isinstance(shifts, str) or not all(len(p) == 2 and all(map(is_number, p)) for p in pairs):
        raise ValueError(f"shifts must be a sequence of pairs of numbers (dy, dx), e.g. [(0, 1), (1, 0)]; "
                         f"got {shifts!r}.")
    if not pairs:
        raise ValueError("shifts is empty; give at least one (dy, dx).")
    return pairs


def shift_sensitivity(
    model: object,
    X: ArrayLike,
    *,
    shifts: Sequence[tuple[float, float]] = _ONE_PIXEL,
    mode: str = "circular",
    n_channels: int | None = None,
    batch_size: int = 128,
    device: str | torch.device | None = None,
) -> dict[str, Any]:
    """Relative change of a representation when its input is shifted.

    For each shift ``u``, ``r(u) = sqrt(sum_x ||f(tau_u x) - f(x)||^2 / sum_x ||f(x)||^2)``
    over the images, overall and per output channel (no re-alignment of the
    output: this measures invariance, not equivariance).

    Parameters
    ----------
    model : torch.nn.Module, fitted transformer, pipeline prefix or callable
        See :func:`skphase.metrics.as_batch_function`; it is called on batches shaped
        like ``X`` (flat rows stay flat).
    X : array-like or torch.Tensor of shape (n, C, H, W), (n, H, W) or (n, d)
        The images.
    shifts : sequence of (dy, dx), default=the four one-pixel shifts
        Integer or sub-pixel.
    mode : {"circular", "zero"}, default="circular"
        Boundary of the shifted image, see :func:`shift_images`.
    n_channels : int or None
        Output channels for flat ``(n, d)`` outputs (contiguous groups of
        features). None: axis 1 for outputs with >= 3 axes, else the model's
        ``output_shape_[0]`` when it has one, else 1.
    batch_size : int, default=128
        Images per call of the model; bounds memory.
    device : str, torch.device or None
        For torch modules; None uses the module's own device.

    Returns
    -------
    dict
        ``overall`` (float, mean of ``per_shift``), ``per_shift`` (n_shifts,),
        ``per_channel`` (n_channels,) averaged over shifts, ``per_shift_channel``
        (n_shifts, n_channels).

    See Also
    --------
    mean_flip_rate : how often a classifier's prediction changes.
    shift_images : the shifts applied.

    Examples
    --------
    >>> import torch
    >>> x = torch.randn(8, 1, 16, 16)
    >>> shift_sensitivity(lambda b: b.mean(dim=(2, 3)), x)["overall"] < 1e-6
    True
    """
    probe = ModelProbe(model, X, device=device)
    shifts = _check_shifts(shifts)
    if n_channels is None:
        shape = getattr(model, "output_shape_", None)
        n_channels = int(shape[0]) if shape is not None else 1
    if isinstance(n_channels, bool) or not isinstance(n_channels, numbers.Integral) or n_channels < 1:
        raise ValueError(f"n_channels must be a positive integer (channels of the representation), "
                         f"got {n_channels!r}.")
    change = norm = None
    with probe:
        for batch in iter_batches(probe.images.shape[0], batch_size):
            x = probe.images[batch].to(probe.device)
            ref = _grouped(_as_float(probe.output(x)), n_channels)
            shifted = (_grouped(_as_float(probe.output(shift_images(x, u, mode=mode))), n_channels) for u in shifts)
            diffs = torch.stack([(out - ref).pow(2).sum((0, 2)) for out in shifted]).cpu()
            energy = ref.pow(2).sum((0, 2)).cpu()
            change = diffs if change is None else change + diffs
            norm = energy if norm is None else norm + energy
    tiny = torch.finfo(torch.float64).tiny
    per_shift_channel = torch.sqrt(change / norm.clamp_min(tiny))
    per_shift = torch.sqrt(change.sum(1) / norm.sum().clamp_min(tiny))
    return {
        "overall": float(per_shift.mean()),
        "per_shift": per_shift.numpy(),
        "per_channel": per_shift_channel.mean(0).numpy(),
        "per_shift_channel": per_shift_channel.numpy(),
    }


def maxpool_modulus_error(
    X: ArrayLike,
    *,
    J: int = 3,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """Normalised squared error between the max-pool and modulus paths, per DT-CWPT channel.

    ``e_c = sum ||MaxPool((x * Re W_c) sub-sampled by m) - |x * W_c| sub-sampled by 2m||^2
    / sum || |x * W_c| sub-sampled by 2m ||^2`` with ``m = 2**(J-1)``, summed over
    images and input maps (Leterme et al.; 3 x 3 max pooling, stride 2).

    Parameters
    ----------
    X : array-like or torch.Tensor of shape (n, C, H, W)
        H and W divisible by ``2**J``.
    J : int, default=3
        Number of packet levels.
    batch_size : int, default=64
        Images per transform; bounds memory.
    device : str or torch.device, default="cpu"
        Where the transforms run.

    Returns
    -------
    ndarray of shape (2 * 4**J,)
        Compare ``sqrt(e_c)`` with ``gamma_q(m * xi_c)``
        (:func:`skphase.filters.dtcwpt_packet_info` gives ``xi_c``).

    See Also
    --------
    dtcwpt_gamma : its prediction from the filters alone.
    skphase.nn.dtcwpt_pool : the two paths compared.

    Examples
    --------
    >>> import torch
    >>> maxpool_modulus_error(torch.randn(2, 1, 32, 32), J=2).shape
    (32,)
    """
    images = check_images(X, dtype=input_dtype(X))
    dev = resolve_device(device)
    error = norm = torch.zeros((), dtype=torch.float64)  # per channel after the first batch
    for batch in iter_batches(images.shape[0], batch_size):
        x = images[batch].to(dev)
        modulus = dtcwpt_pool(x, J, "modulus")
        pooled = dtcwpt_pool(x, J, "max")
        error = error + (pooled - modulus).double().pow(2).sum((0, 1, 3, 4)).cpu()
        norm = norm + modulus.double().pow(2).sum((0, 1, 3, 4)).cpu()
    return (error / norm.clamp_min(torch.finfo(torch.float64).tiny)).numpy()


def gamma_q(w: ArrayLike, q: int = 1) -> np.ndarray:
    """The predictor ``gamma_q(w)`` of the max-pool vs modulus error (Leterme et al.).

    ``gamma_q(w)^2 = 3/2 + 1/(4 pi) sum_i [sin d_i - 8 sin(d_i / 2)]`` where
    ``d_i`` are the gaps between the sorted phases ``<w, p> mod 2 pi`` over the
    grid ``p in {-q..q}^2`` (the last gap wraps around). It equals
    ``E_phi[(max_p cos(phi + <w, p>) - 1)^2]`` for a uniform phase ``phi``:
    0 when the phases fill the circle, 3/2 on the lattice ``w in 2 pi Z^2``.

    Parameters
    ----------
    w : array-like of shape (..., 2)
        Frequency times the max-pool grid spacing, e.g. ``m * xi`` (radians).
    q : int, default=1
        Pooling half-width: a ``(2q+1) x (2q+1)`` max pool.

    Returns
    -------
    ndarray of shape (...)
        ``gamma_q(w)``, in ``[0, sqrt(3/2)]``.

    See Also
    --------
    dtcwpt_gamma : the predictor averaged over the band of each DT-CWPT channel.

    Examples
    --------
    >>> round(float(gamma_q([2 * np.pi, 0.0]) ** 2), 6)
    1.5
    >>> round(float(gamma_q([np.pi, 0.0]) ** 2), 4)
    0.2268
    """
    w = np.asarray(w, dtype=np.float64)
    if w.shape[-1:] != (2,):
        raise ValueError(f"w must have shape (..., 2), got {w.shape}.")
    if int(q) != q or q < 0:
        raise ValueError(f"q must be a non-negative integer, got {q!r}.")
    grid = np.arange(-int(q), int(q) + 1)
    p = np.stack(np.meshgrid(grid, grid, indexing="ij"), axis=-1).reshape(-1, 2)
    phases = np.sort(np.mod(w @ p.T, 2 * np.pi), axis=-1)
    gaps = np.diff(phases, axis=-1, append=phases[..., :1] + 2 * np.pi)
    value = 1.5 + (np.sin(gaps) - 8 * np.sin(gaps / 2)).sum(axis=-1) / (4 * np.pi)
    return np.sqrt(np.clip(value, 0.0, None))


def dtcwpt_gamma(J: int, *, q: int = 1, X: ArrayLike | None = None, n_freq: int = 256) -> np.ndarray:
    """Predict ``gamma_q`` for every DT-CWPT channel, averaged over the frequencies it passes.

    A plane wave of frequency ``w`` gives a max-pool vs modulus squared error of
    exactly ``gamma_q(m w)^2`` on the channel it excites (``m = 2**(J-1)``). A
    channel passes a band of frequencies, weighted by its response ``|W_c(w)|^2``
    and, for real inputs, by their power spectrum ``S(w)``; this returns
    ``sqrt(sum_w |W_c(w)|^2 S(w) gamma_q(m w)^2 / sum_w |W_c(w)|^2 S(w)``).
    With a single frequency it reduces to ``gamma_q(m xi)``.

    Parameters
    ----------
    J : int >= 1
        Number of packet levels.
    q : int, default=1
        Max-pool half-width (3 x 3 pooling).
    X : array-like of images or None, default=None
        Inputs whose mean power spectrum (over images and channels) weights the
        frequencies; None for a white spectrum (the filter response alone).
    n_freq : int, default=256
        Frequency grid per axis.

    Returns
    -------
    ndarray of shape (2 * 4**J,)
        The predicted ``sqrt(e_c)`` of :func:`maxpool_modulus_error`, per channel.

    See Also
    --------
    gamma_q : the predictor at one frequency.
    maxpool_modulus_error : the measured error it predicts.

    Examples
    --------
    >>> dtcwpt_gamma(2).shape
    (32,)
    """
    info = dtcwpt_packet_info(J)
    m = 2 ** (J - 1)
    bank = packet_filters_1d(J)
    response = np.abs(np.fft.fft(bank[0] + 1j * bank[1], n_freq)) ** 2  # (2**J, n_freq)
    w = 2 * np.pi * np.fft.fftfreq(n_freq)
    wx, wy = np.meshgrid(w, w, indexing="ij")
    gamma2 = gamma_q(m * np.stack([wx, wy], axis=-1), q=q) ** 2  # [x, y]
    if X is None:
        spectrum = np.ones((n_freq, n_freq))
    else:
        images = check_images(X).to(torch.float64)
        images = images - images.mean(dim=(-2, -1), keepdim=True)
        power = torch.fft.fft2(images, s=(n_freq, n_freq)).abs().pow(2).mean(dim=(0, 1))  # [y, x]
        spectrum = power.numpy().T
    mirror = np.remainder(-np.arange(n_freq), n_freq)
    out = np.empty(info["kx"].size)
    for c, (kx, ky, sign) in enumerate(zip(info["kx"], info["ky"], info["sign"])):
        along_y = response[ky] if sign > 0 else response[ky][mirror]  # conj pair: mirrored response
        weights = response[kx][:, None] * along_y[None, :] * spectrum
        out[c] = np.sqrt((weights * gamma2).sum() / weights.sum())
    return out


def mean_flip_rate(
    classifier: object,
    X: ArrayLike,
    *,
    shifts: Sequence[tuple[float, float]] = _ONE_PIXEL,
    mode: str = "circular",
    batch_size: int = 256,
) -> float:
    """How often a classifier's prediction changes when the image moves by one pixel.

    Parameters
    ----------
    classifier : object with ``predict``, torch module returning scores, or callable
        A callable may return labels or ``(n, n_classes)`` scores (argmax taken). It is called
        on batches shaped like ``X`` (flat rows stay flat).
    X : array-like or torch.Tensor of images
        ``(n, C, H, W)``, ``(n, H, W)`` or flat ``(n, d)``.
    shifts : sequence of (dy, dx), default=the four one-pixel shifts
        The ``(dy, dx)`` shifts tried on every image.
    mode : {"circular", "zero"}, default="circular"
        Boundary of the shifted image, see :func:`shift_images`.
    batch_size : int, default=256
        Images per call of the classifier.

    Returns
    -------
    float
        Fraction of (image, shift) pairs whose predicted label differs from the
        prediction on the unshifted image.

    See Also
    --------
    shift_sensitivity : the change of a representation, rather than of a prediction.

    Examples
    --------
    >>> import torch
    >>> x = torch.rand(10, 1, 8, 8)
    >>> mean_flip_rate(lambda b: (b.mean(dim=(1, 2, 3)) > 0.5).long(), x)
    0.0
    """
    probe = ModelProbe(classifier, X)
    shifts = _check_shifts(shifts)
    flips = 0
    with probe:
        for batch in iter_batches(probe.images.shape[0], batch_size):
            x = probe.images[batch].to(probe.device)
            ref = probe.predict(x)
            flips += sum(int((probe.predict(shift_images(x, u, mode=mode)) != ref).sum()) for u in shifts)
    return flips / (probe.images.shape[0] * len(shifts))

