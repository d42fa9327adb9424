"""Patch AGOP: the average gradient outer product of a kernel predictor with respect to its input patches.

For a kernel predictor ``f(x) = sum_i coef_i K(x, z_i)`` with a patch kernel
``K(x, z) = (1/P) sum_p k(T x_p, T z_p)`` (see :mod:`skphase.nn._patch_kernels`),
the patch AGOP over images ``x_1..x_n`` is

    G = (1/n) sum_x sum_p sum_c grad_{x_p} f_c(x) grad_{x_p} f_c(x)^T,

a ``(C q^2, C q^2)`` matrix, where each patch ``x_p`` is treated as its own
variable (a pixel shared by several patches contributes once per patch). With
weights ``w_x`` the mean over images is the weighted one, ``sum_x w_x (...) / sum_x w_x``:
a weight of 2 counts an image twice.

For the Laplace and Gaussian patch kernels the gradient is, with
``a_p = T x_p`` and ``b_ip = T z_{i,p}``,

    grad_{x_p} f_c(x) = (1/P) T^T sum_i coef_ic w(a_p, b_ip) (a_p - b_ip),

``w = -k / (L ||a - b||)`` (Laplace) or ``w = -k / L^2`` (Gaussian). Writing
``h = a_p (W_p coef)_c - (W_p (coef_c * B_p))`` turns the sum over centres into
one batched matrix product per block of positions, and
``G = T^T (sum h h^T) T / (n P^2)``: the only work proportional to
``n m P`` is the weight computation and that product. Pairs at distance 0 (an
image against itself, two blank patches) have no Laplace gradient; they get
weight 0, the convention of the RFM literature. Other kernels (the NTK) go
through autograd, in blocks of rows. Weights scale each image's ``h`` (or
gradient) by ``sqrt(w_x)`` before the outer products.

:meth:`skphase.nn.PatchKernel.agop` is the entry point (:func:`agop_from_patches`);
:func:`patch_agop` is the one-call form on images.
"""

from __future__ import annotations

import torch

from ._patch_kernels import (
    _BLOCK_ELEMENTS,
    PatchKernel,
    _augment,
    patch_grid_shape,
    psd_sqrt,
    round_off_tolerance,
    transform_patches,
)

__all__ = ["agop_from_patches", "as_image_weights", "patch_agop", "patch_agop_from_patches"]

AGOP_METHODS = ("auto", "closed_form", "autograd")


def _gradient_weights_(out, spare, tol, bandwidth, kernel):
    """Turn squared distances in ``out`` into gradient weights, up to the factor ``-1/L`` (Laplace) or ``-1/L^2``.

    In place (``spare`` is scratch), five passes over the block. Laplace:
    ``exp(-d/L) / d``, with pairs closer than round-off sent to ``d = inf``
    (weight 0). Gaussian: ``exp(-d^2 / (2 L^2))``. The constant factor is
    applied once to the final sum (it enters squared).
    """
    if kernel == "gaussian":
        return out.mul_(-0.5 / bandwidth**2).exp_()
    torch.nn.functional.threshold_(out, tol, float("inf"))
    out.sqrt_()
    torch.mul(out, -1.0 / bandwidth, out=spare).exp_()
    return spare.div_(out)


def _closed_form_sum(A, B, coef, kernel, *, symmetric=False, root_weights=None):
    """``sum_{x,p,c} w_x h h^T`` for the Laplace/Gaussian patch kernels (see module docstring).

    Positions are processed in chunks; within a chunk the sums ``W_p [coef * B_p, coef]``
    of every row are accumulated block by block. With ``symmetric`` (the rows
    are the centres, as in ConvRFM's AGOP on its training set) the weight
    matrix is symmetric, so only blocks on and above the diagonal are computed
    and each serves both its rows and its columns: half the weight work.
    ``root_weights`` holds ``sqrt(w_x)`` of the rows (None: all 1).
    """
    bandwidth = kernel.bandwidth
    n_pos, n, r = A.shape
    m, n_out = coef.shape
    width = n_out * (r + 1)
    tol = round_off_tolerance(A, B)
    A_aug, B_aug = _augment(A, B)
    coef = coef.to(A)
    H = A.new_zeros(r, r)
    # The products with the weights dominate the cost; they run faster with
    # blocks of at least 512 (a longer inner dimension), up to twice batch_size.
    batch_size = min(2 * kernel.batch_size, max(kernel.batch_size, 512))
    row_blocks = [slice(s, min(s + batch_size, n)) for s in range(0, n, batch_size)]
    col_blocks = [slice(s, min(s + batch_size, m)) for s in range(0, m, batch_size)]
    # Positions per chunk: bounded by the weight block and by the (pc, n, width) accumulator.
    step = max(1, min(_BLOCK_ELEMENTS // batch_size**2, 4 * _BLOCK_ELEMENTS // ((n + m) * width)))
    block = (min(step, n_pos), min(batch_size, n), min(batch_size, m))
    buffer, spare = A.new_empty(block), A.new_empty(block)
    for p0 in range(0, n_pos, step):
        chunk = slice(p0, min(p0 + step, n_pos))
        pc = chunk.stop - chunk.start
        # Right-hand side: coef_ic * b_ip for every class, then coef_ic itself.
        rhs = torch.cat([(coef[:, :, None] * B[chunk, :, None, :]).reshape(pc, m, n_out * r),
                         coef.expand(pc, m, n_out)], dim=-1)
        S = A.new_zeros(pc, n, width)
        for i, rows in enumerate(row_blocks):
            for j, cols in enumerate(col_blocks):
                if symmetric and j < i:
                    continue
                out = buffer[:pc, : rows.stop - rows.start, : cols.stop - cols.start]
                scratch = spare[:pc, : rows.stop - rows.start, : cols.stop - cols.start]
                # Negative round-off is caught by the threshold in _gradient_weights_.
                torch.bmm(A_aug[chunk, rows], B_aug[chunk, :, cols], out=out)
                W = _gradient_weights_(out, scratch, tol, bandwidth, kernel.kernel)
                S[:, rows].baddbmm_(W, rhs[:, cols])
                if symmetric and j > i:
                    S[:, cols].baddbmm_(W.transpose(1, 2), rhs[:, rows])
        s = S[..., n_out * r:]
        u = S[..., : n_out * r].reshape(pc, n, n_out, r)
        h = A[chunk, :, None, :] * s[..., None] - u
        if root_weights is not None:
            h = h * root_weights[:, None, None]
        h = h.reshape(-1, r)
        H.addmm_(h.T, h)
    return H / (bandwidth**2 if kernel.kernel == "laplace" else bandwidth**4)


def _autograd_sum(patches_x, B, coef, T, kernel, root_weights=None):
    """``sum_{x,p,c} w_x g g^T`` by autograd, ``g`` the gradient with respect to the raw patches."""
    n, n_pos, d = patches_x.shape
    m, n_out = coef.shape
    rows_per_block = max(1, _BLOCK_ELEMENTS // (m * n_pos))
    G = patches_x.new_zeros(d, d)
    for start in range(0, n, rows_per_block):
        rows = slice(start, start + rows_per_block)
        with torch.enable_grad():
            block = patches_x[rows].detach().requires_grad_(True)
            f = kernel.gram(transform_patches(block, T), B) @ coef.to(block)
            for c in range(n_out):
                (grad,) = torch.autograd.grad(f[:, c].sum(), block, retain_graph=c < n_out - 1)
                if root_weights is not None:
                    grad = grad * root_weights[rows, None, None]
                flat = grad.reshape(-1, d)
                G.addmm_(flat.T, flat)
    return G


def as_image_weights(sample_weight, n, device):
    """Per-image weights as a float64 tensor on ``device``, checked: ``n`` finite, non-negative values."""
    weights = torch.as_tensor(sample_weight).to(device, torch.float64).reshape(-1)
    if weights.shape[0] != n:
        raise ValueError(f"sample_weight has {weights.shape[0]} values for {n} images; give one per image.")
    if not bool(torch.isfinite(weights).all()) or bool((weights < 0).any()):
        raise ValueError("sample_weight must be finite and non-negative.")
    return weights


def agop_from_patches(kernel, patches_x, patches_z, coef, *, T=None, sample_weight=None, method="auto"):
    """Patch AGOP of the predictor ``f(x) = sum_i coef_i K(x, z_i)`` of the patch kernel ``kernel``.

    The computation behind :meth:`skphase.nn.PatchKernel.agop`, whose docstring describes the
    parameters; ``kernel`` is a :class:`~skphase.nn.PatchKernel`.
    """
    if method not in AGOP_METHODS:
        raise ValueError(f"method must be 'auto', 'closed_form' or 'autograd', got {method!r}.")
    if method == "auto":
        method = "autograd" if kernel.kernel == "ntk" else "closed_form"
    if method == "closed_form" and kernel.kernel == "ntk":
        raise ValueError("The NTK patch AGOP has no closed form here; use method='autograd'.")
    coef = coef.reshape(coef.shape[0], -1)
    if coef.shape[0] != patches_z.shape[0]:
        raise ValueError(f"coef has {coef.shape[0]} rows but there are {patches_z.shape[0]} centres.")
    n, n_pos, d = patches_x.shape
    root, total = None, n
    if sample_weight is not None:
        weights = as_image_weights(sample_weight, n, patches_x.device)
        total = float(weights.sum())
        if not total > 0:
            raise ValueError("sample_weight must contain at least one non-zero weight.")
        root = weights.sqrt().to(patches_x.dtype)
    B = transform_patches(patches_z, T)
    if method == "autograd":
        # autograd differentiates K itself, whose 1/P is already in the gradients.
        G = _autograd_sum(patches_x, B, coef, T, kernel, root) / total
    else:
        symmetric = patches_x is patches_z
        A = B if symmetric else transform_patches(patches_x, T)
        H = _closed_form_sum(A, B, coef, kernel, symmetric=symmetric, root_weights=root)
        G = H if T is None else T.T.to(H) @ H @ T.to(H)
        G = G / (total * n_pos**2)
    return 0.5 * (G + G.T)


def patch_agop_from_patches(
    patches_x: torch.Tensor,
    patches_z: torch.Tensor,
    coef: torch.Tensor,
    *,
    T: torch.Tensor | None = None,
    kernel: str = "laplace",
    bandwidth: float | None = 10.0,
    grid: tuple[int, int] | None = None,
    ntk_depth: int = 3,
    window: tuple[int, int] = (3, 3),
    ntk_padding: str = "same",
    method: str = "auto",
    batch_size: int = 256,
) -> torch.Tensor:
    """Compute the patch AGOP from patches already cut out: ``PatchKernel(...).agop(...)``.

    Parameters
    ----------
    patches_x : torch.Tensor of shape (n, P, d)
        Patches of the images where gradients are taken. Passing the same
        tensor object as ``patches_z`` (gradients at the centres) halves the
        work of the closed form.
    patches_z : torch.Tensor of shape (m, P, d)
        Patches of the predictor's centres.
    coef : torch.Tensor of shape (m,) or (m, n_outputs)
        Coefficients of the predictor, one row per centre.
    T : torch.Tensor of shape (r, d) or None, default=None
        Square root of the Mahalanobis matrix, ``M = T^T T``; None is the identity.
    kernel : {"laplace", "gaussian", "ntk"}, default="laplace"
        Patch kernel ``k`` (see :class:`PatchKernel`).
    bandwidth : float or None, default=10.0
        ``L`` of the Laplace and Gaussian kernels; not used by the NTK.
    grid : pair of int or None, default=None
        Positions ``(H_out, W_out)`` of the patches; the NTK needs it.
    ntk_depth : int, default=3
        Number of ReLU conv layers of the NTK.
    window : pair of int, default=(3, 3)
        Filter size of the NTK's deeper layers (the ``patch_size`` of :class:`PatchKernel`).
    ntk_padding : {"same", "valid"}, default="same"
        The NTK's deeper layers pad with zeros ('same') or shrink the grid ('valid').
    method : {"auto", "closed_form", "autograd"}, default="auto"
        ``"auto"`` uses the closed form for Laplace/Gaussian and autograd for the NTK.
    batch_size : int, default=256
        Rows and columns per block; bounds memory.

    Returns
    -------
    torch.Tensor of shape (d, d)
        The patch AGOP, symmetric positive semi-definite.

    See Also
    --------
    patch_agop : the same from images.
    PatchKernel.agop : the same for a kernel held as a value, with sample weights.

    Examples
    --------
    >>> import torch
    >>> from skphase.nn import extract_patches, patch_agop_from_patches
    >>> patches = extract_patches(torch.rand(5, 1, 6, 6, dtype=torch.float64), 3)
    >>> G = patch_agop_from_patches(patches, patches, torch.randn(5, 2, dtype=torch.float64))
    >>> G.shape, bool(torch.allclose(G, G.T))
    (torch.Size([9, 9]), True)
    """
    spec = PatchKernel(kernel, bandwidth, patch_size=window, ntk_depth=ntk_depth, ntk_padding=ntk_padding,
                       grid=grid, batch_size=batch_size)
    return agop_from_patches(spec, patches_x, patches_z, coef, T=T, method=method)


def patch_agop(
    X: torch.Tensor,
    centers: torch.Tensor,
    coef: torch.Tensor,
    *,
    M: torch.Tensor | None = None,
    kernel: str = "laplace",
    bandwidth: float | None = 10.0,
    patch_size: int | tuple[int, int] = 3,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    ntk_depth: int = 3,
    ntk_padding: str = "same",
    method: str = "auto",
    batch_size: int = 256,
    sample_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Compute the patch AGOP of the kernel predictor ``f(x) = sum_i coef_i K(x, centers_i)``.

    Parameters
    ----------
    X : torch.Tensor of shape (n, C, H, W)
        Images where the gradients are evaluated (usually the training set).
    centers : torch.Tensor of shape (m, C, H, W)
        The predictor's centres.
    coef : torch.Tensor of shape (m,) or (m, n_outputs)
        Its coefficients (e.g. kernel ridge regression's dual coefficients).
    M : torch.Tensor of shape (d, d) or None, default=None
        Mahalanobis matrix of the patch kernel (``d = C q_h q_w``); None is
        the identity.
    kernel : {"laplace", "gaussian", "ntk"}, default="laplace"
        Patch kernel ``k`` (see :class:`PatchKernel`).
    bandwidth : float or None, default=10.0
        ``L`` of the Laplace and Gaussian kernels; not used by the NTK.
    patch_size : int or pair of int, default=3
        Height and width of a patch, as the kernel size of :class:`torch.nn.Conv2d`. The
        NTK's deeper layers use filters of this size.
    stride : int or pair of int, default=1
        Step between two neighbouring patch positions.
    padding : int or pair of int, default=0
        Rows and columns of zeros added on each side of the images.
    ntk_depth : int, default=3
        Number of ReLU conv layers of the NTK.
    ntk_padding : {"same", "valid"}, default="same"
        The NTK's deeper layers pad with zeros ('same') or shrink the grid by
        ``patch_size - 1`` each ('valid').
    method : {"auto", "closed_form", "autograd"}, default="auto"
        ``"auto"`` uses the closed form for Laplace/Gaussian and autograd for
        the NTK.
    batch_size : int, default=256
        Rows and columns per block; bounds memory.
    sample_weight : torch.Tensor of shape (n,) or None, default=None
        Weights of the images of ``X`` in the average; None weighs them equally.

    Returns
    -------
    torch.Tensor of shape (d, d)
        Symmetric PSD matrix ``(1/n) sum_x sum_p sum_c g g^T`` (weighted: ``sum_x w_x (...) / sum_x w_x``).

    See Also
    --------
    patch_kernel : the kernel of the predictor.
    patch_agop_from_patches : the same from patches already cut out.
    fit_rfm : the recursive feature machine, which learns its patch transform from this AGOP.

    Examples
    --------
    >>> import torch
    >>> from skphase.nn import patch_agop
    >>> X = torch.rand(5, 1, 6, 6, dtype=torch.float64)
    >>> G = patch_agop(X[:3], X, torch.randn(5, 2, dtype=torch.float64), patch_size=3)
    >>> G.shape, bool(torch.allclose(G, G.T))
    (torch.Size([9, 9]), True)
    """
    grid = patch_grid_shape(X.shape[-2:], patch_size, stride=stride, padding=padding)
    if centers.shape[1:] != X.shape[1:]:
        raise ValueError(f"X and centers must hold images of one shape, got {tuple(X.shape[1:])} and "
                         f"{tuple(centers.shape[1:])}.")
    spec = PatchKernel(kernel, bandwidth, patch_size=patch_size, stride=stride, padding=padding,
                       ntk_depth=ntk_depth, ntk_padding=ntk_padding, grid=grid, batch_size=batch_size)
    T = None if M is None else psd_sqrt(M.to(X))
    px = spec.patches(X)
    pz = px if centers is X else spec.patches(centers.to(X))
    return agop_from_patches(spec, px, pz, coef.to(X), T=T, sample_weight=sample_weight, method=method)
