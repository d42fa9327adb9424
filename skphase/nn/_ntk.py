"""The neural tangent kernel of a ReLU convolutional network without pooling, block by block.

Layer 1 compares the (transformed) patches of two images at each position; each deeper layer applies
the ReLU expectations and averages over a ``window`` neighbourhood, a 'same' (zero-padded) or 'valid'
convolution; the read-out sees every position of the last layer. :class:`skphase.nn.PatchKernel`
sums these blocks into a kernel matrix (``kernel="ntk"``).
"""

import math

import torch

__all__ = ["NTK_PADDINGS", "ntk_block", "ntk_layer_grids"]

NTK_PADDINGS = ("same", "valid")


class _ArcCos1(torch.autograd.Function):
    """``kappa_1(rho) = (sqrt(1 - rho^2) + (pi - arccos rho) rho) / pi``; derivative ``kappa_0``.

    Written as one function because autograd through ``sqrt(1 - rho^2)`` and
    ``arccos`` separately gives ``inf - inf`` at ``rho = +-1`` while the true
    derivative is finite there.
    """

    @staticmethod
    def forward(ctx, rho):
        ctx.save_for_backward(rho)
        theta = torch.arccos(rho)
        return (torch.sqrt((1 - rho * rho).clamp_min(0)) + (math.pi - theta) * rho) / math.pi

    @staticmethod
    def backward(ctx, grad):
        (rho,) = ctx.saved_tensors
        return grad * _ArcCos0.apply(rho)


class _ArcCos0(torch.autograd.Function):
    """``kappa_0(rho) = (pi - arccos rho) / pi``; derivative ``1 / (pi sqrt(1 - rho^2))``.

    The derivative is infinite at ``rho = +-1`` (an image compared with
    itself); it is set to 0 there, the convention of the Laplace kernel.
    """

    @staticmethod
    def forward(ctx, rho):
        ctx.save_for_backward(rho)
        return (math.pi - torch.arccos(rho)) / math.pi

    @staticmethod
    def backward(ctx, grad):
        (rho,) = ctx.saved_tensors
        gap = (1 - rho * rho).clamp_min(0)
        tiny = torch.finfo(rho.dtype).eps
        safe = torch.where(gap > tiny, gap, torch.ones_like(gap))
        return torch.where(gap > tiny, grad / (math.pi * safe.sqrt()), torch.zeros_like(grad))


def _relu_expectations(cov, var_x, var_z):
    """ReLU NNGP ``E`` and derivative ``E_dot`` (c_sigma = 2) from covariances."""
    tiny = torch.finfo(cov.dtype).tiny ** 0.25
    scale = torch.sqrt(var_x * var_z + tiny)
    rho = (cov / scale).clamp(-1.0, 1.0)
    return scale * _ArcCos1.apply(rho), _ArcCos0.apply(rho)


def _check_ntk_padding(ntk_padding):
    if ntk_padding not in NTK_PADDINGS:
        raise ValueError(f"ntk_padding must be one of {NTK_PADDINGS}, got {ntk_padding!r}.")


def ntk_layer_grids(grid, window, ntk_depth, ntk_padding="same"):
    """Position grids of the NTK's layers, the first (patches) to the last (read-out).

    Parameters
    ----------
    grid : pair of int
        Positions of the patches, ``(H_out, W_out)``.
    window : pair of int
        Filter size of the deeper layers.
    ntk_depth : int
        Number of layers.
    ntk_padding : {"same", "valid"}, default="same"
        'same' layers keep the grid; 'valid' ones shrink it by ``window - 1``.

    Returns
    -------
    list of ntk_depth pairs of int
        The grid of each layer.

    Raises
    ------
    ValueError
        When 'valid' layers leave no position: the images are too small for ``ntk_depth``.
    """
    _check_ntk_padding(ntk_padding)
    grids = [tuple(grid)]
    for _ in range(ntk_depth - 1):
        last = grids[-1]
        grids.append(last if ntk_padding == "same" else (last[0] - window[0] + 1, last[1] - window[1] + 1))
    if min(grids[-1]) < 1:
        raise ValueError(
            f"A patch grid of {tuple(grid)} positions is too small for {ntk_depth} NTK layers with 'valid' "
            f"{tuple(window)} filters (each removes {window[0] - 1} x {window[1] - 1} positions); use larger "
            f"images, a smaller ntk_depth or ntk_padding='same'."
        )
    return grids


def _window_average(maps, window, grid, ntk_padding="same"):
    """Average each ``(H, W)`` map over a ``window`` neighbourhood.

    With ``"same"`` (zero padding) this equals ``avg_pool2d(padding=window // 2,
    count_include_pad=True)`` cropped to ``grid``; with ``"valid"`` it equals
    ``avg_pool2d(window, stride=1)``, whose maps are smaller. Both are done as
    two 1-D box sums of shifted in-place adds into one copy: on the many
    single-channel maps of an NTK block, pooling (or padding a copy) took
    25-40 % of the kernel's time.
    """
    lead = maps.shape[:-1]
    out = maps.reshape(-1, *grid)
    for dim, (size, width) in zip((1, 2), zip(grid, window)):
        if ntk_padding == "valid":
            kept = size - width + 1
            total = out.narrow(dim, 0, kept).clone()
            for shift in range(1, width):
                total.add_(out.narrow(dim, shift, kept))
        else:
            before = width // 2
            total = out.clone()
            # Output i sums input i + shift for shift in [-before, width - 1 - before].
            for shift in range(-before, width - before):
                if shift == 0 or abs(shift) >= size:
                    continue
                lo, hi = max(0, -shift), size - max(0, shift)
                total.narrow(dim, lo, hi - lo).add_(out.narrow(dim, lo + shift, hi - lo))
        out = total.div_(width)
    return out.reshape(*lead, -1)


def _first_layer(A, B):
    """Layer-1 covariances ``(nb, mb, P)`` and variances ``(nb, P)``, ``(mb, P)`` of the NTK."""
    r = A.shape[-1]
    cov = torch.einsum("pnd,pmd->nmp", A, B) / r
    return cov, (A.square().sum(-1) / r).T.contiguous(), (B.square().sum(-1) / r).T.contiguous()


def _next_layer_inputs(nngp, ntk, var_a, var_b, window, grid, ntk_padding):
    """What a ``window`` conv layer sees: every map averaged over the window.

    The variances are averaged as they are: ``E[relu(u)^2]`` with ``c_sigma = 2``
    is the variance itself.
    """
    return tuple(_window_average(maps, window, grid, ntk_padding) for maps in (nngp, ntk, var_a, var_b))


def ntk_block(A, B, grids, window, ntk_padding):
    """ReLU conv-net NTK (no pooling, read-out over all positions) of a block, summed over positions.

    Layer 1 covariance at a position is ``<a_p, b_p> / r``; each deeper layer
    applies the ReLU expectation and averages it over a ``window``
    neighbourhood ('same' or 'valid' convolution; ``grids`` from
    :func:`ntk_layer_grids`); the read-out adds the last layer's NTK and NNGP
    terms at every position. Without gradients the in-place
    :func:`_ntk_block_inplace` computes the same numbers.
    """
    if not (torch.is_grad_enabled() and (A.requires_grad or B.requires_grad)):
        return _ntk_block_inplace(A, B, grids, window, ntk_padding)
    depth = len(grids)
    cov, var_a, var_b = _first_layer(A, B)
    ntk = cov
    for layer in range(depth):
        nngp, deriv = _relu_expectations(cov, var_a[:, None, :], var_b[None, :, :])
        ntk = ntk * deriv + nngp
        if layer == depth - 1:
            break
        cov, ntk, var_a, var_b = _next_layer_inputs(nngp, ntk, var_a, var_b, window, grids[layer], ntk_padding)
    return ntk.sum(-1)


def _ntk_block_inplace(A, B, grids, window, ntk_padding):
    """:func:`ntk_block` without autograd, in a few reused buffers (1.5x faster).

    With ``theta = arccos(rho)``: ``kappa_0 = (pi - theta) / pi`` and
    ``kappa_1 = (sin theta + (pi - theta) rho) / pi``, so one arccos and one
    square root per layer serve both terms.
    """
    depth = len(grids)
    cov, var_a, var_b = _first_layer(A, B)
    tiny = torch.finfo(cov.dtype).tiny ** 0.25
    ntk = cov.clone()
    angle, nngp = torch.empty_like(cov), torch.empty_like(cov)
    for layer in range(depth):
        if angle.shape != cov.shape:  # 'valid' layers shrink the maps
            angle, nngp = torch.empty_like(cov), torch.empty_like(cov)
        scale = torch.sqrt(var_a[:, None, :] * var_b[None, :, :] + tiny)
        rho = cov.div_(scale).clamp_(-1.0, 1.0)
        torch.arccos(rho, out=angle)
        angle.neg_().add_(math.pi)  # pi - theta
        torch.mul(rho, rho, out=nngp).neg_().add_(1.0).clamp_min_(0.0).sqrt_()  # sin theta
        nngp.addcmul_(angle, rho).mul_(scale).mul_(1.0 / math.pi)
        ntk.mul_(angle).mul_(1.0 / math.pi).add_(nngp)
        if layer == depth - 1:
            break
        cov, ntk, var_a, var_b = _next_layer_inputs(nngp, ntk, var_a, var_b, window, grids[layer], ntk_padding)
    return ntk.sum(-1)

