"""2-D dual-tree complex wavelet packet transform (DT-CWPT) in torch: forward, inverse, pooled paths.

Design (why it is fast): the 2-D transform is separable, and the 1-D packet
decomposition of one tree at level ``J`` equals one strided convolution with
the composite filter of each packet (noble identities). So the whole transform
is two convolutions -- along the width with the ``2 * 2**J`` composite filters
of trees a and b, then along the height with the same filters -- instead of a
cascade over ``J`` levels, ``4**j`` nodes and four trees. Each strided
convolution is computed in polyphase form (the ``2**J`` phases of the signal as
input channels of a short dense convolution), the shape convolution libraries
are fastest at. Circular boundaries
make every real tree an orthogonal transform, and the complex combination is an
orthogonal mixing scaled to a Parseval frame, so the inverse is the adjoint
(transposed convolutions followed by a circular fold).

Layout: an input ``(..., H, W)`` gives ``(..., 2 * 4**J, H / 2**J, W / 2**J)``
complex coefficients; channel ``(kx * 2**J + ky) * 2 + s`` is packet ``kx``
along the width and ``ky`` along the height, with centre frequency
``(+xi_kx, +xi_ky)`` for ``s = 0`` and ``(+xi_kx, -xi_ky)`` for ``s = 1``
(see :func:`skphase.filters.dtcwpt_packet_info`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..filters import packet_filters_1d
from ..utils._images import check_packet_levels

__all__ = ["dtcwpt2d", "dtcwpt2d_parts", "idtcwpt2d", "dtcwpt_pool", "DTCWPT2d", "IDTCWPT2d", "POOLINGS"]

#: The ``pooling`` values of :func:`dtcwpt_pool` and :class:`DTCWPT2d`.
POOLINGS = ("modulus", "max", "real", "none")
_SCALE = 1.0 / (2.0 * math.sqrt(2.0))  # Parseval: sum |z|^2 = ||x||^2


def _filters(J, like):
    """Composite filters as cross-correlation kernels ``(2 * 2**J, L)`` (trees a then b).

    Each axis pass carries the square root of the Parseval scale, so no extra
    pass over the (large) output is needed.
    """
    bank = packet_filters_1d(J)[..., ::-1] * math.sqrt(_SCALE)
    bank = torch.as_tensor(bank.copy(), dtype=like.dtype, device=like.device)
    return bank.reshape(-1, bank.shape[-1])


def _wrap_index(n, stride, taps, device):
    """Indices of the circularly padded signal read by a strided convolution (and folded by its adjoint)."""
    return torch.remainder(torch.arange(n - stride + taps, device=device) - (taps - 1), n)


def _check_input(x, J, name="x"):
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}.")
    if x.ndim < 2:
        raise ValueError(f"{name} must have shape (..., H, W); got a tensor of shape {tuple(x.shape)}.")
    J = check_packet_levels(J)
    height, width = x.shape[-2:]
    size = 2**J
    if height % size or width % size:
        fix = (-(-height // size) * size, -(-width // size) * size)
        raise ValueError(
            f"The DT-CWPT with J={J} needs image height and width divisible by 2**J = {size}; got "
            f"{(height, width)}. Pad the images to {fix} (e.g. torch.nn.functional.pad) or use fewer levels."
        )
    return J


def _polyphase_pass(rows, weight, stride):
    """Strided circular correlation of every row with every filter, as a dense polyphase convolution.

    ``rows`` is ``(R, N)``; returns ``(R, N / stride, n_filters)``. The ``stride``
    phases of the padded signal become input channels (a free channels-last
    view), so the work is one well-shaped convolution with ``ceil(L / stride)``
    taps instead of a single-channel convolution with ``L`` taps.
    """
    n_filters, taps = weight.shape
    n = rows.shape[-1]
    n_out = n // stride
    blocks = -(-taps // stride)
    index = torch.remainder(torch.arange((n_out + blocks - 1) * stride, device=rows.device) - (taps - 1), n)
    padded = rows.index_select(1, index).view(rows.shape[0], 1, n_out + blocks - 1, stride)
    kernel = F.pad(weight, (0, blocks * stride - taps)).view(n_filters, blocks, stride)
    kernel = kernel.permute(0, 2, 1).unsqueeze(2)  # (filters, phase, 1, block)
    out = F.conv2d(padded.permute(0, 3, 1, 2), kernel)  # (R, filters, 1, n_out)
    return out.permute(0, 2, 3, 1).reshape(rows.shape[0], n_out, n_filters)


def _trees(x, J, stride):
    """Real coefficients of the four separable trees, ``(N, w, 2, P, h, 2, P)``.

    Axes: image, column, (tree, packet) along the width, row, (tree, packet) along the height.
    """
    weight = _filters(J, x)
    height, width = x.shape[-2:]
    n_images = x.numel() // (height * width)
    along_x = _polyphase_pass(x.reshape(-1, width), weight, stride)  # (N*H, w, 2P)
    columns = along_x.view(n_images, height, -1).transpose(1, 2).reshape(-1, height)  # (N*w*2P, H)
    along_y = _polyphase_pass(columns, weight, stride)  # (N*w*2P, h, 2P)
    P = weight.shape[0] // 2
    return along_y.view(n_images, width // stride, 2, P, height // stride, 2, P)


def dtcwpt2d(x: torch.Tensor, J: int, *, oversample: bool = False) -> torch.Tensor:
    """Forward 2-D DT-CWPT with circular boundaries.

    Parameters
    ----------
    x : torch.Tensor of shape (..., H, W)
        Real float32/float64 images on any device; H and W divisible by ``2**J``.
    J : int >= 1
        Number of packet levels: ``2 * 4**J`` complex maps per input map.
    oversample : bool, default=False
        Skip the sub-sampling of the last level (outputs at stride ``2**(J-1)``
        instead of ``2**J``): the input of the max-pooling path. Not invertible
        with :func:`idtcwpt2d`.

    Returns
    -------
    torch.Tensor of shape (..., 2 * 4**J, H / s, W / s)
        Complex (complex64 for float32 input, complex128 for float64), with
        ``s = 2**J`` (``2**(J-1)`` when oversampled). Without oversampling the
        transform is a Parseval frame: ``sum |z|^2 == sum x^2``.

    See Also
    --------
    idtcwpt2d : the inverse transform.
    dtcwpt_pool : the transform followed by a non-linear path.
    skphase.filters.dtcwpt_packet_info : what each output channel holds.

    Examples
    --------
    >>> import torch
    >>> x = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    >>> z = dtcwpt2d(x, 2)
    >>> tuple(z.shape), z.dtype
    ((2, 3, 32, 4, 4), torch.complex128)
    >>> bool(torch.allclose(z.abs().pow(2).sum(), x.pow(2).sum()))
    True
    >>> bool(torch.allclose(idtcwpt2d(z, 2), x))
    True
    """
    J = _check_input(x, J)
    stride = 2 ** (J - 1) if oversample else 2**J
    if _differentiable(x):
        z = torch.view_as_complex(_packets(x, J, stride).movedim(4, -1).contiguous())
    else:  # the parts written straight into a complex layout, re/im last: no copy
        shape = _packets_shape(x, J, stride)
        buffer = x.new_empty(shape[:4] + shape[5:] + (2,))
        _packets(x, J, stride, out=buffer.movedim(-1, 4))
        z = torch.view_as_complex(buffer)
    return z.reshape(x.shape[:-2] + (-1,) + z.shape[-2:])


def dtcwpt2d_parts(x: torch.Tensor, J: int, *, out: torch.Tensor | None = None) -> torch.Tensor:
    """Real and imaginary parts of :func:`dtcwpt2d`, each packet's two parts as two real maps.

    Parameters
    ----------
    x : torch.Tensor of shape (..., H, W)
        Real float32/float64 images; H and W divisible by ``2**J``.
    J : int >= 1
        Number of packet levels.
    out : torch.Tensor or None
        Contiguous real tensor of the returned shape to write into (any floating
        dtype: the values are cast as they are written), e.g. rows of the
        caller's output array; not with input that requires gradients.

    Returns
    -------
    torch.Tensor of shape (..., 2 * 4**J, 2, H / 2**J, W / 2**J)
        ``[..., k, 0]`` and ``[..., k, 1]`` are the real and imaginary parts of
        ``dtcwpt2d(x, J)[..., k, :, :]``; ``out`` when given.

    See Also
    --------
    dtcwpt2d : the complex coefficients.

    Examples
    --------
    >>> import torch
    >>> x = torch.randn(2, 16, 16, dtype=torch.float64)
    >>> parts = dtcwpt2d_parts(x, 2)
    >>> tuple(parts.shape)
    (2, 32, 2, 4, 4)
    >>> z = dtcwpt2d(x, 2)
    >>> bool(torch.equal(parts[:, :, 0], z.real) and torch.equal(parts[:, :, 1], z.imag))
    True
    """
    J = _check_input(x, J)
    shape = _packets_shape(x, J, 2**J)
    if out is not None:
        if _differentiable(x):
            raise RuntimeError("out= is not differentiable: call without out for input that requires grad.")
        if not out.is_contiguous() or out.numel() != math.prod(shape):
            raise ValueError(f"out must be a contiguous tensor of {math.prod(shape)} elements, got shape "
                             f"{tuple(out.shape)}.")
        out = out.view(shape)
    elif not _differentiable(x):
        out = x.new_empty(shape)
    packets = _packets(x, J, 2**J, out=out)
    return packets.reshape(x.shape[:-2] + (-1, 2) + shape[-2:])


def _differentiable(x):
    return torch.is_grad_enabled() and x.requires_grad


def _packets_shape(x, J, stride):
    """``(N, Px, Py, 2, 2, h, w)``: the shape :func:`_packets` returns."""
    height, width = x.shape[-2:]
    n_images = x.numel() // (height * width)
    return (n_images, 2**J, 2**J, 2, 2, height // stride, width // stride)


def _packets(x, J, stride, out=None):
    """Complex packets as real tensors ``(N, Px, Py, 2, re/im, h, w)``.

    Axis 3 pairs the packets ``(psi_a + i psi_b)(x) (psi_a + i psi_b)(y)`` and
    ``(psi_a + i psi_b)(x) conj(psi_a + i psi_b)(y)`` of the four trees. With
    ``out`` (of that shape, any strides, any floating dtype) the parts are written
    straight into it: no complex temporaries, no stack, no copy; without it they
    are stacked, differentiably.
    """
    if not x.is_floating_point():
        raise TypeError(f"x must be a float32 or float64 tensor, got {x.dtype}.")
    R = _trees(x, J, stride).permute(0, 2, 5, 3, 6, 4, 1)  # (N, tx, ty, Px, Py, h, w), scaled by _SCALE
    aa, ab = R[:, 0, 0], R[:, 0, 1]  # (tree along width, tree along height)
    ba, bb = R[:, 1, 0], R[:, 1, 1]
    if out is None:
        return torch.stack((torch.stack((aa - bb, ab + ba), 3), torch.stack((aa + bb, ba - ab), 3)), 3)
    torch.sub(aa, bb, out=out[:, :, :, 0, 0])
    torch.add(ab, ba, out=out[:, :, :, 0, 1])
    torch.add(aa, bb, out=out[:, :, :, 1, 0])
    torch.sub(ba, ab, out=out[:, :, :, 1, 1])
    return out


def idtcwpt2d(z: torch.Tensor, J: int) -> torch.Tensor:
    """Inverse (adjoint) of :func:`dtcwpt2d` (not oversampled).

    Parameters
    ----------
    z : torch.Tensor of shape (..., 2 * 4**J, h, w), complex
        Coefficients as :func:`dtcwpt2d` returns them.
    J : int >= 1
        Number of packet levels of the forward transform.

    Returns
    -------
    torch.Tensor of shape (..., h * 2**J, w * 2**J), real
        Exact reconstruction when ``z = dtcwpt2d(x, J)``; otherwise the image
        whose transform is nearest to ``z`` (orthogonal projection of a Parseval frame).

    See Also
    --------
    dtcwpt2d : the forward transform.

    Examples
    --------
    >>> import torch
    >>> from skphase.nn import dtcwpt2d, idtcwpt2d
    >>> x = torch.randn(1, 16, 16, dtype=torch.float64)
    >>> bool(torch.allclose(idtcwpt2d(dtcwpt2d(x, 2), 2), x))
    True
    """
    J = check_packet_levels(J)
    if not isinstance(z, torch.Tensor) or not z.is_complex():
        raise TypeError("z must be a complex torch.Tensor as returned by dtcwpt2d.")
    P = 2**J
    if z.ndim < 3 or z.shape[-3] != 2 * P * P:
        raise ValueError(
            f"z must have shape (..., {2 * P * P}, h, w) for J={J}; got {tuple(z.shape)}. "
            "Pass the J used in the forward transform."
        )
    h, w = z.shape[-2:]
    zz = z.reshape((-1, P, P, 2, h, w))  # the filters carry the Parseval scale
    re_pp, im_pp = zz[:, :, :, 0].real, zz[:, :, :, 0].imag
    re_pm, im_pm = zz[:, :, :, 1].real, zz[:, :, :, 1].imag
    aa, bb = re_pp + re_pm, re_pm - re_pp  # adjoint of the orthogonal complex combination
    ab, ba = im_pp - im_pm, im_pp + im_pm
    R = torch.stack((torch.stack((aa, ab), dim=2), torch.stack((ba, bb), dim=2)), dim=1)  # (N,2,P,2,P,h,w)
    weight = _filters(J, R)
    n_out, taps = weight.shape
    height, width = h * P, w * P
    cols = R.reshape(-1, n_out, h, w)
    cols = F.conv_transpose2d(cols, weight.view(n_out, 1, taps, 1), stride=(P, 1))
    idx = _wrap_index(height, P, taps, z.device)
    cols = cols.new_zeros(cols.shape[:2] + (height, w)).index_add(2, idx, cols)
    rows = cols.reshape(-1, n_out, height, w)
    rows = F.conv_transpose2d(rows, weight.view(n_out, 1, 1, taps), stride=(1, P))
    idx = _wrap_index(width, P, taps, z.device)
    rows = rows.new_zeros(rows.shape[:3] + (width,)).index_add(3, idx, rows)
    return rows.reshape(z.shape[:-3] + (height, width))


def dtcwpt_pool(x: torch.Tensor, J: int, pooling: str = "modulus") -> torch.Tensor:
    """The DT-CWPT followed by one of the non-linear paths compared in Leterme et al.

    Parameters
    ----------
    x : torch.Tensor of shape (..., H, W)
        Real images; H and W divisible by ``2**J``.
    J : int >= 1
        Output stride ``2m = 2**J``.
    pooling : {"modulus", "max", "real", "none"}
        - "modulus": ``|x * W|`` sub-sampled by ``2m`` (the complex modulus path);
        - "max": ``MaxPool3x3/2((x * Re W) sub-sampled by m)`` with circular padding
          (the real CNN path; grid of 3 x 3 points spaced ``m`` apart);
        - "real": ``Re(x * W)`` sub-sampled by ``2m`` (linear, no pooling);
        - "none": the complex coefficients.

    Returns
    -------
    torch.Tensor of shape (..., 2 * 4**J, H / 2**J, W / 2**J)
        Real, except complex for "none".

    See Also
    --------
    dtcwpt2d : the transform alone.
    DTCWPT2d : the module form.

    Examples
    --------
    >>> import torch
    >>> x = torch.randn(1, 1, 32, 32)
    >>> dtcwpt_pool(x, 2, "max").shape
    torch.Size([1, 1, 32, 8, 8])
    """
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}.")
    if pooling == "max":
        real = dtcwpt2d(x, J, oversample=True).real
        lead = real.shape[:-2]
        flat = F.pad(real.reshape((-1,) + real.shape[-3:]), (1, 1, 1, 1), mode="circular")
        pooled = F.max_pool2d(flat, kernel_size=3, stride=2)
        return pooled.reshape(lead + pooled.shape[-2:])
    z = dtcwpt2d(x, J)
    if pooling == "modulus":
        return z.abs()
    if pooling == "real":
        return z.real
    return z


class DTCWPT2d(torch.nn.Module):
    """Module form of :func:`dtcwpt2d` / :func:`dtcwpt_pool`.

    Parameters
    ----------
    J : int >= 1
        Number of packet levels: ``2 * 4**J`` complex maps per input map.
    pooling : {"none", "modulus", "max", "real"}, default="none"
        The path after the transform, as in :func:`dtcwpt_pool` (``POOLINGS``).
    flatten : bool, default=True
        Merge input channels and packets: ``(n, C, H, W) -> (n, C * 2 * 4**J, h, w)``.

    See Also
    --------
    IDTCWPT2d : the inverse module.
    skphase.DTCWPTFeatures : the transform as a scikit-learn transformer.

    Examples
    --------
    >>> import torch
    >>> layer = DTCWPT2d(J=2, pooling="modulus")
    >>> layer(torch.randn(4, 3, 32, 32)).shape
    torch.Size([4, 96, 8, 8])
    """

    def __init__(self, J: int = 2, pooling: str = "none", flatten: bool = True):
        super().__init__()
        self.J = check_packet_levels(J)
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}.")
        self.pooling = pooling
        self.flatten = flatten

    def forward(self, x):
        out = dtcwpt_pool(x, self.J, self.pooling)
        if self.flatten and out.ndim >= 5:
            out = out.flatten(-4, -3)
        return out

    def extra_repr(self):
        return f"J={self.J}, pooling={self.pooling!r}, flatten={self.flatten}"


class IDTCWPT2d(torch.nn.Module):
    """Module form of :func:`idtcwpt2d` (accepts the flattened layout of :class:`DTCWPT2d`).

    Parameters
    ----------
    J : int >= 1
        Number of packet levels: ``2 * 4**J`` complex maps per input map.
    n_channels : int or None, default=None
        Input channels of the images; when given, ``(n, C * 2 * 4**J, h, w)`` is unflattened first.

    See Also
    --------
    DTCWPT2d : the forward module.

    Examples
    --------
    >>> import torch
    >>> from skphase.nn import DTCWPT2d, IDTCWPT2d
    >>> x = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    >>> z = DTCWPT2d(J=2)(x)
    >>> bool(torch.allclose(IDTCWPT2d(J=2, n_channels=3)(z), x))
    True
    """

    def __init__(self, J: int = 2, n_channels: int | None = None):
        super().__init__()
        self.J = check_packet_levels(J)
        self.n_channels = n_channels

    def forward(self, z):
        if self.n_channels is not None:
            z = z.unflatten(-3, (self.n_channels, 2 * 4**self.J))
        return idtcwpt2d(z, self.J)

    def extra_repr(self):
        return f"J={self.J}, n_channels={self.n_channels}"
