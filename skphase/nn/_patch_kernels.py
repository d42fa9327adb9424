"""Convolutional kernels that compare images patch by patch at aligned positions.

Every image kernel here has the form

    K(x, z) = (1/P) sum_p k(T x_p, T z_p)

where ``x_p`` is the patch of ``x`` at position ``p`` (all ``P`` positions of a
convolution with the given patch size, stride and padding), ``T`` is a
square root of the Mahalanobis matrix ``M = T^T T`` and ``k`` is a patch
kernel: Laplace ``exp(-||a - b|| / L)``, Gaussian ``exp(-||a - b||^2 / (2 L^2))``
or, for ``kernel="ntk"``, the neural tangent kernel of a ReLU convolutional
network without pooling whose read-out sees every position (its deeper
layers mix neighbouring positions but never compare a position of ``x`` with
another position of ``z``). The NTK's deeper layers are ``patch_size``
convolutions with zero 'same' padding, or 'valid' ones that shrink the grid by
``patch_size - 1`` per layer (the authors' network); its read-out averages over
the positions of the last layer.

Kernels are computed in blocks of ``batch_size`` rows and columns and in
chunks of positions, so no ``(n, m, P)`` tensor is ever built: the largest
temporary holds about ``_BLOCK_ELEMENTS`` numbers. :func:`extract_patches` is
the single place where patches are cut out of images; the patch AGOP
(:mod:`skphase.nn._agop`) and the feature-ansatz correlation reuse it.
"""

import math

import torch
import torch.nn.functional as F

__all__ = [
    "NTK_PADDINGS",
    "PATCH_KERNELS",
    "extract_patches",
    "median_patch_distance",
    "ntk_layer_grids",
    "patch_grid_shape",
    "patch_kernel",
    "patch_kernel_from_patches",
    "psd_power",
    "psd_sqrt",
    "transform_patches",
]

#: Patch kernels of :func:`patch_kernel` and of ConvRFM's ``kernel`` parameter.
PATCH_KERNELS = ("laplace", "gaussian", "ntk")
NTK_PADDINGS = ("same", "valid")

# Numbers held by the largest temporary of one block (1 M floats = 4 MB in
# float32): the elementwise passes over a block (square root, exponential,
# sums) then run from the last-level cache rather than from memory, while the
# batched matrix products stay large enough to run at full speed
# (benchmarks/bench_convrfm.py times the kernel).
_BLOCK_ELEMENTS = 1 << 20


def _pair(value, name):
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value, value)
    value = tuple(int(v) for v in value)
    if len(value) != 2:
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}.")
    return value


def patch_grid_shape(image_hw, patch_size, *, stride=1, padding=0):
    """Number of patch positions ``(H_out, W_out)`` along each image axis.

    Raises a ValueError naming the fix when the (padded) image is smaller
    than one patch.
    """
    (ph, pw), (sh, sw), (qh, qw) = _pair(patch_size, "patch_size"), _pair(stride, "stride"), _pair(
        padding, "padding"
    )
    if min(ph, pw, sh, sw) < 1 or min(qh, qw) < 0:
        raise ValueError("patch_size and stride must be >= 1 and padding >= 0.")
    height, width = (int(s) for s in image_hw)
    if height + 2 * qh < ph or width + 2 * qw < pw:
        raise ValueError(
            f"Images of size {(height, width)} with padding {(qh, qw)} are smaller than one "
            f"{(ph, pw)} patch; use a smaller patch_size or more padding."
        )
    return ((height + 2 * qh - ph) // sh + 1, (width + 2 * qw - pw) // sw + 1)


def median_patch_distance(X, patch_size, *, stride=1, padding=0, n_pairs=4000, generator=None):
    """Median Euclidean distance between patches at one position of two different images.

    The patch kernels compare patches at aligned positions, so this is the typical distance they
    see; it sets a bandwidth that follows the scale of the data (ConvRFM's ``bandwidth="auto"``).
    Only the sampled patches are read: memory grows with ``n_pairs``, not with ``X``.

    Parameters
    ----------
    X : torch.Tensor of shape (n, C, H, W)
        At least two images.
    patch_size, stride, padding : int or pair of int
        As in :func:`extract_patches`.
    n_pairs : int, default=4000
        Random (image, other image, position) triples drawn.
    generator : torch.Generator or None
        CPU generator of the draws.

    Returns
    -------
    float

    Examples
    --------
    >>> import torch
    >>> X = torch.zeros(2, 1, 4, 4)
    >>> X[1] = 1.0
    >>> median_patch_distance(X, 2)  # every 2 x 2 patch pair differs by 1 in 4 pixels
    2.0
    """
    n, channels, height, width = X.shape
    if n < 2:
        raise ValueError(f"median_patch_distance needs at least 2 images, got {n}.")
    (ph, pw), (sh, sw), (qh, qw) = (_pair(v, name) for v, name in
                                    ((patch_size, "patch_size"), (stride, "stride"), (padding, "padding")))
    grid_h, grid_w = patch_grid_shape((height, width), (ph, pw), stride=(sh, sw), padding=(qh, qw))
    first = torch.randint(0, n, (n_pairs,), generator=generator)
    second = torch.randint(0, n - 1, (n_pairs,), generator=generator)
    second = second + (second >= first)  # a different image
    position = torch.randint(0, grid_h * grid_w, (n_pairs,), generator=generator)
    rows = (position // grid_w * sh - qh)[:, None] + torch.arange(ph)
    cols = (position % grid_w * sw - qw)[:, None] + torch.arange(pw)
    inside = ((rows >= 0) & (rows < height))[:, :, None] & ((cols >= 0) & (cols < width))[:, None, :]
    rows, cols, inside = (t.to(X.device) for t in (rows.clamp(0, height - 1), cols.clamp(0, width - 1), inside))
    channel = torch.arange(channels, device=X.device)[None, :, None, None]

    def patches(images):  # (n_pairs, C, ph, pw), zero outside the image (zero padding)
        values = X[images.to(X.device)[:, None, None, None], channel, rows[:, None, :, None], cols[:, None, None, :]]
        return values * inside[:, None]

    return float((patches(first) - patches(second)).flatten(1).norm(dim=1).median())


def extract_patches(X, patch_size, *, stride=1, padding=0):
    """All patches of a batch of images, ordered like a convolution's weights.

    Parameters
    ----------
    X : torch.Tensor of shape (n, C, H, W)
    patch_size, stride, padding : int or pair of int
        As in :class:`torch.nn.Conv2d` (zero padding).

    Returns
    -------
    torch.Tensor of shape (n, P, C * q_h * q_w)
        ``P = H_out * W_out`` positions in row-major order; each patch is
        flattened channel first, then rows, then columns, so that
        ``patches @ conv.weight.reshape(out_channels, -1).T`` equals the
        convolution's output at every position.

    Examples
    --------
    >>> import torch
    >>> extract_patches(torch.zeros(2, 3, 8, 8), 3).shape
    torch.Size([2, 36, 27])
    """
    if X.ndim != 4:
        raise ValueError(f"X must have shape (n, C, H, W), got {tuple(X.shape)}.")
    patch_grid_shape(X.shape[-2:], patch_size, stride=stride, padding=padding)
    columns = F.unfold(X, _pair(patch_size, "patch_size"), padding=_pair(padding, "padding"),
                       stride=_pair(stride, "stride"))
    return columns.transpose(1, 2)


def psd_power(M, power, *, return_eigenvalues=False):
    """``M ** power`` of a symmetric positive semi-definite matrix, through its eigendecomposition.

    Negative eigenvalues from round-off are clipped to zero. With
    ``return_eigenvalues=True`` the eigenvalues of ``M`` are returned too.
    """
    eigvals, eigvecs = torch.linalg.eigh(0.5 * (M + M.T))
    powered = (eigvecs * eigvals.clamp_min(0).pow(power)) @ eigvecs.T
    return (powered, eigvals) if return_eigenvalues else powered


def psd_sqrt(M):
    """Symmetric square root of a symmetric positive semi-definite matrix (see :func:`psd_power`)."""
    return psd_power(M, 0.5)


def transform_patches(patches, T=None):
    """Position-major transformed patches ``(P, n, r)`` from ``(n, P, d)`` patches.

    ``T`` of shape ``(r, d)`` maps each patch ``x_p`` to ``T x_p``; None keeps
    the patches as they are (``M = I``).
    """
    if T is not None:
        patches = patches @ T.T.to(patches)
    return patches.transpose(0, 1).contiguous()


def _check_kernel(kernel, bandwidth):
    if kernel not in PATCH_KERNELS:
        raise ValueError(f"kernel must be one of {PATCH_KERNELS}, got {kernel!r}.")
    if kernel != "ntk" and not bandwidth > 0:
        raise ValueError(f"bandwidth must be > 0, got {bandwidth!r}.")


def _augment(A, B):
    """Rows ``[-2a, |a|^2, 1]`` and columns ``[b, 1, |b|^2]``: one batched product gives ``|a - b|^2``."""
    a_sq = A.square().sum(-1, keepdim=True)
    b_sq = B.square().sum(-1, keepdim=True)
    A_aug = torch.cat([-2 * A, a_sq, torch.ones_like(a_sq)], dim=-1)
    B_aug = torch.cat([B, torch.ones_like(b_sq), b_sq], dim=-1).transpose(1, 2).contiguous()
    return A_aug, B_aug


def _position_chunks(n_positions, rows, cols):
    step = max(1, _BLOCK_ELEMENTS // max(1, rows * cols))
    return [slice(s, min(s + step, n_positions)) for s in range(0, n_positions, step)]


def round_off_tolerance(A, B):
    """Squared distances below this are round-off of the expanded ``|a|^2 + |b|^2 - 2ab``."""
    eps = torch.finfo(A.dtype).eps
    return 16 * eps * float(max(A.square().sum(-1).max(), B.square().sum(-1).max()))


def squared_distances_(out, A_aug, B_aug, tol):
    """Write ``|a_p - b_p|^2`` of a block into ``out`` (in place); values below ``tol`` become 0."""
    torch.bmm(A_aug, B_aug, out=out)
    return F.threshold_(out, tol, 0.0)


def _radial_kernel_block(A, B, kernel, bandwidth, block_size):
    """``sum_p k(a_p, b_p)`` for a block: A ``(P, nb, d)``, B ``(P, mb, d)``."""
    if torch.is_grad_enabled() and (A.requires_grad or B.requires_grad):
        return _radial_kernel_block_differentiable(A, B, kernel, bandwidth)
    n_pos, rows, cols = A.shape[0], A.shape[1], B.shape[1]
    total = A.new_zeros(rows, cols)
    # Chunks sized by the nominal block, not this block, so that a kernel value
    # never depends on which other rows share its block (same summation order).
    chunks = _position_chunks(n_pos, block_size, block_size)
    buffer = A.new_empty(chunks[0].stop - chunks[0].start, rows, cols)
    A_aug, B_aug = _augment(A, B)
    tol = round_off_tolerance(A, B)
    for chunk in chunks:
        out = buffer[: chunk.stop - chunk.start]
        squared_distances_(out, A_aug[chunk], B_aug[chunk], tol)
        if kernel == "laplace":
            out.sqrt_().mul_(-1.0 / bandwidth)
        else:
            out.mul_(-0.5 / bandwidth**2)
        total += out.exp_().sum(0)
    return total


def _radial_kernel_block_differentiable(A, B, kernel, bandwidth):
    """Out-of-place version of :func:`_radial_kernel_block` that autograd can follow.

    Squared distances below round-off are set to 0 and clipped at the smallest
    normal number before the square root, so a pair at distance 0 gets
    gradient 0 (no NaN), as in the closed-form AGOP.
    """
    sq = (A.square().sum(-1)[:, :, None] + B.square().sum(-1)[:, None, :]
          - 2 * torch.bmm(A, B.transpose(1, 2)))
    sq = torch.where(sq > round_off_tolerance(A.detach(), B.detach()), sq, torch.zeros_like(sq))
    if kernel == "laplace":
        values = torch.exp(-sq.clamp_min(torch.finfo(sq.dtype).tiny).sqrt() / bandwidth)
    else:
        values = torch.exp(-sq.clamp_min(0) * (0.5 / bandwidth**2))
    return values.sum(0)


# ---------------------------------------------------------------- ReLU NTK
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
    ntk_padding : {"same", "valid"}

    Returns
    -------
    list of ntk_depth pairs of int

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


def _ntk_block(A, B, grids, window, ntk_padding):
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
    """:func:`_ntk_block` without autograd, in a few reused buffers (1.5x faster).

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


def patch_kernel_from_patches(A, B=None, *, kernel="laplace", bandwidth=10.0, grid=None, ntk_depth=3,
                              window=(3, 3), ntk_padding="same", batch_size=256):
    """Image kernel matrix from position-major transformed patches.

    Parameters
    ----------
    A : torch.Tensor of shape (P, n, r)
        Transformed patches ``T x_p`` of the rows (see :func:`transform_patches`).
    B : torch.Tensor of shape (P, m, r) or None
        Those of the columns; None uses ``A`` and fills only the upper block
        triangle (the matrix is symmetric).
    kernel : {"laplace", "gaussian", "ntk"}
    bandwidth : float
        ``L`` of the Laplace and Gaussian patch kernels.
    grid : tuple of int
        ``(H_out, W_out)`` of the positions; needed by ``"ntk"``.
    ntk_depth : int
        Number of ReLU conv layers of the NTK.
    window : pair of int
        Filter size of the NTK's deeper conv layers.
    ntk_padding : {"same", "valid"}
        Zero padding of the NTK's deeper layers, or none (each shrinks the grid).
    batch_size : int
        Rows and columns per block.

    Returns
    -------
    torch.Tensor of shape (n, m)
    """
    _check_kernel(kernel, bandwidth)
    _check_ntk_padding(ntk_padding)  # for every kernel: a typo is never silently ignored
    symmetric = B is None
    B = A if symmetric else B
    n_pos, n, m = A.shape[0], A.shape[1], B.shape[1]
    if B.shape[0] != n_pos or B.shape[2] != A.shape[2]:
        raise ValueError(f"Patch tensors disagree: {tuple(A.shape)} vs {tuple(B.shape)}.")
    if kernel == "ntk":
        if grid is None or grid[0] * grid[1] != n_pos:
            raise ValueError("kernel='ntk' needs grid=(H_out, W_out) with H_out * W_out == P.")
        grids = ntk_layer_grids(grid, window, ntk_depth, ntk_padding)
        # One NTK block holds a few (rows, cols, P) maps through every layer:
        # maps of _BLOCK_ELEMENTS / 2 numbers keep them in cache
        # (benchmarks/bench_convrfm.py times the kernel).
        batch_size = max(1, min(batch_size, int(math.sqrt(_BLOCK_ELEMENTS / 2 / n_pos))))
    out = A.new_empty(n, m)
    rows_all = [slice(s, min(s + batch_size, n)) for s in range(0, n, batch_size)]
    cols_all = [slice(s, min(s + batch_size, m)) for s in range(0, m, batch_size)]
    for i, rows in enumerate(rows_all):
        for j, cols in enumerate(cols_all):
            if symmetric and j < i:
                continue
            if kernel == "ntk":
                block = _ntk_block(A[:, rows], B[:, cols], grids, window, ntk_padding)
            else:
                block = _radial_kernel_block(A[:, rows], B[:, cols], kernel, bandwidth, batch_size)
            out[rows, cols] = block
            if symmetric and j > i:
                out[cols, rows] = block.T
    # The mean over the positions the read-out sees (the last NTK layer's).
    return out.div_(grids[-1][0] * grids[-1][1] if kernel == "ntk" else n_pos)


def patch_kernel(X, Z=None, *, M=None, kernel="laplace", bandwidth=10.0, patch_size=3, stride=1,
                 padding=0, ntk_depth=3, ntk_padding="same", batch_size=256):
    """Convolutional kernel ``K(x, z) = (1/P) sum_p k(T x_p, T z_p)`` between two image batches.

    Parameters
    ----------
    X : torch.Tensor of shape (n, C, H, W)
    Z : torch.Tensor of shape (m, C, H, W) or None
        None computes the (symmetric) Gram matrix of ``X``.
    M : torch.Tensor of shape (C q^2, C q^2) or None
        Mahalanobis matrix on patches (symmetric PSD); None is the identity.
    kernel : {"laplace", "gaussian", "ntk"}, default="laplace"
    bandwidth : float, default=10.0
    patch_size, stride, padding : int or pair of int
        Patch geometry, as in :class:`torch.nn.Conv2d`. The NTK's deeper
        layers use ``patch_size`` filters.
    ntk_depth : int, default=3
    ntk_padding : {"same", "valid"}, default="same"
        The NTK's deeper layers pad with zeros ('same') or shrink the grid by
        ``patch_size - 1`` each ('valid', the authors' network).
    batch_size : int, default=256
        Rows and columns per block; bounds memory.

    Returns
    -------
    torch.Tensor of shape (n, m), dtype and device of ``X``

    Examples
    --------
    >>> import torch
    >>> X = torch.rand(4, 1, 6, 6, dtype=torch.float64)
    >>> K = patch_kernel(X, patch_size=3)
    >>> K.shape, bool(torch.allclose(K, K.T)), float(K[0, 0])
    (torch.Size([4, 4]), True, 1.0)
    """
    grid = patch_grid_shape(X.shape[-2:], patch_size, stride=stride, padding=padding)
    T = None if M is None else psd_sqrt(M.to(X))
    A = transform_patches(extract_patches(X, patch_size, stride=stride, padding=padding), T)
    B = None
    if Z is not None:
        if Z.shape[1:] != X.shape[1:]:
            raise ValueError(f"X and Z must hold images of one shape, got {tuple(X.shape[1:])} and "
                             f"{tuple(Z.shape[1:])}.")
        B = transform_patches(extract_patches(Z.to(X), patch_size, stride=stride, padding=padding), T)
    return patch_kernel_from_patches(A, B, kernel=kernel, bandwidth=bandwidth, grid=grid,
                                     ntk_depth=ntk_depth, window=_pair(patch_size, "patch_size"),
                                     ntk_padding=ntk_padding, batch_size=batch_size)
