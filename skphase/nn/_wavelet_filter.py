"""W, the wavelet filtering of a scattering block, as matrix products at BLAS speed.

Each channel's image is convolved with a low-pass and ``L`` Morlet wavelets and
subsampled; the filtering is a linear map applied to all the channels of a batch
as one matrix product (dense for small maps, banded for larger ones), since
single-channel convolutions in ``conv2d`` run far below BLAS speed.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..filters import block_filter_bank
from ..utils._precision import LOW_PRECISION_DTYPES, autocast_disabled, compute_dtype

__all__ = ["row_toeplitz", "WaveletFilter"]


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

    See Also
    --------
    skphase.filters.block_filter_bank : the filters it applies.
    ScatteringBlock : the block it is the first stage of.

    Notes
    -----
    Shapes: input ``(n, H, W, C_real)`` (``[re | im]`` halves for complex input); output ``(re, im)``,
    each ``(n, H', W', 1 + L, C)`` where ``C = C_real / 2`` for complex input, index 0 of the
    filter axis being the low-pass.

    Examples
    --------
    >>> import torch
    >>> from skphase.nn import WaveletFilter
    >>> wavelets = WaveletFilter(L=4)  # complex input: 3 channels as [re | im] halves
    >>> re, im = wavelets(torch.randn(2, 16, 16, 6))
    >>> tuple(re.shape)  # (n, H / 2, W / 2, low-pass + 4 wavelets, channels)
    (2, 8, 8, 5, 3)
    >>> images = torch.randn(2, 16, 16, 1)  # channels last
    >>> tuple(WaveletFilter(L=4, complex_input=False)(images)[0].shape)
    (2, 8, 8, 5, 1)
    """

    #: Dense matrices are used while they cost at most this many times the Toeplitz
    #: product's multiply-adds: they run faster per operation and need no copy of the input.
    DENSE_COST_RATIO = 2.5
    #: Below this many channels, the dense matrix multiplies the batch's images in one product
    #: (after a transposition) rather than each image's thin matrix of channels.
    MIN_BATCHED_CHANNELS = 8

    def __init__(self, L: int, kind: str = "standard", complex_input: bool = True):
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

    def output_size(self, size: int) -> int:
        """Compute the side of the output maps.

        Parameters
        ----------
        size : int
            Side of the input maps (height or width).

        Returns
        -------
        int
            Side of the output maps: ``ceil(size / 2)`` for a subsampling bank, else ``size``.
        """
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
