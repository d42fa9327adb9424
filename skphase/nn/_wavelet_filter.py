"""W, the wavelet filtering of a scattering block, as matrix products at BLAS speed.

Each channel's image is convolved with a low-pass and ``L`` Morlet wavelets and
subsampled; the filtering is a linear map applied to all the channels of a batch
as one or two matrix products (dense for small maps, separable or banded for
larger ones), since single-channel convolutions in ``conv2d`` run far below BLAS
speed.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..filters import block_filter_bank
from ..utils._precision import LOW_PRECISION_DTYPES, autocast_disabled, compute_dtype

__all__ = ["row_toeplitz", "WaveletFilter"]

#: Singular values of the bank's stacked filter columns below this fraction of the largest are
#: zero: the exact float64 filters have a joint column rank well below their size for few
#: orientations, with a gap of more than ten orders of magnitude below the last kept value.
COLUMN_RANK_TOL = 1e-12


def _padding_mode(height, width, pad):
    # Reflection as in the reference; replication when a map is smaller than the filter radius.
    return "reflect" if min(height, width) > pad else "replicate"


def _pad(x, pad):
    return F.pad(x, (pad, pad, pad, pad), mode=_padding_mode(*x.shape[-2:], pad))


def _padding_selection(size, pad, mode):
    """``(size + 2 pad, size)`` float64 0/1 matrix taking a signal to its padded copy."""
    source = torch.arange(size + 2 * pad) - pad
    if mode == "reflect":
        source = source.abs()
        source = torch.where(source >= size, 2 * (size - 1) - source, source)
    else:
        source = source.clamp(0, size - 1)
    return F.one_hot(source, size).double()


def _column_basis(filters):
    """Orthonormal basis ``(k, Q)`` of the columns of every real and imaginary filter of a bank."""
    columns = np.concatenate([*filters.real, *filters.imag], axis=1)  # (k, 2 (1 + L) k)
    basis, singular, _ = np.linalg.svd(columns, full_matrices=False)
    return basis[:, singular > COLUMN_RANK_TOL * singular[0]]


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
    channels of a batch by matrix products, in whichever of three forms costs
    fewer operations for the map size (all run at BLAS speed, whereas
    single-channel convolutions in ``conv2d`` run far below it):

    - small maps: the whole map, padding and subsampling included, as one dense
      matrix acting on the channels-last pixels of every image (no copy of the
      input, the output comes out channels-last);
    - larger maps with many channels: two products, one along the columns of
      every map and one along its rows. The bank's filters share few column
      profiles (an exact joint rank ``Q`` below their size ``k`` for few
      orientations), so the first product applies ``Q`` column filters to every
      input part and the second combines them along the rows into every output,
      again with no copy of the input and the output channels-last;
    - otherwise: a banded (Toeplitz) matrix acting on the stacked padded input
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

    #: Cost of a Toeplitz multiply-add in dense ones: the paths are compared by their
    #: multiply-adds weighted by these ratios, the dense matrices running fastest per operation
    #: and needing no copy of the input.
    DENSE_COST_RATIO = 2.5
    #: Cost of a multiply-add of the separable path in dense ones (thinner products).
    SEPARABLE_COST_RATIO = 1.5
    #: Below this many channels, the dense matrix multiplies the batch's images in one product
    #: (after a transposition) rather than each image's thin matrix of channels, and the
    #: separable path, whose products are as thin as the channels, is not used.
    MIN_BATCHED_CHANNELS = 8

    bank: torch.Tensor

    def __init__(self, L: int, kind: str = "standard", complex_input: bool = True):
        super().__init__()
        filters, subsample = block_filter_bank(L, kind)
        real = torch.tensor(filters.real, dtype=torch.float32)
        imag = torch.tensor(filters.imag, dtype=torch.float32)
        # Filters met by the real part of the input, then by its imaginary part, each giving
        # the real then the imaginary part of the output: (a + ib)(h + ig) = (ah - bg) + i(ag + bh).
        self.register_buffer("bank", torch.stack([torch.cat([real, imag]), torch.cat([-imag, real])]))
        # From the exact filters: rounding them to float32 would blur their low rank.
        self._column_basis = _column_basis(filters)
        self.L = L
        self.stride = 2 if subsample else 1
        self.complex_input = complex_input
        self._matrix_cache: dict = {}

    def __getstate__(self):
        # The matrices are derived from ``bank``: rebuilt on demand, never pickled.
        state = self.__dict__.copy()
        state["_matrix_cache"] = {}
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

    def multiply_adds(self, height: int, width: int, n_channels: int = 1, path: str | None = None) -> int:
        """Count the multiply-adds of filtering one map, as computed.

        Parameters
        ----------
        height, width : int
            Size of the input map.
        n_channels : int, default=1
            Channels filtered together (complex ones for complex input): the separable path is
            used only from ``MIN_BATCHED_CHANNELS`` of them.
        path : {"dense", "separable", "toeplitz"}, optional
            The path to count; by default the one the filter takes for this input.

        Returns
        -------
        int
            Multiply-adds per map (per channel of one image).
        """
        path = path or self._path(height, width, n_channels)
        k, parts = self.bank.shape[-1], self._parts
        out_height, out_width = self.output_size(height), self.output_size(width)
        outputs = out_height * out_width * self.bank.shape[1]  # every real output of the bank
        if path == "dense":
            return outputs * height * width * parts
        if path == "toeplitz":
            return outputs * k * (width + 2 * (k // 2)) * parts
        rank = self._column_basis.shape[1]
        return out_height * rank * height * width * parts + outputs * rank * width * parts

    def _path(self, height, width, n_channels, low_precision_cpu=False):
        """The path of least weighted cost for this input: "dense", "separable" or "toeplitz"."""
        costs = {
            "dense": self.multiply_adds(height, width, path="dense"),
            "toeplitz": self.DENSE_COST_RATIO * self.multiply_adds(height, width, path="toeplitz"),
        }
        # The CPU's low-precision batched product copies a broadcast matrix once per image.
        if n_channels >= self.MIN_BATCHED_CHANNELS and not low_precision_cpu:
            costs["separable"] = self.SEPARABLE_COST_RATIO * self.multiply_adds(height, width, path="separable")
        best = "dense"  # a plain loop rather than min(costs, key=costs.get), which torch.compile cannot trace
        for name, cost in costs.items():
            if cost < costs[best]:
                best = name
        return best

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
        # The CPU's low-precision batched product copies a broadcast matrix once per image:
        # there the transposed one product is far cheaper.
        low_precision_cpu = x.dtype in LOW_PRECISION_DTYPES and x.device.type == "cpu"
        path = self._path(height, width, n_channels, low_precision_cpu)
        if path == "separable":
            out = self._separable(x)
        elif path == "dense":
            matrix = self._dense_matrix(height, width, x.dtype, x.device)
            pixels = x.reshape(n, -1, n_channels)
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

    def _separable(self, x):
        """Filtered maps ``(n, H', W', 2, 1 + L, C)`` by a product along columns, then along rows."""
        n, height, width, channels = x.shape
        n_channels = channels // self._parts
        out_height, out_width = self.output_size(height), self.output_size(width)
        along_columns, along_rows = self._separable_matrices(height, width, x.dtype, x.device)
        # (n, H' Q, W parts C): every column filter on every input row, channels-last kept.
        profiles = torch.matmul(along_columns, x.reshape(n, height, width * channels))
        out = torch.matmul(along_rows, profiles.view(n * out_height, -1, n_channels))
        return out.view(n, out_height, out_width, 2, 1 + self.L, n_channels)

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

    def _cached(self, name, height, width, dtype, device, build):
        """The matrices ``build()`` returns (in float64), cached per input size, dtype and device."""
        def built():
            with torch.no_grad():
                return tuple(m.contiguous().to(device=device, dtype=dtype) for m in build())

        if torch.compiler.is_compiling():
            # Built in the graph, a small share of the filtering: reading the cache instead would make
            # the graph depend on whether it is filled, so the first compiled call, which fills it,
            # would be compiled again at the next.
            return built()
        key = (name, height, width, dtype, device, self.bank.data_ptr())
        if key not in self._matrix_cache:
            if len(self._matrix_cache) >= 8:  # sizes and devices seen are few; bound it anyway
                self._matrix_cache.clear()
            self._matrix_cache[key] = built()
        return self._matrix_cache[key]

    def _dense_matrix(self, height, width, dtype, device):
        """``(H' W' 2 (1 + L), H W parts)`` matrix of the filtering of one channel's map.

        Built once per size by filtering the basis images (in float64), so that it
        holds exactly the padding and subsampling of the Toeplitz path.
        """

        def build():
            size = height * width * self._parts
            basis = torch.eye(size, dtype=torch.float64, device=device).view(size, height, width, self._parts)
            columns = self._toeplitz(basis, self.bank.double())  # (size, 1, H', W', 2, 1 + L)
            return (columns.reshape(size, -1).T,)

        return self._cached("dense", height, width, dtype, device, build)[0]

    def _windows(self, size, k):
        """``(size', k)`` padded indices under each output position."""
        return self.stride * torch.arange(self.output_size(size))[:, None] + torch.arange(k)

    def _separable_matrices(self, height, width, dtype, device):
        """The two factors of the filtering of one channel's map, padding and subsampling included.

        Returns
        -------
        along_columns : (H' Q, H)
            ``[i, q, h]``: weight of input row ``h`` in column profile ``q`` at output row ``i``.
        along_rows : (W' 2 (1 + L), Q W parts)
            ``[j, o, q, w, p]``: weight of profile ``q`` of input part ``p`` at column ``w`` in
            real output ``o`` at output column ``j``.
        """

        def build():
            bank = self.bank.double().cpu()[: self._parts]  # (parts, 2 (1 + L), k, k)
            basis = torch.from_numpy(self._column_basis)  # (k, Q)
            k = bank.shape[-1]
            mode = _padding_mode(height, width, k // 2)
            # Padded rows and columns under each output row / column: (H', k, H) and (W', k, W).
            rows = _padding_selection(height, k // 2, mode)[self._windows(height, k)]
            columns = _padding_selection(width, k // 2, mode)[self._windows(width, k)]
            # Projected on the basis, the bank's filters are row filters of each column profile.
            row_filters = torch.einsum("aq,poac->poqc", basis, bank)
            along_columns = torch.einsum("aq,iah->iqh", basis, rows)
            along_rows = torch.einsum("poqc,jcw->joqwp", row_filters, columns)
            return along_columns.flatten(0, 1), along_rows.flatten(0, 1).flatten(1)

        return self._cached("separable", height, width, dtype, device, build)
