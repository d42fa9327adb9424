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
another position of ``z``; :mod:`skphase.nn._ntk`). The NTK's deeper layers are ``patch_size``
convolutions with zero 'same' padding, or 'valid' ones that shrink the grid by
``patch_size - 1`` per layer (the authors' network); its read-out averages over
the positions of the last layer.

:class:`PatchKernel` holds the parameters of one such kernel and computes its
kernel matrices (:meth:`PatchKernel.gram`) and the patch AGOP of a kernel
predictor (:meth:`PatchKernel.agop`, :mod:`skphase.nn._agop`);
:func:`patch_kernel` is the one-call form on images. Kernels are computed in
blocks of ``batch_size`` rows and columns and in chunks of positions, so no
``(n, m, P)`` tensor is ever built: the largest temporary holds about
``_BLOCK_ELEMENTS`` numbers. :func:`extract_patches` is the single place where
patches are cut out of images; the patch AGOP and the feature-ansatz
correlation reuse it.
"""

# This module runs past the ~500-line guide on purpose: more than half of it is numpydoc
# docstrings with runnable examples; its code is one concern and under 350 lines.

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, overload

import torch
import torch.nn.functional as F

from ._ntk import NTK_PADDINGS, ntk_block, ntk_layer_grids

__all__ = [
    "NTK_PADDINGS",
    "PATCH_KERNELS",
    "PatchKernel",
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


def patch_grid_shape(
    image_hw: Sequence[int],
    patch_size: int | tuple[int, int],
    *,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
) -> tuple[int, int]:
    """Count the patch positions ``(H_out, W_out)`` along each image axis.

    Parameters
    ----------
    image_hw : pair of int
        Height and width of the images.
    patch_size : int or pair of int
        Height and width ``(q_h, q_w)`` of a patch.
    stride : int or pair of int, default=1
        Step between two neighbouring patch positions.
    padding : int or pair of int, default=0
        Rows and columns of zeros added on each side of the images.

    Returns
    -------
    tuple of int
        ``(H_out, W_out)``, the output size of a :class:`torch.nn.Conv2d` of the same geometry.

    Raises
    ------
    ValueError
        When the padded images are smaller than one patch (the message names the fix), or a
        size is out of range.

    See Also
    --------
    extract_patches : the patches at these positions.
    PatchKernel : a kernel on the patches of a grid of this shape (its ``grid``).

    Examples
    --------
    >>> from skphase.nn import patch_grid_shape
    >>> patch_grid_shape((28, 28), 3)
    (26, 26)
    >>> patch_grid_shape((28, 28), 5, stride=2, padding=2)
    (14, 14)
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


def median_patch_distance(
    X: torch.Tensor,
    patch_size: int | tuple[int, int],
    *,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    n_pairs: int = 4000,
    generator: torch.Generator | None = None,
) -> float:
    """Median Euclidean distance between patches at one position of two different images.

    The patch kernels compare patches at aligned positions, so this is the typical distance they
    see; it sets a bandwidth that follows the scale of the data (ConvRFM's ``bandwidth="auto"``).
    Only the sampled patches are read: memory grows with ``n_pairs``, not with ``X``.

    Parameters
    ----------
    X : torch.Tensor of shape (n, C, H, W)
        At least two images.
    patch_size : int or pair of int
        Height and width of a patch.
    stride : int or pair of int, default=1
        Step between two neighbouring patch positions.
    padding : int or pair of int, default=0
        Rows and columns of zeros added on each side of the images.
    n_pairs : int, default=4000
        Random (image, other image, position) triples drawn.
    generator : torch.Generator or None, default=None
        CPU generator of the draws; None uses torch's global generator.

    Returns
    -------
    float
        The median of the ``n_pairs`` Euclidean distances.

    See Also
    --------
    extract_patches : the patches compared.
    PatchKernel : the kernels whose ``bandwidth`` this distance sets.

    Examples
    --------
    >>> import torch
    >>> from skphase.nn import median_patch_distance
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


def extract_patches(
    X: torch.Tensor,
    patch_size: int | tuple[int, int],
    *,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
) -> torch.Tensor:
    """Cut every patch out of a batch of images, ordered like a convolution's weights.

    Parameters
    ----------
    X : torch.Tensor of shape (n, C, H, W)
        The images.
    patch_size : int or pair of int
        Height and width ``(q_h, q_w)`` of a patch, as the kernel size of :class:`torch.nn.Conv2d`.
    stride : int or pair of int, default=1
        Step between two neighbouring patch positions.
    padding : int or pair of int, default=0
        Rows and columns of zeros added on each side of the images.

    Returns
    -------
    torch.Tensor of shape (n, P, C * q_h * q_w)
        ``P = H_out * W_out`` positions in row-major order; each patch is
        flattened channel first, then rows, then columns, so that
        ``patches @ conv.weight.reshape(out_channels, -1).T`` equals the
        convolution's output at every position.

    See Also
    --------
    patch_grid_shape : the grid ``(H_out, W_out)`` of the positions.
    transform_patches : the position-major transformed patches that kernels compare.

    Examples
    --------
    >>> import torch
    >>> from skphase.nn import extract_patches
    >>> extract_patches(torch.zeros(2, 3, 8, 8), 3).shape
    torch.Size([2, 36, 27])
    """
    if X.ndim != 4:
        raise ValueError(f"X must have shape (n, C, H, W), got {tuple(X.shape)}.")
    patch_grid_shape(X.shape[-2:], patch_size, stride=stride, padding=padding)
    columns = F.unfold(X, _pair(patch_size, "patch_size"), padding=_pair(padding, "padding"),
                       stride=_pair(stride, "stride"))
    return columns.transpose(1, 2)


@overload
def psd_power(M: torch.Tensor, power: float, *, return_eigenvalues: Literal[False] = ...) -> torch.Tensor: ...


@overload
def psd_power(
    M: torch.Tensor, power: float, *, return_eigenvalues: Literal[True]
) -> tuple[torch.Tensor, torch.Tensor]: ...


def psd_power(
    M: torch.Tensor, power: float, *, return_eigenvalues: bool = False
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Raise a symmetric positive semi-definite matrix to a power, through its eigendecomposition.

    Negative eigenvalues from round-off are clipped to zero.

    Parameters
    ----------
    M : torch.Tensor of shape (d, d)
        Symmetric positive semi-definite matrix; only its symmetric part ``(M + M^T) / 2`` is read.
    power : float
        The exponent.
    return_eigenvalues : bool, default=False
        Return the eigenvalues of ``M`` too.

    Returns
    -------
    powered : torch.Tensor of shape (d, d)
        ``M ** power``, symmetric.
    eigenvalues : torch.Tensor of shape (d,)
        The eigenvalues of ``M`` in ascending order, before clipping; only with
        ``return_eigenvalues=True``.

    See Also
    --------
    psd_sqrt : the power 1/2.
    fit_rfm : sets the patch transform of the recursive feature machine to a power of the AGOP.

    Examples
    --------
    >>> import torch
    >>> from skphase.nn import psd_power
    >>> psd_power(torch.diag(torch.tensor([4.0, 9.0])), 1.5)
    tensor([[ 8.,  0.],
            [ 0., 27.]])
    """
    eigvals, eigvecs = torch.linalg.eigh(0.5 * (M + M.T))
    powered = (eigvecs * eigvals.clamp_min(0).pow(power)) @ eigvecs.T
    return (powered, eigvals) if return_eigenvalues else powered


def psd_sqrt(M: torch.Tensor) -> torch.Tensor:
    """Compute the symmetric square root of a symmetric positive semi-definite matrix.

    Parameters
    ----------
    M : torch.Tensor of shape (d, d)
        Symmetric positive semi-definite matrix.

    Returns
    -------
    torch.Tensor of shape (d, d)
        The symmetric positive semi-definite ``T`` with ``T @ T = M``.

    See Also
    --------
    psd_power : any power of such a matrix.

    Examples
    --------
    >>> import torch
    >>> from skphase.nn import psd_sqrt
    >>> M = torch.tensor([[2.0, 1.0], [1.0, 2.0]], dtype=torch.float64)
    >>> T = psd_sqrt(M)
    >>> bool(torch.allclose(T @ T, M))
    True
    """
    return psd_power(M, 0.5)


def transform_patches(patches: torch.Tensor, T: torch.Tensor | None = None) -> torch.Tensor:
    """Apply a patch transform and lay the patches out position-major, as kernels compare them.

    Parameters
    ----------
    patches : torch.Tensor of shape (n, P, d)
        Patches of ``n`` images (:func:`extract_patches`, :meth:`PatchKernel.patches`).
    T : torch.Tensor of shape (r, d) or None, default=None
        Maps each patch ``x_p`` to ``T x_p`` (cast to the dtype and device of ``patches``);
        None keeps the patches as they are (``M = I``).

    Returns
    -------
    torch.Tensor of shape (P, n, r)
        The transformed patches, position first, contiguous (``r = d`` when ``T`` is None).

    See Also
    --------
    PatchKernel.gram : the kernel matrix of transformed patches.
    extract_patches : the patches of images.

    Examples
    --------
    >>> import torch
    >>> from skphase.nn import extract_patches, transform_patches
    >>> patches = extract_patches(torch.rand(2, 1, 6, 6), 3)
    >>> patches.shape, transform_patches(patches, torch.eye(4, 9)).shape
    (torch.Size([2, 16, 9]), torch.Size([16, 2, 4]))
    """
    if T is not None:
        patches = patches @ T.T.to(patches)
    return patches.transpose(0, 1).contiguous()


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




@dataclass(frozen=True)
class PatchKernel:
    """A convolutional patch kernel ``K(x, z) = (1/P) sum_p k(T x_p, T z_p)``: its parameters and computations.

    One frozen value holds every parameter of the kernel, so that its kernel matrices
    (:meth:`gram`) and the patch AGOP of its kernel predictors (:meth:`agop`) are computed
    with the same ones; the recursive feature machine (:func:`fit_rfm`) and the ConvRFM
    estimators pass one around. Both work on patches cut out once by :meth:`patches`. The
    patch transform ``T`` (``M = T^T T``) is an argument of the computations, not a
    parameter of the kernel: it changes at every RFM iteration.

    Parameters
    ----------
    kernel : {"laplace", "gaussian", "ntk"}, default="laplace"
        Patch kernel ``k``: Laplace ``exp(-||a - b|| / L)``, Gaussian
        ``exp(-||a - b||^2 / (2 L^2))``, or the NTK of a ReLU conv net without pooling.
    bandwidth : float or None, default=10.0
        ``L`` of the Laplace and Gaussian kernels; not used by the NTK (may be None).
    patch_size : int or pair of int, default=3
        Height and width of a patch, as the kernel size of :class:`torch.nn.Conv2d`; stored
        as a pair. The NTK's deeper layers use filters of this size.
    stride : int or pair of int, default=1
        Step between two neighbouring patch positions; stored as a pair.
    padding : int or pair of int, default=0
        Rows and columns of zeros added on each side of the images; stored as a pair.
    ntk_depth : int, default=3
        Number of ReLU conv layers of the NTK.
    ntk_padding : {"same", "valid"}, default="same"
        The NTK's deeper layers pad with zeros ('same') or shrink the grid by
        ``patch_size - 1`` each ('valid').
    grid : pair of int or None, default=None
        Positions ``(H_out, W_out)`` of the patches of the images compared
        (:func:`patch_grid_shape`). The NTK needs it (its deeper layers mix
        neighbouring positions); the other kernels check the patches against it when given.
    batch_size : int, default=256
        Rows and columns of a kernel block; bounds memory.

    See Also
    --------
    patch_kernel : the kernel matrix of two image batches in one call.
    patch_agop : the patch AGOP of a kernel predictor in one call.
    fit_rfm : the recursive feature machine on such a kernel.

    Examples
    --------
    >>> import torch
    >>> from skphase.nn import PatchKernel, patch_grid_shape, transform_patches
    >>> X = torch.rand(4, 1, 6, 6, dtype=torch.float64)
    >>> kernel = PatchKernel("laplace", bandwidth=2.0, patch_size=3, grid=patch_grid_shape((6, 6), 3))
    >>> A = transform_patches(kernel.patches(X))  # position-major, T = I
    >>> K = kernel.gram(A)
    >>> K.shape, float(K[0, 0])
    (torch.Size([4, 4]), 1.0)
    >>> G = kernel.agop(kernel.patches(X), kernel.patches(X), torch.randn(4, 2, dtype=torch.float64))
    >>> G.shape
    torch.Size([9, 9])
    """

    kernel: str = "laplace"
    bandwidth: float | None = 10.0
    patch_size: int | tuple[int, int] = 3
    stride: int | tuple[int, int] = 1
    padding: int | tuple[int, int] = 0
    ntk_depth: int = 3
    ntk_padding: str = "same"
    grid: tuple[int, int] | None = None
    batch_size: int = 256

    def __post_init__(self):
        # Frozen: the normalised values are set through object.__setattr__, once, here.
        for name in ("patch_size", "stride", "padding"):
            object.__setattr__(self, name, _pair(getattr(self, name), name))
        if self.grid is not None:
            object.__setattr__(self, "grid", _pair(self.grid, "grid"))
        if self.kernel not in PATCH_KERNELS:
            raise ValueError(f"kernel must be one of {PATCH_KERNELS}, got {self.kernel!r}.")
        if self.kernel != "ntk" and not (self.bandwidth is not None and self.bandwidth > 0):
            raise ValueError(f"bandwidth must be > 0, got {self.bandwidth!r}.")
        # Checked for every kernel: a typo is never silently ignored.
        if self.ntk_padding not in NTK_PADDINGS:
            raise ValueError(f"ntk_padding must be one of {NTK_PADDINGS}, got {self.ntk_padding!r}.")
        if self.ntk_depth < 1 or self.batch_size < 1:
            raise ValueError(f"ntk_depth and batch_size must be >= 1, got {self.ntk_depth} and {self.batch_size}.")

    def patches(self, X: torch.Tensor) -> torch.Tensor:
        """Cut the patches of the kernel's geometry out of images (see :func:`extract_patches`).

        Parameters
        ----------
        X : torch.Tensor of shape (n, C, H, W)
            The images; when the kernel has a ``grid``, of a size that gives that grid.

        Returns
        -------
        torch.Tensor of shape (n, P, C * q_h * q_w)
            The patches of every image, positions in row-major order.
        """
        if self.grid is not None:
            grid = patch_grid_shape(X.shape[-2:], self.patch_size, stride=self.stride, padding=self.padding)
            if grid != self.grid:
                raise ValueError(f"Images of size {tuple(X.shape[-2:])} have a {grid} grid of patches, but the "
                                 f"kernel compares {self.grid} grids; pass images of the size it was made for.")
        return extract_patches(X, self.patch_size, stride=self.stride, padding=self.padding)

    def gram(self, A: torch.Tensor, B: torch.Tensor | None = None) -> torch.Tensor:
        """Compute the kernel matrix from position-major transformed patches.

        Parameters
        ----------
        A : torch.Tensor of shape (P, n, r)
            Transformed patches ``T x_p`` of the rows (see :func:`transform_patches`).
        B : torch.Tensor of shape (P, m, r) or None, default=None
            Those of the columns; None uses ``A`` and fills only the upper block
            triangle (the matrix is symmetric).

        Returns
        -------
        torch.Tensor of shape (n, m)
            ``K(x_i, z_j)``, in the dtype and on the device of ``A``.
        """
        symmetric = B is None
        columns = A if B is None else B
        n_pos, n, m = A.shape[0], A.shape[1], columns.shape[1]
        if columns.shape[0] != n_pos or columns.shape[2] != A.shape[2]:
            raise ValueError(f"Patch tensors disagree: {tuple(A.shape)} vs {tuple(columns.shape)}.")
        if self.grid is not None and self.grid[0] * self.grid[1] != n_pos:
            raise ValueError(f"The patches have {n_pos} positions but the kernel's grid {self.grid} has "
                             f"{self.grid[0] * self.grid[1]}.")
        batch_size = self.batch_size
        if self.kernel == "ntk":
            if self.grid is None:
                raise ValueError("kernel='ntk' needs grid=(H_out, W_out), the positions of the patches.")
            grids = ntk_layer_grids(self.grid, self.patch_size, self.ntk_depth, self.ntk_padding)
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
                if self.kernel == "ntk":
                    block = ntk_block(A[:, rows], columns[:, cols], grids, self.patch_size, self.ntk_padding)
                else:
                    block = _radial_kernel_block(A[:, rows], columns[:, cols], self.kernel, self.bandwidth,
                                                 batch_size)
                out[rows, cols] = block
                if symmetric and j > i:
                    out[cols, rows] = block.T
        # The mean over the positions the read-out sees (the last NTK layer's).
        return out.div_(grids[-1][0] * grids[-1][1] if self.kernel == "ntk" else n_pos)

    def agop(
        self,
        patches_x: torch.Tensor,
        patches_z: torch.Tensor,
        coef: torch.Tensor,
        *,
        T: torch.Tensor | None = None,
        sample_weight: torch.Tensor | None = None,
        method: str = "auto",
    ) -> torch.Tensor:
        """Compute the patch AGOP of the kernel predictor ``f(x) = sum_i coef_i K(x, z_i)``.

        ``G = sum_x w_x sum_p sum_c g g^T / sum_x w_x`` with ``g`` the gradient of ``f_c``
        with respect to the patch ``x_p`` (see :mod:`skphase.nn._agop`).

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
        sample_weight : torch.Tensor of shape (n,) or None, default=None
            Weights ``w_x`` of the images of ``patches_x`` in the average; None weighs them equally.
        method : {"auto", "closed_form", "autograd"}, default="auto"
            ``"auto"`` uses the closed form for Laplace/Gaussian and autograd for the NTK.

        Returns
        -------
        torch.Tensor of shape (d, d)
            The patch AGOP, symmetric positive semi-definite.
        """
        # Imported here: the AGOP module builds on the kernel blocks of this one.
        from ._agop import agop_from_patches

        return agop_from_patches(self, patches_x, patches_z, coef, T=T, sample_weight=sample_weight, method=method)


def patch_kernel_from_patches(A, B=None, *, kernel="laplace", bandwidth=10.0, grid=None, ntk_depth=3,
                              window=(3, 3), ntk_padding="same", batch_size=256):
    """Image kernel matrix from position-major transformed patches: ``PatchKernel(...).gram(A, B)``.

    ``window`` is the NTK's filter size (the ``patch_size`` of :class:`PatchKernel`); the other
    parameters are those of :class:`PatchKernel` and :meth:`PatchKernel.gram`.
    """
    spec = PatchKernel(kernel, bandwidth, patch_size=window, ntk_depth=ntk_depth, ntk_padding=ntk_padding,
                       grid=grid, batch_size=batch_size)
    return spec.gram(A, B)


def patch_kernel(
    X: torch.Tensor,
    Z: torch.Tensor | None = None,
    *,
    M: torch.Tensor | None = None,
    kernel: str = "laplace",
    bandwidth: float | None = 10.0,
    patch_size: int | tuple[int, int] = 3,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    ntk_depth: int = 3,
    ntk_padding: str = "same",
    batch_size: int = 256,
) -> torch.Tensor:
    """Compute the convolutional kernel ``K(x, z) = (1/P) sum_p k(T x_p, T z_p)`` of two image batches.

    Parameters
    ----------
    X : torch.Tensor of shape (n, C, H, W)
        The images of the rows.
    Z : torch.Tensor of shape (m, C, H, W) or None, default=None
        The images of the columns, of the shape of those of ``X``; None computes the
        (symmetric) Gram matrix of ``X``.
    M : torch.Tensor of shape (d, d) or None, default=None
        Mahalanobis matrix on patches (symmetric PSD, ``d = C q_h q_w``; ``T`` is its
        square root); None is the identity.
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
        ``patch_size - 1`` each ('valid', the authors' network).
    batch_size : int, default=256
        Rows and columns per block; bounds memory.

    Returns
    -------
    torch.Tensor of shape (n, m)
        ``K(x_i, z_j)``, in the dtype and on the device of ``X``.

    See Also
    --------
    PatchKernel : the same kernel as a value, with its patch AGOP.
    patch_agop : the patch AGOP of a predictor of this kernel.

    Examples
    --------
    >>> import torch
    >>> from skphase.nn import patch_kernel
    >>> X = torch.rand(4, 1, 6, 6, dtype=torch.float64)
    >>> K = patch_kernel(X, patch_size=3)
    >>> K.shape, bool(torch.allclose(K, K.T)), float(K[0, 0])
    (torch.Size([4, 4]), True, 1.0)
    """
    grid = patch_grid_shape(X.shape[-2:], patch_size, stride=stride, padding=padding)
    spec = PatchKernel(kernel, bandwidth, patch_size=patch_size, stride=stride, padding=padding, ntk_depth=ntk_depth,
                       ntk_padding=ntk_padding, grid=grid, batch_size=batch_size)
    T = None if M is None else psd_sqrt(M.to(X))
    A = transform_patches(spec.patches(X), T)
    B = None
    if Z is not None:
        if Z.shape[1:] != X.shape[1:]:
            raise ValueError(f"X and Z must hold images of one shape, got {tuple(X.shape[1:])} and "
                             f"{tuple(Z.shape[1:])}.")
        B = transform_patches(spec.patches(Z.to(X)), T)
    return spec.gram(A, B)
