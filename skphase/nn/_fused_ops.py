"""Fused kernels of a scattering block: the standardised projection ``P`` and the normalisation ``N``.

Functional ops with hand-written backwards, each cheaper than what autograd builds
from the composed expression; :mod:`skphase.nn._standardized_projection` and
:mod:`skphase.nn._scattering_block` hold the modules that call them.

- :func:`standardized_projection` (training): batch statistics, standardisation
  and the projection in one autograd node. The statistics come from two exact
  passes of matrix-vector products, and the backward adds the gradient through
  them in place into the gradient of the product, so that the largest activation
  of a block is written once.
- :func:`folded_projection` (eval mode, or no standardisation): the
  standardisation folded into the product's matrix and bias,
  ``x @ (P s)^T - (P s) mu``, saving two passes over the input.
- :func:`pointwise_linear`: the 1x1 products, run as oneDNN convolutions on AVX-512 CPUs.
- :func:`unit_norm`: ``N``, with a closed-form backward.

Mixed precision: inside a :func:`torch.autocast` region the products run in the
region's dtype (:func:`skphase.utils._precision.compute_dtype`), while the
statistics, the scales, the effective matrix ``P s`` and the normalisation run
in at least float32 (:func:`skphase.utils._precision.statistics_dtype`). Every
function here runs outside autocast internally, so that float64 is never cast.
"""

import torch
import torch.nn.functional as F

from ..utils._precision import LOW_PRECISION_DTYPES, autocast_disabled, compute_dtype, statistics_dtype
from ._recompute import will_be_recomputed

__all__ = [
    "CONVOLUTION_DEVICES",
    "column_scale",
    "folded_projection",
    "pointwise_linear",
    "standardized_projection",
    "unit_norm",
]

#: Devices where the 1x1 products run as oneDNN convolutions rather than matrix products: CPUs
#: with AVX-512. Without it, oneDNN's backward of these shapes does not spread over threads where
#: the BLAS products do (``benchmarks/bench_phase_collapse.py --products`` times both paths).
CONVOLUTION_DEVICES = ("cpu",) if torch.backends.cpu.get_cpu_capability().startswith("AVX512") else ()


# -- Column statistics ------------------------------------------------------------------------------------------------

def _column_sums(x):
    """Sum of each column of ``x`` ``(rows, d)``, in :func:`statistics_dtype` (at least float32).

    A product with ones, a BLAS kernel that runs several times faster than a
    reduction over the leading axis; low-precision columns are reduced with a
    float32 accumulator instead (a product would round the sums to their dtype).
    Call it outside autocast, which would run the product in low precision.
    """
    if x.dtype in LOW_PRECISION_DTYPES:
        return x.sum(0, dtype=statistics_dtype(x.dtype))
    return x.new_ones(x.shape[0]) @ x


#: Rows of the centred input formed at a time for the variance: a bounded buffer rather than a
#: copy of the largest activation of the block.
CENTRED_CHUNK_ELEMENTS = 2**22


def _column_statistics(flat, *, centred_dtype=None):
    """Per-column ``(variance, mean)`` of ``flat`` ``(rows, d)``, without correction, in at least float32.

    Two exact passes of matrix-vector products (the mean, then the mean square of
    the centred input): faster than ``var_mean``'s one-pass update on the largest
    activation of a block, and no cancellation under a large mean. The second pass
    centres a chunk of rows at a time (:data:`CENTRED_CHUNK_ELEMENTS`), so that it
    allocates a bounded buffer, not a copy of ``flat``.
    Low-precision input is centred in float32 (the subtraction promotes it).
    With a ``centred_dtype``, a third output is ``flat - mean`` in that dtype.
    """
    rows, columns = flat.shape
    chunk_rows = max(1, CENTRED_CHUNK_ELEMENTS // max(columns, 1))
    with autocast_disabled(flat.device.type):
        mean = _column_sums(flat) / rows
        kept = None if centred_dtype is None else flat.new_empty(flat.shape, dtype=centred_dtype)
        power = torch.zeros_like(mean)
        for start in range(0, rows, chunk_rows):
            centred = flat[start:start + chunk_rows] - mean
            if kept is not None:
                kept[start:start + chunk_rows] = centred
            power += _column_sums(centred.square_())
        power /= rows
    return (power, mean) if kept is None else (power, mean, kept)


def _moments_gradient(rows, mean, grad_power, grad_mean):
    """Per-column ``(slope, offset)``: ``flat slope + offset`` is the gradient through the variance and mean.

    ``d power_j / d x_ij = 2 (x_ij - mean_j) / rows`` and ``d mean_j / d x_ij = 1 / rows``.
    Applied in place (two passes, where autograd's backward of ``var_mean`` makes five and
    allocates). Not as ``addcmul(offset, x, slope)``: its broadcast of a row vector is far slower on
    the CPU. Added into a low-precision gradient, the factors are rounded to its dtype (mixed-dtype
    in-place kernels are several times slower): callers pass centred ``flat`` and a zero ``mean``
    then, so that ``offset`` cancels nothing.
    """
    slope = grad_power * (2.0 / rows)
    return slope, grad_mean / rows - slope * mean


def _channel_variance(power, n_complex):
    """Variance per channel from the per-column ones: ``E|z - mu|^2`` sums a complex channel's two columns."""
    k = n_complex
    return torch.cat([power[:k] + power[k:2 * k], power[2 * k:]])


def _per_column(values, n_complex):
    """Per-channel ``values`` spread over the columns: a complex channel's on both of its columns."""
    k = n_complex
    return torch.cat([values[:k], values[:k], values[k:]])


def column_scale(var, n_complex, eps):
    """Per-column factor ``1 / sqrt(var + eps)`` from the per-channel variance ``var``.

    Columns are ``[re | im | real]``: a complex channel's factor goes to both of its columns.
    """
    return _per_column(torch.rsqrt(var + eps), n_complex)


# -- 1x1 products ---------------------------------------------------------------------------------------------------

def pointwise_linear(x, weight, bias=None):
    """``x @ weight.T + bias`` for rows ``x`` of shape ``(rows, d)``.

    On :data:`CONVOLUTION_DEVICES` (CPUs with AVX-512) the product runs as a 1x1
    convolution over channels-last rows: oneDNN's kernels outrun the BLAS matrix
    product there, forward and backward. Elsewhere it is ``F.linear``.
    """
    if x.device.type not in CONVOLUTION_DEVICES:
        return F.linear(x, weight, bias)
    rows, dim = x.shape
    out = F.conv2d(x.view(1, rows, 1, dim).permute(0, 3, 1, 2), weight[:, :, None, None], bias)
    return out.permute(0, 2, 3, 1).reshape(rows, weight.shape[0])


def _pointwise_linear_grads(grad_out, x, weight, needs):
    """Gradients of ``pointwise_linear(x, weight)`` for ``x`` and ``weight`` (None where not ``needs``)."""
    if x.device.type not in CONVOLUTION_DEVICES:
        return (grad_out @ weight if needs[0] else None), (grad_out.T @ x if needs[1] else None)
    rows, dim = x.shape
    grad_x, grad_weight, _ = torch.ops.aten.convolution_backward(
        grad_out.view(1, rows, 1, -1).permute(0, 3, 1, 2), x.view(1, rows, 1, dim).permute(0, 3, 1, 2),
        weight[:, :, None, None], None, [1, 1], [0, 0], [1, 1], False, [0, 0], 1, [needs[0], needs[1], False],
    )
    if grad_x is not None:
        grad_x = grad_x.permute(0, 2, 3, 1).reshape(rows, dim)
    if grad_weight is not None:
        grad_weight = grad_weight.view(weight.shape)
    return grad_x, grad_weight


# -- The standardised projection --------------------------------------------------------------------------------------

class _StandardizedProjection(torch.autograd.Function):
    """``((flat - mean) * scale) @ matrix.T`` with the batch's statistics, and its backward, in one node.

    Written as one node, the backward adds the gradient through the statistics in
    place into the gradient of the product, instead of autograd allocating both
    and summing them: the largest activation of the block is then written once.

    The product runs in ``dtype`` (the caller's :func:`compute_dtype`: the forward
    and backward run outside autocast); the statistics, the effective matrix
    ``P s``, its bias and every gradient through them in at least float32
    (``mean``, ``var`` and the gradient of ``matrix`` come out in that dtype).
    A low-precision product (``dtype`` bfloat16 or float16) gets its input centred
    first, in float32, and rounded after: where a column's mean is large against
    its spread, the folded bias would subtract two nearly equal rounded numbers.
    The input of the product (``flat``, or ``flat - mean`` rounded) is what the
    backward keeps, with the mean it still has to remove (``mean``, or 0), the
    matrix and the scales (not their product, as large as the matrix).
    """

    @staticmethod
    def forward(ctx, flat, matrix, n_complex, eps, dtype):
        # Input rebuilt for the backward (``skphase.nn._recompute``) is a fresh buffer there: the
        # backward writes the input's gradient over it rather than holding two such arrays.
        ctx.input_recomputed = will_be_recomputed(flat) and flat.dtype == dtype
        with autocast_disabled(flat.device.type):
            if dtype in LOW_PRECISION_DTYPES:
                power, mean, product_input = _column_statistics(flat, centred_dtype=dtype)
                shift = torch.zeros_like(mean)
            else:
                power, mean = _column_statistics(flat)
                product_input, shift = flat.to(dtype), mean
            var = _channel_variance(power, n_complex)
            scale = column_scale(var, n_complex, eps)
            effective = matrix.to(scale.dtype) * scale
            out = pointwise_linear(product_input, effective.to(dtype), (-(effective @ shift)).to(dtype))
        ctx.save_for_backward(product_input, matrix, shift, scale)  # ``effective`` is one product away
        ctx.n_complex, ctx.input_dtype = n_complex, flat.dtype
        ctx.mark_non_differentiable(mean, var)
        return out, mean, var

    @staticmethod
    def backward(ctx, grad_out, _grad_mean, _grad_var):
        # ``flat`` is the product's input and ``mean`` the shift left to remove (see the class notes):
        # the gradients below hold for ``(flat - mean) @ (P s)^T`` either way.
        flat, matrix, mean, scale = ctx.saved_tensors
        needs = ctx.needs_input_grad[:2]
        # Not under create_graph=True: the rebuilt input then carries the history of higher derivatives.
        overwrite = needs[0] and ctx.input_recomputed and not torch.is_grad_enabled()
        with autocast_disabled(flat.device.type):
            effective = matrix.to(scale.dtype) * scale
            product_matrix = effective.to(flat.dtype)
            grad_out = grad_out.to(flat.dtype)
            grad_flat, grad_effective = _pointwise_linear_grads(
                grad_out, flat, product_matrix, (needs[0] and not overwrite, True)
            )
            out_sums = _column_sums(grad_out)
            grad_effective = grad_effective.to(mean.dtype) - torch.outer(out_sums, mean)  # the bias -(P s) mu
            grad_matrix = (grad_effective * scale).to(matrix.dtype) if needs[1] else None
            if not needs[0]:
                return None, grad_matrix, None, None, None
            # Through the statistics: mean directly, scale = (var + eps)^(-1/2) through the variance.
            grad_mean = -(out_sums @ effective)
            # A channel's variance sums its columns' powers and sets both its columns' scales, so its
            # gradient gathers the two columns (as the variance does) and reaches both powers.
            grad_scale_as_var = (grad_effective * matrix).sum(0) * (-0.5 * scale**3)
            grad_var = _channel_variance(grad_scale_as_var, ctx.n_complex)
            grad_power = _per_column(grad_var, ctx.n_complex)
            slope, offset = _moments_gradient(flat.shape[0], mean, grad_power, grad_mean)
            slope, offset = slope.to(flat.dtype), offset.to(flat.dtype)
            if overwrite:
                grad_flat = flat.mul_(slope).add_(offset).addmm_(grad_out, product_matrix)
            else:
                grad_flat = grad_flat.addcmul_(flat, slope).add_(offset)
        return grad_flat.to(ctx.input_dtype), grad_matrix, None, None, None


def standardized_projection(flat, matrix, n_complex, eps):
    """Standardise ``flat`` with its batch statistics and project it, as one autograd node.

    Parameters
    ----------
    flat : torch.Tensor of shape (rows, 2 n_complex + n_real)
        Columns ``[re | im | real]``.
    matrix : torch.Tensor of shape (d_out, 2 n_complex + n_real)
        The real matrix ``P`` of the projection.
    n_complex : int
    eps : float
        Added to the variances under the square root.

    Returns
    -------
    out : torch.Tensor of shape (rows, d_out)
        ``((flat - mean) * scale) @ matrix.T``, in the dtype autocast gives the product
        (:func:`compute_dtype`).
    mean : torch.Tensor of shape (2 n_complex + n_real,)
        Per column, in at least float32; no gradient.
    var : torch.Tensor of shape (n_complex + n_real,)
        Per channel (``E|z - mu|^2``, without correction), in at least float32; no gradient.
    """
    return _StandardizedProjection.apply(flat, matrix, n_complex, eps, compute_dtype(flat))


def folded_projection(x, matrix, mean=None, scale=None):
    """``((x - mean) * scale) @ matrix.T`` with given statistics, computed as ``x @ (P s)^T - (P s) mean``.

    Parameters
    ----------
    x : torch.Tensor of shape (rows, d)
    matrix : torch.Tensor of shape (d_out, d)
    mean, scale : torch.Tensor of shape (d,) or None
        Per-column statistics in at least float32; None leaves the input uncentred, or unscaled.

    Returns
    -------
    torch.Tensor of shape (rows, d_out)
        In the dtype autocast gives the product; ``P s`` and the bias are formed in at least
        float32 first. Autograd differentiates it (no statistics of ``x`` to go through).
    """
    dtype = compute_dtype(x)
    with autocast_disabled(x.device.type):
        if mean is not None and dtype in LOW_PRECISION_DTYPES and x.dtype != dtype:
            # Input rounded by the product is centred first, in float32: the bias of a large
            # mean would cancel against the rounded products. Input already in the product's
            # dtype has had its rounding; folding the mean then saves two passes.
            x, mean = x - mean, torch.zeros_like(mean)
        matrix = matrix.to(statistics_dtype(dtype))
        if scale is not None:
            matrix = matrix * scale
        bias = None if mean is None else (-(matrix @ mean)).to(dtype)
        return pointwise_linear(x.to(dtype), matrix.to(dtype), bias)


# -- N: unit norm -----------------------------------------------------------------------------------------------------

class _UnitNorm(torch.autograd.Function):
    """``z / sqrt(eps + |z|^2)`` over the last axis, with a two-pass backward.

    Autograd through the composed expression stores and revisits four
    intermediate tensors; the closed form ``r (g - y <g, y>)`` needs only the
    output ``y`` and the per-pixel factor ``r``.
    """

    @staticmethod
    def forward(ctx, z, eps):
        with autocast_disabled(z.device.type):
            z_wide = z.to(statistics_dtype(z.dtype))
            factor = torch.rsqrt(z_wide.square().sum(dim=-1, keepdim=True) + eps)
            out = z_wide * factor
        ctx.save_for_backward(out, factor)
        ctx.input_dtype = z.dtype
        return out

    @staticmethod
    def backward(ctx, grad):
        out, factor = ctx.saved_tensors
        with autocast_disabled(out.device.type):
            grad = grad.to(out.dtype)
            along = (grad * out).sum(dim=-1, keepdim=True)
            return (factor * torch.addcmul(grad, out, along, value=-1)).to(ctx.input_dtype), None


def unit_norm(z, eps):
    """N: unit Euclidean norm over channels (the last axis) at every pixel, ``z / sqrt(eps + |z|^2)``.

    Parameters
    ----------
    z : torch.Tensor of shape (..., C)
    eps : float

    Returns
    -------
    torch.Tensor of the shape of ``z``
        In at least float32: a low-precision ``z`` (a product under autocast) is normalised in float32.
    """
    return _UnitNorm.apply(z, eps)
