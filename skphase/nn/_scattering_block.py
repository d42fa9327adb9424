"""One block of a learned scattering network: ``N(P(Std(rho(W x))))``.

- ``W``: wavelet filtering and subsampling (:class:`~skphase.nn.WaveletFilter`);
- ``rho``: a non-linearity on the wavelet channels (:class:`~skphase.nn.ComplexNonlinearity`);
- ``Std`` and ``P``: per-channel standardisation folded into the complex 1x1
  projection (:class:`~skphase.nn.ComplexStandardization`, :class:`~skphase.nn.ComplexProjection`);
- ``N``: unit norm over the channels of every pixel (:func:`~skphase.nn._fused_ops.unit_norm`).

Activations travel between blocks channels-last as real tensors
``(n, H, W, 2C)``: the real parts of ``C`` complex channels, then their
imaginary parts.

Mixed precision: inside a :func:`torch.autocast` region the two heavy products
(the wavelet filtering of complex input and ``P``) run in the region's dtype,
while the filtering of the images, the batch statistics, the running
statistics, the standardisation's scales, the non-linearities' divisions by
``|z|`` and the normalisation ``N`` are computed in float32
(:func:`skphase.utils._precision.statistics_dtype`), so that a block always
returns float32 activations. Outside autocast every operation runs in the
dtype of its inputs, float64 included.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from ._complex_ops import ComplexNonlinearity
from ._fused_ops import unit_norm
from ._recompute import saved_as_recomputation, saved_views_as_recomputation
from ._standardized_projection import ComplexProjection, ComplexStandardization
from ._wavelet_filter import WaveletFilter

__all__ = ["ScatteringBlock", "VARIANTS"]

#: "lscat": low-pass kept linear, rho on the wavelet channels only.
#: "lscat+skip": the linear coefficients and rho of them, for every channel.
VARIANTS = ("lscat", "lscat+skip")


class ScatteringBlock(nn.Module):
    """W, rho, Std, P, N: one block of the learned scattering network (no biases).

    Parameters
    ----------
    in_channels : int
        Input channels: real ones for the first block (``complex_input=False``),
        complex ones afterwards.
    out_channels : int
        Complex channels out of the projection ``P``.
    L : int, default=4
        Number of wavelet orientations.
    kind : str, default="standard"
        Filter bank, see :func:`skphase.filters.block_filter_bank`.
    nonlinearity : str, default="modulus"
        See :class:`ComplexNonlinearity`.
    variant : {"lscat+skip", "lscat"}, default="lscat+skip"
        Whether rho also sees the low-pass and the linear coefficients of the wavelets are
        kept (``"lscat+skip"``), or rho sees the wavelets only and the low-pass is kept linear.
    complex_input : bool, default=False
        Whether the input holds complex channels ``[re | im]``.
    eps : float, default=1e-5
        Added under the square roots of Std and N.
    generator : torch.Generator or None
        Seeds the initial projection.
    memory_efficient : bool, default=False
        For the backward, keep how to filter the block's input again rather than the
        filtering's output, up to ``1 + L`` times larger than the input (which the graph
        holds anyway): training holds less memory for one more filtering pass per step.
        An attribute that may be changed between steps. Under :func:`torch.compile` the
        compiler chooses what the backward keeps instead.

    See Also
    --------
    WaveletFilter, ComplexNonlinearity, ComplexStandardization, ComplexProjection : its parts.
    PhaseCollapseNet : the cascade of blocks.

    Notes
    -----
    Shapes: input ``(n, H, W, in_channels)``, or ``(n, H, W, 2 in_channels)`` for complex
    input (real parts, then imaginary parts); output ``(n, H', W', 2 out_channels)`` likewise,
    with ``H' = ceil(H / 2)`` for subsampling filter banks.

    The projection's input features are numbered filter-major: complex feature
    ``f * C + c`` is filter ``f`` of input channel ``c``, linear coefficients
    before non-linear ones; real (modulus) features likewise.

    Examples
    --------
    >>> import torch
    >>> from skphase.nn import ScatteringBlock
    >>> images = torch.rand(4, 3, 32, 32).permute(0, 2, 3, 1)  # NCHW to channels last
    >>> first = ScatteringBlock(3, 16, generator=torch.Generator().manual_seed(0))
    >>> z = first(images)
    >>> tuple(z.shape)  # 16 complex channels as [re | im]
    (4, 16, 16, 32)
    >>> second = ScatteringBlock(16, 32, complex_input=True)
    >>> tuple(second(z).shape)
    (4, 8, 8, 64)
    """

    #: Picked by :func:`skphase.metrics.resolve_layers` as a layer to measure.
    is_representation_layer = True

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        L: int = 4,
        kind: str = "standard",
        nonlinearity: str = "modulus",
        variant: str = "lscat+skip",
        complex_input: bool = False,
        eps: float = 1e-5,
        generator: torch.Generator | None = None,
        memory_efficient: bool = False,
    ):
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
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.memory_efficient = memory_efficient

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block, ``N(P(Std(rho(W x))))``.

        Parameters
        ----------
        x : torch.Tensor of shape (n, H, W, in_channels) or (n, H, W, 2 in_channels)
            Channels-last input; complex input as real parts, then imaginary parts.

        Returns
        -------
        torch.Tensor of shape (n, H', W', 2 out_channels)
            The output channels as real parts, then imaginary parts.
        """
        self._check_input(x)
        re, im = self.wavelets(x)  # W: (n, H', W', 1 + L, C) each, the low-pass first
        n, height, width = re.shape[:3]
        if torch.compiler.is_compiling():
            # Under torch.compile the compiler chooses what the backward keeps and what it rebuilds;
            # the saved-tensor hooks of the recipes below would break its graph.
            z = self.std(self._feature_rows(re, im), self.proj)
            return unit_norm(z.view(n, height, width, -1), self.eps)
        # The projection keeps its input rows for its backward; autograd keeps how to rebuild them
        # from the filtering's output instead, which the non-linearity's backward reads anyway, or,
        # memory efficient, keeps neither but how to filter the block's input again, once for both.
        filtering: contextlib.AbstractContextManager
        if self.memory_efficient:
            filtering = saved_views_as_recomputation((re, im), lambda: self.wavelets(x), (x,))
        else:
            filtering = contextlib.nullcontext(lambda: (re, im))
        with filtering as filtered:
            rows = self._feature_rows(re, im)
            reads = (x, *self.rho.parameters())
            with saved_as_recomputation(rows, lambda: self._feature_rows(*filtered()), reads):
                z = self.std(rows, self.proj)  # P(Std(.)), the standardisation folded into P's product
        return unit_norm(z.view(n, height, width, -1), self.eps)  # N

    def _feature_rows(self, re, im):
        """rho and the linear coefficients of the filtered channels, as rows ``[re | im | real]`` for P."""
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
        return torch.cat(parts, dim=-2).view(n * height * width, -1)

    def _check_input(self, x):
        """Raise a ValueError naming the expected layout when ``x`` is not ``(n, H, W, channels)``."""
        complex_input = self.wavelets.complex_input
        channels = (2 if complex_input else 1) * self.in_channels
        if x.ndim == 4 and x.shape[-1] == channels and not x.is_complex():
            return
        layout = ("channels-last real tensors (n, H, W, 2 * in_channels) holding the real parts of the "
                  "complex channels, then their imaginary parts" if complex_input
                  else "channels-last images (n, H, W, in_channels)")
        if x.is_complex():
            hint = (" Complex tensors are stored as real pairs: pass torch.cat([x.real, x.imag], dim=-1)."
                    if complex_input else " This block takes real images (complex_input=False).")
        elif x.ndim == 4 and x.shape[1] == channels:
            hint = " The input looks channels-first (n, C, H, W): pass x.permute(0, 2, 3, 1)."
        else:
            hint = ""
        raise ValueError(f"ScatteringBlock(in_channels={self.in_channels}) expects {layout}, i.e. "
                         f"(n, H, W, {channels}); got shape {tuple(x.shape)}.{hint}")
