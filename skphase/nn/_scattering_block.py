"""One block of a learned scattering network: W (wavelets), rho, Std, P, N.

Activations travel between blocks channels-last as real tensors
``(n, H, W, 2C)``: the real parts of ``C`` complex channels, then their
imaginary parts. The wavelet filtering is a small spatial convolution of each
real channel with ``1 + 2L`` real filters (the low-pass, then the real and
imaginary parts of the ``L`` Morlet wavelets), recombined into complex
coefficients; the complex projection ``P`` is a single real matrix product.

Mixed precision: inside a :func:`torch.autocast` region the two heavy products
(the wavelet filtering of complex input and ``P``) run in the region's dtype,
while the filtering of the images, the batch statistics, the running
statistics, the standardisation's scales, the non-linearities' divisions by
``|z|`` and the normalisation ``N`` are computed in float32
(:func:`skphase.utils._precision.statistics_dtype`), so that a block always
returns float32 activations. Outside autocast every operation runs in the
dtype of its inputs, float64 included.
"""

import torch
import torch.nn.functional as F
from torch import nn

from ..filters._morlet import block_filter_bank
from ..utils._precision import LOW_PRECISION_DTYPES, autocast_disabled, compute_dtype, statistics_dtype
from ._complex_ops import ComplexNonlinearity

__all__ = ["row_toeplitz", "unit_norm", "WaveletFilter", "ComplexStandardization", "ComplexProjection", "ScatteringBlock", "VARIANTS"]

#: "lscat": low-pass kept linear, rho on the wavelet channels only.
#: "lscat+skip": the linear coefficients and rho of them, for every channel.
VARIANTS = ("lscat", "lscat+skip")


def _pad(x, pad):
    # Reflection as in the reference; replication when a map is smaller than the filter radius.
    mode = "reflect" if min(x.shape[-2:]) > pad else "replicate"
    return F.pad(x, (pad, pad, pad, pad), mode=mode)


def row_toeplitz(bank, padded_width, stride):
    """Matrix applying 2-D filters as one product with stacked input rows.

    Parameters
    ----------
    bank : torch.Tensor of shape (F, k, k)
        Real filters (correlation convention, as ``conv2d``).
    padded_width : int
        Width ``Wp`` of the padded maps.
    stride : int

    Returns
    -------
    torch.Tensor of shape (k * Wp, Wo * F)
        ``T[a * Wp + w, j * F + f] = bank[f, a, w - j * stride]`` (0 outside the filter), so that
        the ``k`` padded rows feeding one output row, flattened, times ``T`` give that output
        row for every filter.
    """
    n_filters, k, _ = bank.shape
    out_width = (padded_width - k) // stride + 1
    taps = torch.arange(padded_width, device=bank.device)[:, None] - stride * torch.arange(
        out_width, device=bank.device
    )  # (Wp, Wo): which filter column meets input column w for output column j
    inside = (taps >= 0) & (taps < k)
    gathered = bank[:, :, taps.clamp(0, k - 1)] * inside  # (F, k, Wp, Wo)
    return gathered.permute(1, 2, 3, 0).reshape(k * padded_width, out_width * n_filters)


class WaveletFilter(nn.Module):
    """Convolve every channel with a low-pass and ``L`` Morlet wavelets, then subsample.

    The filtering is a linear map of each channel's image, applied to all the
    channels of a batch by one matrix product, in whichever of two forms costs
    fewer operations for the map size (both run at BLAS speed, whereas
    single-channel convolutions in ``conv2d`` run far below it):

    - small maps: the whole map, padding and subsampling included, as one dense
      matrix acting on the channels-last pixels of every image (no copy of the
      input, the output comes out channels-last);
    - large maps: a banded (Toeplitz) matrix acting on the stacked padded input
      rows under each output row (:func:`row_toeplitz`).

    For complex input the matrix holds the complex product, so that it returns
    real and imaginary parts directly.

    Parameters
    ----------
    L : int
        Number of orientations.
    kind : str
        Filter bank of the block, see :func:`skphase.filters.block_filter_bank`.
    complex_input : bool
        Whether the input holds complex channels ``[re | im]`` (True) or real ones.

    Notes
    -----
    Shapes: input ``(n, H, W, C_real)`` (``[re | im]`` halves for complex input); output ``(re, im)``,
    each ``(n, H', W', 1 + L, C)`` where ``C = C_real / 2`` for complex input, index 0 of the
    filter axis being the low-pass.
    """

    #: Dense matrices are used while they cost at most this many times the Toeplitz
    #: product's multiply-adds: they run faster per operation and need no copy of the input.
    DENSE_COST_RATIO = 2.5
    #: Below this many channels, the dense matrix multiplies the batch's images in one product
    #: (after a transposition) rather than each image's thin matrix of channels.
    MIN_BATCHED_CHANNELS = 8

    def __init__(self, L, kind="standard", complex_input=True):
        super().__init__()
        filters, subsample = block_filter_bank(L, kind)
        real = torch.tensor(filters.real, dtype=torch.float32)
        imag = torch.tensor(filters.imag, dtype=torch.float32)
        # Filters met by the real part of the input, then by its imaginary part, each giving
        # the real then the imaginary part of the output: (a + ib)(h + ig) = (ah - bg) + i(ag + bh).
        self.register_buffer("bank", torch.stack([torch.cat([real, imag]), torch.cat([-imag, real])]))
        self.L = L
        self.stride = 2 if subsample else 1
        self.complex_input = complex_input
        self._dense_cache = {}

    def __getstate__(self):
        # The dense matrices are derived from ``bank``: rebuilt on demand, never pickled.
        state = self.__dict__.copy()
        state["_dense_cache"] = {}
        return state

    def output_size(self, size):
        """Spatial size after the block for an input side of ``size``."""
        return (size + self.stride - 1) // self.stride

    @property
    def _parts(self):
        return 2 if self.complex_input else 1

    def _uses_dense(self, height, width):
        k = self.bank.shape[-1]
        padded_width = width + 2 * (k // 2)
        # Per map, the dense matrix reads H*W inputs per output, the Toeplitz one k*Wp.
        return height * width <= self.DENSE_COST_RATIO * k * padded_width

    def forward(self, x):
        # Under autocast complex input is cast once, before the Toeplitz path copies it into
        # stacked rows, and the dense matrix is kept in the products' dtype. Real input (the
        # images) keeps its dtype: a small share of the work, and a low-pass of images has a
        # mean large against its spread, which rounding to low precision would blur.
        dtype = compute_dtype(x) if self.complex_input else x.dtype
        with autocast_disabled(x.device.type):
            return self._filter(x.to(dtype))

    def _filter(self, x):
        n, height, width, channels = x.shape
        n_channels = channels // self._parts
        if self._uses_dense(height, width):
            matrix = self._dense_matrix(height, width, x.dtype, x.device)
            pixels = x.reshape(n, -1, n_channels)
            # The CPU's low-precision batched product copies a broadcast matrix once per image:
            # there the transposed one product is far cheaper.
            low_precision_cpu = x.dtype in LOW_PRECISION_DTYPES and x.device.type == "cpu"
            if n_channels >= self.MIN_BATCHED_CHANNELS and not low_precision_cpu:
                out = torch.matmul(matrix, pixels)
            else:  # a few channels (the images): one product for the batch, not n thin ones
                images = pixels.transpose(1, 2).reshape(n * n_channels, -1)
                out = (images @ matrix.T).view(n, n_channels, -1).transpose(1, 2)
            out = out.reshape(n, self.output_size(height), self.output_size(width), 2, 1 + self.L, n_channels)
        else:
            out = self._toeplitz(x, self.bank.to(x.dtype)).permute(0, 2, 3, 4, 5, 1)
        re, im = out.unbind(3)
        return re, im

    def _toeplitz(self, x, bank):
        """Filtered maps ``(n, C, H', W', 2, 1 + L)`` by banded products with stacked rows."""
        n, height, width, channels = x.shape
        parts = self._parts
        n_channels = channels // parts
        k = bank.shape[-1]
        maps = x.view(n, height, width, parts, n_channels).permute(0, 4, 3, 1, 2)
        padded = _pad(maps.reshape(n * n_channels, parts, height, width), k // 2)
        rows = padded.unfold(2, k, self.stride)  # (maps, parts, H', Wp, k): rows under each output row
        out_height, padded_width = rows.shape[2], rows.shape[3]
        rows = rows.permute(0, 2, 1, 4, 3).reshape(n * n_channels * out_height, parts * k * padded_width)
        toeplitz = torch.cat(
            [row_toeplitz(bank[p], padded_width, self.stride) for p in range(parts)]
        )
        return (rows @ toeplitz).view(n, n_channels, out_height, -1, 2, 1 + self.L)

    def _dense_matrix(self, height, width, dtype, device):
        """``(H' W' 2 (1 + L), H W parts)`` matrix of the filtering of one channel's map.

        Built once per size by filtering the basis images (in float64), so that it
        holds exactly the padding and subsampling of the Toeplitz path.
        """
        key = (height, width, dtype, device, self.bank.data_ptr())
        if key not in self._dense_cache:
            size = height * width * self._parts
            basis = torch.eye(size, dtype=torch.float64, device=device).view(size, height, width, self._parts)
            with torch.no_grad():
                columns = self._toeplitz(basis, self.bank.double())  # (size, 1, H', W', 2, 1 + L)
            if len(self._dense_cache) >= 8:  # sizes and devices seen are few; bound it anyway
                self._dense_cache.clear()
            self._dense_cache[key] = columns.reshape(size, -1).T.contiguous().to(dtype)
        return self._dense_cache[key]


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


def _column_statistics(flat, *, centred_dtype=None):
    """Per-column ``(variance, mean)`` of ``flat`` ``(rows, d)``, without correction, in at least float32.

    Two exact passes of matrix-vector products (the mean, then the mean square of
    the centred input): several times faster than ``var_mean``'s one-pass update
    on the largest activation of a block, and no cancellation under a large mean.
    Low-precision input is centred in float32 (the subtraction promotes it).
    With a ``centred_dtype``, a third output is ``flat - mean`` in that dtype.
    """
    rows = flat.shape[0]
    with autocast_disabled(flat.device.type):
        mean = _column_sums(flat) / rows
        centred = flat - mean
        kept = None if centred_dtype is None else centred.to(centred_dtype, copy=True)
        power = _column_sums(centred.square_()) / rows
    return (power, mean) if kept is None else (power, mean, kept)


def _add_moments_gradient(grad_flat, flat, mean, grad_power, grad_mean):
    """Gradient reaching ``flat`` through its column variance and mean, added to ``grad_flat``.

    ``d power_j / d x_ij = 2 (x_ij - mean_j) / rows`` and ``d mean_j / d x_ij = 1 / rows``,
    so the gradient is ``x a + b`` with per-column ``a`` and ``b``: two in-place passes where
    autograd's backward of ``var_mean`` makes five and allocates. ``grad_flat=None`` starts
    from zero. (Not ``addcmul(b, x, a)``: its broadcast of a row vector is far slower on the CPU.)
    The result has the dtype of ``flat``. Added into a low-precision ``grad_flat``, ``a`` and
    ``b`` are rounded to its dtype (mixed-dtype in-place kernels are several times slower):
    callers pass centred ``flat`` and a zero ``mean`` then, so that ``b`` cancels nothing.
    """
    rows = flat.shape[0]
    slope = grad_power * (2.0 / rows)
    offset = grad_mean / rows - slope * mean
    if grad_flat is None:
        return (flat * slope).add_(offset).to(flat.dtype)
    return grad_flat.addcmul_(flat, slope.to(grad_flat.dtype)).add_(offset.to(grad_flat.dtype))


class _ColumnMoments(torch.autograd.Function):
    """Per-column variance (without correction) and mean, with a fast forward and backward."""

    @staticmethod
    def forward(ctx, flat):
        power, mean = _column_statistics(flat)
        ctx.save_for_backward(flat, mean)
        return power, mean

    @staticmethod
    def backward(ctx, grad_power, grad_mean):
        flat, mean = ctx.saved_tensors
        grad_power = torch.zeros_like(mean) if grad_power is None else grad_power.to(mean.dtype)
        grad_mean = torch.zeros_like(mean) if grad_mean is None else grad_mean.to(mean.dtype)
        with autocast_disabled(flat.device.type):
            return _add_moments_gradient(None, flat, mean, grad_power, grad_mean)


def column_moments(flat):
    """Variance (``correction=0``) and mean of each column of ``flat`` ``(rows, d)``.

    Equal to ``torch.var_mean(flat, dim=0, correction=0)``, with a faster forward and backward,
    computed and returned in float32 for low-precision ``flat`` (inside autocast or not).
    """
    return _ColumnMoments.apply(flat)


def _channel_variance(power, n_complex):
    """Variance per channel from the per-column ones: ``E|z - mu|^2`` sums a complex channel's two columns."""
    k = n_complex
    return torch.cat([power[:k] + power[k:2 * k], power[2 * k:]])


def _per_column(values, n_complex):
    """Per-channel ``values`` spread over the columns: a complex channel's on both of its columns."""
    k = n_complex
    return torch.cat([values[:k], values[:k], values[k:]])


def _column_scale(var, n_complex, eps):
    """Per-column factor ``1 / sqrt(var + eps)`` from the per-channel variance."""
    return _per_column(torch.rsqrt(var + eps), n_complex)


class ComplexStandardization(nn.Module):
    """Per-channel standardisation statistics, without affine parameters.

    Complex channels: the complex mean is removed and the result divided by
    ``sqrt(eps + E|z - mu|^2)``; real channels likewise with their variance.
    Batch statistics in training, running averages in eval mode.

    The module returns the statistics rather than the standardised tensor:
    :class:`ComplexProjection` folds them into its matrix product, which saves
    two passes over the largest activation of the block.

    Parameters
    ----------
    n_complex, n_real : int
        Numbers of complex and real channels.
    eps : float, default=1e-5
    momentum : float, default=0.1
    """

    def __init__(self, n_complex, n_real, eps=1e-5, momentum=0.1):
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.register_buffer("running_mean", torch.zeros(2 * n_complex + n_real))
        self.register_buffer("running_var", torch.ones(n_complex + n_real))
        self.n_complex = n_complex

    def forward(self, flat):
        """Statistics of ``flat`` ``(rows, 2 n_complex + n_real)``, columns ``[re | im | real]``.

        Returns
        -------
        mean, scale : torch.Tensor
            Per column: ``(flat - mean) * scale`` is standardised. In at least float32 (the
            running statistics' dtype for float32 or low-precision ``flat``).
        """
        if self.training:
            power, mean = column_moments(flat)
            var = _channel_variance(power, self.n_complex)
            self.update_running_statistics(mean, var)
        else:
            dtype = statistics_dtype(flat.dtype)
            mean = self.running_mean.to(dtype)
            var = self.running_var.to(dtype)
        with autocast_disabled(flat.device.type):
            return mean, _column_scale(var, self.n_complex, self.eps)

    @torch.no_grad()
    def update_running_statistics(self, mean, var):
        """Move the running averages towards a batch's per-column ``mean`` and per-channel ``var``."""
        self.running_mean.lerp_(mean.detach().to(self.running_mean.dtype), self.momentum)
        self.running_var.lerp_(var.detach().to(self.running_var.dtype), self.momentum)


def semi_unitary(n_out, n_in, generator=None):
    """A complex ``(n_out, n_in)`` matrix with orthonormal rows (or columns), from the SVD of a Gaussian."""
    gaussian = torch.complex(
        torch.randn(n_out, n_in, generator=generator, dtype=torch.float64),
        torch.randn(n_out, n_in, generator=generator, dtype=torch.float64),
    )
    u, _, vh = torch.linalg.svd(gaussian, full_matrices=False)
    return (u @ vh).to(torch.complex64)


#: Devices where the 1x1 products run as oneDNN convolutions rather than matrix products.
CONVOLUTION_DEVICES = ("cpu",)


def pointwise_linear(x, weight, bias=None):
    """``x @ weight.T + bias`` for rows ``x`` of shape ``(rows, d)``.

    On the CPU the product runs as a 1x1 convolution over channels-last rows:
    oneDNN's kernels are 1.3-2x faster there than the BLAS matrix product with
    two threads, forward and backward. Elsewhere it is ``F.linear``.
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


class _StandardizedProjection(torch.autograd.Function):
    """``((flat - mean) * scale) @ matrix.T`` with the batch's statistics, and its backward in one node.

    The forward is what :class:`ComplexStandardization` and :class:`ComplexProjection`
    compute together in training. Written as one node, the backward adds the
    gradient through the statistics in place into the gradient of the product,
    instead of autograd allocating both and summing them: the largest activation
    of the block is then written once.

    The product runs in ``dtype`` (the caller's :func:`compute_dtype`: the forward
    and backward run outside autocast); the statistics, the effective matrix
    ``P s``, its bias and every gradient through them in at least float32
    (``mean``, ``var`` and the gradient of ``matrix`` come out in that dtype).
    A low-precision product (``dtype`` bfloat16 or float16) gets its input centred
    first, in float32, and rounded after: where a column's mean is large against
    its spread, the folded bias would subtract two nearly equal rounded numbers.
    The input of the product (``flat``, or ``flat - mean`` rounded) is what the
    backward keeps, with the mean it still has to remove (``mean``, or 0).
    """

    @staticmethod
    def forward(ctx, flat, matrix, n_complex, eps, dtype):
        with autocast_disabled(flat.device.type):
            if dtype in LOW_PRECISION_DTYPES:
                power, mean, product_input = _column_statistics(flat, centred_dtype=dtype)
                shift = torch.zeros_like(mean)
            else:
                power, mean = _column_statistics(flat)
                product_input, shift = flat.to(dtype), mean
            var = _channel_variance(power, n_complex)
            scale = _column_scale(var, n_complex, eps)
            effective = matrix.to(scale.dtype) * scale
            out = pointwise_linear(product_input, effective.to(dtype), (-(effective @ shift)).to(dtype))
        ctx.save_for_backward(product_input, matrix, shift, scale, effective)
        ctx.n_complex, ctx.input_dtype = n_complex, flat.dtype
        ctx.mark_non_differentiable(mean, var)
        return out, mean, var

    @staticmethod
    def backward(ctx, grad_out, _grad_mean, _grad_var):
        # ``flat`` is the product's input and ``mean`` the shift left to remove (see the class notes):
        # the gradients below hold for ``(flat - mean) @ (P s)^T`` either way.
        flat, matrix, mean, scale, effective = ctx.saved_tensors
        needs = ctx.needs_input_grad[:2]
        with autocast_disabled(flat.device.type):
            grad_out = grad_out.to(flat.dtype)
            grad_flat, grad_effective = _pointwise_linear_grads(
                grad_out, flat, effective.to(flat.dtype), (needs[0], True)
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
            grad_flat = _add_moments_gradient(grad_flat, flat, mean, grad_power, grad_mean)
        return grad_flat.to(ctx.input_dtype), grad_matrix, None, None, None


def standardized_projection(flat, standardization, projection):
    """``projection(flat, *standardization(flat))`` in training, as one autograd node.

    Parameters
    ----------
    flat : torch.Tensor of shape (rows, 2 n_complex + n_real)
    standardization : ComplexStandardization
        In training mode; its running statistics are updated (from float32 statistics under autocast).
    projection : ComplexProjection

    Returns
    -------
    torch.Tensor of shape (rows, 2 n_out)
        In the dtype autocast gives the product (:func:`compute_dtype`).
    """
    out, mean, var = _StandardizedProjection.apply(
        flat, projection.real_matrix(), standardization.n_complex, standardization.eps, compute_dtype(flat)
    )
    standardization.update_running_statistics(mean, var)
    return out


class ComplexProjection(nn.Module):
    """Learned complex 1x1 convolution without bias, as one real matrix product.

    Parameters
    ----------
    n_complex, n_real : int
        Complex and real input channels (real inputs are complex ones with a
        zero imaginary part: the modulus outputs).
    n_out : int
        Complex output channels.
    generator : torch.Generator or None
        Seeds the semi-unitary initialisation.

    Notes
    -----
    Shapes: input ``(rows, 2 n_complex + n_real)`` as ``[re | im | real]``; output
    ``(rows, 2 n_out)`` as ``[re | im]``.
    """

    def __init__(self, n_complex, n_real, n_out, generator=None):
        super().__init__()
        weight = semi_unitary(n_out, n_complex + n_real, generator)
        self.weight_real = nn.Parameter(weight.real.clone())
        self.weight_imag = nn.Parameter(weight.imag.clone())
        self.n_complex = n_complex

    def real_matrix(self):
        """The ``(2 n_out, 2 n_complex + n_real)`` real matrix acting on ``[re | im | real]``."""
        k = self.n_complex
        a, b = self.weight_real, self.weight_imag
        top = torch.cat([a[:, :k], -b[:, :k], a[:, k:]], dim=1)
        bottom = torch.cat([b[:, :k], a[:, :k], b[:, k:]], dim=1)
        return torch.cat([top, bottom], dim=0)

    def forward(self, x, mean=None, scale=None):
        """``P((x - mean) * scale)``, computed as ``x @ (P scale)^T - (P scale) mean``.

        The product runs in the dtype autocast gives it; ``P scale`` and the bias are formed
        in at least float32 first.
        """
        dtype = compute_dtype(x)
        with autocast_disabled(x.device.type):
            if mean is not None and dtype in LOW_PRECISION_DTYPES and x.dtype != dtype:
                # Input rounded by the product is centred first, in float32: the bias of a large
                # mean would cancel against the rounded products. Input already in the product's
                # dtype has had its rounding; folding the mean then saves two passes.
                x, mean = x - mean, torch.zeros_like(mean)
            matrix = self.real_matrix().to(statistics_dtype(dtype))
            if scale is not None:
                matrix = matrix * scale
            bias = None if mean is None else (-(matrix @ mean)).to(dtype)
            return pointwise_linear(x.to(dtype), matrix.to(dtype), bias)


class ScatteringBlock(nn.Module):
    """W, rho, Std, P, N: one block of the learned scattering network (no biases).

    Parameters
    ----------
    in_channels : int
        Input channels (real for the first block, complex afterwards).
    out_channels : int
        Complex channels out of the projection ``P``.
    L : int
    kind : str
        Filter bank, see :func:`skphase.filters.block_filter_bank`.
    nonlinearity : str
        See :class:`ComplexNonlinearity`.
    variant : {"lscat", "lscat+skip"}
    complex_input : bool
    eps : float, default=1e-5
        Added under the square roots of Std and N.
    generator : torch.Generator or None

    Notes
    -----
    The projection's input features are numbered filter-major: complex feature
    ``f * C + c`` is filter ``f`` of input channel ``c``, linear coefficients
    before non-linear ones; real (modulus) features likewise.
    """

    #: Picked by :func:`skphase.metrics.resolve_layers` as a layer to measure.
    is_representation_layer = True

    def __init__(self, in_channels, out_channels, *, L, kind, nonlinearity, variant, complex_input,
                 eps=1e-5, generator=None):
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}.")
        self.wavelets = WaveletFilter(L, kind, complex_input)
        self.variant = variant
        n_filters_rho = (1 + L) if variant == "lscat+skip" else L
        n_filters_linear = (1 + L) if variant == "lscat+skip" else 1
        self.rho = ComplexNonlinearity(nonlinearity, (n_filters_rho, in_channels))
        n_rho, n_linear = in_channels * n_filters_rho, in_channels * n_filters_linear
        n_complex = n_linear + (0 if self.rho.real_output else n_rho)
        n_real = n_rho if self.rho.real_output else 0
        self.std = ComplexStandardization(n_complex, n_real, eps=eps)
        self.proj = ComplexProjection(n_complex, n_real, out_channels, generator)
        self.eps = eps
        self.L = L
        self.out_channels = out_channels

    def forward(self, x):
        re, im = self.wavelets(x)  # (n, H, W, 1 + L, C) each
        n, height, width = re.shape[:3]
        if self.variant == "lscat+skip":
            linear, rho_in = (re, im), (re, im)
        else:
            # split rather than slicing: its gradient is one concatenation, not a zero-filled copy per slice.
            (phi_re, psi_re), (phi_im, psi_im) = re.split([1, self.L], -2), im.split([1, self.L], -2)
            linear, rho_in = (phi_re, phi_im), (psi_re, psi_im)
        rho_out = self.rho(*rho_in)
        if self.rho.real_output:
            parts = [linear[0], linear[1], rho_out]
        else:
            parts = [linear[0], rho_out[0], linear[1], rho_out[1]]
        # One pass gathers the [re | im | real] features of every pixel into rows for P.
        flat = torch.cat(parts, dim=-2).view(n * height * width, -1)
        if self.std.training:
            z = standardized_projection(flat, self.std, self.proj)
        else:
            z = self.proj(flat, *self.std(flat))
        z = z.view(n, height, width, -1)
        return unit_norm(z, self.eps)


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
