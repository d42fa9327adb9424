"""Patch AGOP: the average gradient outer product of a kernel predictor with respect to its input patches.

For a kernel predictor ``f(x) = sum_i coef_i K(x, z_i)`` with a patch kernel
``K(x, z) = (1/P) sum_p k(T x_p, T z_p)`` (see :mod:`skphase.nn._patch_kernels`),
the patch AGOP over images ``x_1..x_n`` is

    G = (1/n) sum_x sum_p sum_c grad_{x_p} f_c(x) grad_{x_p} f_c(x)^T,

a ``(C q^2, C q^2)`` matrix, where each patch ``x_p`` is treated as its own
variable (a pixel shared by several patches contributes once per patch).

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
through autograd, in blocks of rows.
"""

import torch

from ._patch_kernels import (
    _BLOCK_ELEMENTS,
    _augment,
    _check_kernel,
    _check_ntk_padding,
    _pair,
    extract_patches,
    patch_grid_shape,
    patch_kernel_from_patches,
    psd_sqrt,
    round_off_tolerance,
    transform_patches,
)

__all__ = ["patch_agop", "patch_agop_from_patches"]


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


def _closed_form_sum(A, B, coef, kernel, bandwidth, batch_size, symmetric=False):
    """``sum_{x,p,c} h h^T`` for the Laplace/Gaussian patch kernels (see module docstring).

    Positions are processed in chunks; within a chunk the sums ``W_p [coef * B_p, coef]``
    of every row are accumulated block by block. With ``symmetric`` (the rows
    are the centres, as in ConvRFM's AGOP on its training set) the weight
    matrix is symmetric, so only blocks on and above the diagonal are computed
    and each serves both its rows and its columns: half the weight work.
    """
    n_pos, n, r = A.shape
    m, n_out = coef.shape
    width = n_out * (r + 1)
    tol = round_off_tolerance(A, B)
    A_aug, B_aug = _augment(A, B)
    coef = coef.to(A)
    H = A.new_zeros(r, r)
    # The products with the weights dominate the cost; they run faster with
    # blocks of at least 512 (a longer inner dimension), up to twice batch_size.
    batch_size = min(2 * batch_size, max(batch_size, 512))
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
                W = _gradient_weights_(out, scratch, tol, bandwidth, kernel)
                S[:, rows].baddbmm_(W, rhs[:, cols])
                if symmetric and j > i:
                    S[:, cols].baddbmm_(W.transpose(1, 2), rhs[:, rows])
        s = S[..., n_out * r:]
        u = S[..., : n_out * r].reshape(pc, n, n_out, r)
        h = (A[chunk, :, None, :] * s[..., None] - u).reshape(-1, r)
        H.addmm_(h.T, h)
    return H / (bandwidth**2 if kernel == "laplace" else bandwidth**4)


def _autograd_agop(patches_x, B, coef, T, kernel, bandwidth, grid, ntk_depth, window, ntk_padding, batch_size):
    """``sum_{x,p,c} g g^T`` by autograd, ``g`` the gradient with respect to the raw patches."""
    n, n_pos, d = patches_x.shape
    m, n_out = coef.shape
    rows_per_block = max(1, _BLOCK_ELEMENTS // (m * n_pos))
    G = patches_x.new_zeros(d, d)
    for start in range(0, n, rows_per_block):
        with torch.enable_grad():
            block = patches_x[start : start + rows_per_block].detach().requires_grad_(True)
            A = transform_patches(block, T)
            K = patch_kernel_from_patches(A, B, kernel=kernel, bandwidth=bandwidth, grid=grid,
                                          ntk_depth=ntk_depth, window=window, ntk_padding=ntk_padding,
                                          batch_size=batch_size)
            f = K @ coef.to(K)
            for c in range(n_out):
                (grad,) = torch.autograd.grad(f[:, c].sum(), block, retain_graph=c < n_out - 1)
                flat = grad.reshape(-1, d)
                G.addmm_(flat.T, flat)
    return G


def patch_agop_from_patches(patches_x, patches_z, coef, *, T=None, kernel="laplace", bandwidth=10.0,
                            grid=None, ntk_depth=3, window=(3, 3), ntk_padding="same", method="auto",
                            batch_size=256):
    """Patch AGOP from already extracted patches; see :func:`patch_agop`.

    Parameters
    ----------
    patches_x : torch.Tensor of shape (n, P, d)
        Patches of the images where gradients are taken. Passing the same
        tensor object as ``patches_z`` (gradients at the centres) halves the
        work of the closed form.
    patches_z : torch.Tensor of shape (m, P, d)
        Patches of the predictor's centres.
    coef : torch.Tensor of shape (m,) or (m, n_outputs)
    T : torch.Tensor of shape (r, d) or None
        Square root of the Mahalanobis matrix, ``M = T^T T``.
    """
    _check_kernel(kernel, bandwidth)
    _check_ntk_padding(ntk_padding)
    if method not in ("auto", "closed_form", "autograd"):
        raise ValueError(f"method must be 'auto', 'closed_form' or 'autograd', got {method!r}.")
    if method == "auto":
        method = "autograd" if kernel == "ntk" else "closed_form"
    if method == "closed_form" and kernel == "ntk":
        raise ValueError("The NTK patch AGOP has no closed form here; use method='autograd'.")
    coef = coef.reshape(coef.shape[0], -1)
    if coef.shape[0] != patches_z.shape[0]:
        raise ValueError(f"coef has {coef.shape[0]} rows but there are {patches_z.shape[0]} centres.")
    n, n_pos, d = patches_x.shape
    B = transform_patches(patches_z, T)
    if method == "autograd":
        # autograd differentiates K itself, whose 1/P is already in the gradients.
        G = _autograd_agop(patches_x, B, coef, T, kernel, bandwidth, grid, ntk_depth, window, ntk_padding,
                           batch_size)
        G = G / n
    else:
        symmetric = patches_x is patches_z
        A = B if symmetric else transform_patches(patches_x, T)
        H = _closed_form_sum(A, B, coef, kernel, bandwidth, batch_size, symmetric=symmetric)
        G = H if T is None else T.T.to(H) @ H @ T.to(H)
        G = G / (n * n_pos**2)
    return 0.5 * (G + G.T)


def patch_agop(X, centers, coef, *, M=None, kernel="laplace", bandwidth=10.0, patch_size=3, stride=1,
               padding=0, ntk_depth=3, ntk_padding="same", method="auto", batch_size=256):
    """Patch AGOP of the kernel predictor ``f(x) = sum_i coef_i K(x, centers_i)``.

    Parameters
    ----------
    X : torch.Tensor of shape (n, C, H, W)
        Images where the gradients are evaluated (usually the training set).
    centers : torch.Tensor of shape (m, C, H, W)
        The predictor's centres.
    coef : torch.Tensor of shape (m,) or (m, n_outputs)
        Its coefficients (e.g. kernel ridge regression's dual coefficients).
    M : torch.Tensor of shape (d, d) or None
        Mahalanobis matrix of the patch kernel (``d = C q_h q_w``); None is
        the identity.
    kernel, bandwidth, patch_size, stride, padding, ntk_depth, ntk_padding
        As in :func:`skphase.nn.patch_kernel`.
    method : {"auto", "closed_form", "autograd"}, default="auto"
        ``"auto"`` uses the closed form for Laplace/Gaussian and autograd for
        the NTK.
    batch_size : int, default=256
        Rows and columns per block; bounds memory.

    Returns
    -------
    torch.Tensor of shape (d, d)
        Symmetric PSD matrix ``(1/n) sum_x sum_p sum_c g g^T``.

    Examples
    --------
    >>> import torch
    >>> X = torch.rand(5, 1, 6, 6, dtype=torch.float64)
    >>> G = patch_agop(X[:3], X, torch.randn(5, 2, dtype=torch.float64), patch_size=3)
    >>> G.shape, bool(torch.allclose(G, G.T))
    (torch.Size([9, 9]), True)
    """
    grid = patch_grid_shape(X.shape[-2:], patch_size, stride=stride, padding=padding)
    if centers.shape[1:] != X.shape[1:]:
        raise ValueError(f"X and centers must hold images of one shape, got {tuple(X.shape[1:])} and "
                         f"{tuple(centers.shape[1:])}.")
    T = None if M is None else psd_sqrt(M.to(X))
    px = extract_patches(X, patch_size, stride=stride, padding=padding)
    pz = px if centers is X else extract_patches(centers.to(X), patch_size, stride=stride, padding=padding)
    return patch_agop_from_patches(px, pz, coef.to(X), T=T, kernel=kernel, bandwidth=bandwidth, grid=grid,
                                   ntk_depth=ntk_depth, window=_pair(patch_size, "patch_size"),
                                   ntk_padding=ntk_padding, method=method, batch_size=batch_size)

