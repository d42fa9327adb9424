"""The learned scattering network: a cascade of scattering blocks and a linear head."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, overload

import torch
from torch import nn

from ..utils._precision import autocast_disabled
from ._scattering_block import ScatteringBlock

__all__ = ["PhaseCollapseNet", "block_kinds", "count_subsamplings"]


def block_kinds(n_blocks, factorized):
    """Filter-bank kind of each block: one octave per block, or two blocks per octave."""
    if not factorized:
        return ["standard"] * n_blocks
    return ["factorized_first" if i % 2 == 0 else "factorized_second" for i in range(n_blocks)]


class PhaseCollapseNet(nn.Module):
    """Learned scattering network (Guth, Zarka & Mallat, 2022).

    Parameters
    ----------
    in_channels : int
        Channels of the input images.
    image_size : tuple of int
        ``(H, W)`` of the input images (fixes the size of the head).
    widths : sequence of int
        Complex channels out of each block's projection.
    n_classes : int
        Outputs of the linear head.
    L : int, default=4
        Number of wavelet orientations of each block.
    nonlinearity : str, default="modulus"
        One of ``NONLINEARITIES``; see :class:`ComplexNonlinearity`.
    variant : {"lscat", "lscat+skip"}, default="lscat+skip"
        One of ``VARIANTS``: ``"lscat+skip"`` also passes the low-pass and linear coefficients on to
        the projection; see :class:`ScatteringBlock`.
    factorized : bool, default=False
        Build every octave from two blocks of half-octave filters (the first keeps the resolution),
        as the paper's CIFAR-10 and ImageNet networks.
    generator : torch.Generator or None
        Seeds the initial projections.
    memory_efficient : bool, default=False
        Every block filters its input again in the backward rather than keeping the
        filtering's output: less memory for training, one more filtering pass per step (see
        :class:`ScatteringBlock`). A property that may be changed between steps.

    See Also
    --------
    ScatteringBlock : the blocks of the cascade.
    count_subsamplings : how many blocks halve the image.
    skphase.ScatteringPhaseCollapse : the scikit-learn estimator training this network.

    Notes
    -----
    ``forward`` takes images ``(n, C, H, W)`` and returns logits. Each block
    maps channels-last ``(n, H, W, 2C)`` real tensors (real parts, then
    imaginary parts), and ``blocks`` is an ``nn.ModuleList`` so that forward
    hooks can read every block.

    Under :func:`torch.autocast` (CPU bfloat16, CUDA float16 or bfloat16) the
    wavelet filtering and projection products run in low precision while every
    statistic, normalisation and the head stay in float32: block outputs and
    logits are float32, and the running statistics are updated in float32.

    Examples
    --------
    >>> import torch
    >>> from skphase.nn import PhaseCollapseNet
    >>> net = PhaseCollapseNet(3, (32, 32), widths=(16, 32), n_classes=10,
    ...                        generator=torch.Generator().manual_seed(0))
    >>> images = torch.rand(4, 3, 32, 32)
    >>> tuple(net(images).shape)
    (4, 10)
    >>> [tuple(z.shape) for z in net.features(images, all_blocks=True)]  # channels last, [re | im]
    [(4, 16, 16, 32), (4, 8, 8, 64)]
    """

    def __init__(
        self,
        in_channels: int,
        image_size: tuple[int, int],
        widths: Sequence[int],
        n_classes: int,
        *,
        L: int = 4,
        nonlinearity: str = "modulus",
        variant: str = "lscat+skip",
        factorized: bool = False,
        generator: torch.Generator | None = None,
        memory_efficient: bool = False,
    ):
        super().__init__()
        blocks, channels, complex_input = [], in_channels, False
        height, width = image_size
        for channels_out, kind in zip(widths, block_kinds(len(widths), factorized)):
            block = ScatteringBlock(channels, channels_out, L=L, kind=kind, nonlinearity=nonlinearity,
                                    variant=variant, complex_input=complex_input, generator=generator,
                                    memory_efficient=memory_efficient)
            blocks.append(block)
            height, width = block.wavelets.output_size(height), block.wavelets.output_size(width)
            channels, complex_input = channels_out, True
        self.blocks = nn.ModuleList(blocks)
        self.output_shape = (height, width, 2 * channels)
        self.head_norm = nn.BatchNorm1d(2 * channels)
        self.head = nn.Linear(height * width * 2 * channels, n_classes)
        with torch.no_grad():  # seeded like the projections, not from torch's global generator
            fan_in = self.head.in_features
            self.head.weight.copy_(torch.randn(n_classes, fan_in, generator=generator) / fan_in**0.5)
            self.head.bias.zero_()

    @property
    def memory_efficient(self) -> bool:
        """Whether every block filters its input again in the backward (see :class:`ScatteringBlock`)."""
        return all(block.memory_efficient for block in self.blocks)

    @memory_efficient.setter
    def memory_efficient(self, value: bool):
        for block in self.blocks:
            # setattr: iterating a ModuleList gives nn.Module, whose typed attributes are tensors and modules.
            setattr(block, "memory_efficient", bool(value))

    @overload
    def features(self, images: torch.Tensor, *, all_blocks: Literal[False] = ...) -> torch.Tensor: ...

    @overload
    def features(self, images: torch.Tensor, *, all_blocks: Literal[True]) -> list[torch.Tensor]: ...

    def features(
        self,
        images: torch.Tensor,
        *,
        all_blocks: bool = False,
    ) -> torch.Tensor | list[torch.Tensor]:
        """Compute the output of the last block, or of every block.

        Parameters
        ----------
        images : torch.Tensor of shape (n, in_channels, H, W)
            Input images.
        all_blocks : bool, default=False
            Return the output of every block instead of the last one.

        Returns
        -------
        torch.Tensor or list of torch.Tensor
            Channels-last ``(n, h, w, 2C)`` outputs (real parts, then imaginary parts).
        """
        channels = self.blocks[0].in_channels
        if images.ndim != 4 or images.shape[1] != channels:
            hint = (" The images look channels-last (n, H, W, C): pass images.permute(0, 3, 1, 2)."
                    if images.ndim == 4 and images.shape[-1] == channels else "")
            raise ValueError(f"PhaseCollapseNet expects images of shape (n, {channels}, H, W) (channels first), "
                             f"got {tuple(images.shape)}.{hint}")
        x = images.permute(0, 2, 3, 1)
        outputs = []
        for block in self.blocks:
            x = block(x)
            outputs.append(x)
        return outputs if all_blocks else x

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        """Compute the logits from the features of the last block.

        The head runs in the dtype of its parameters even inside an autocast region: it costs
        little next to the blocks, and the logits (and the loss computed from them) stay in float32.

        Parameters
        ----------
        features : torch.Tensor of shape (n, h, w, 2C)
            Output of the last block, as :meth:`features` returns it.

        Returns
        -------
        torch.Tensor of shape (n, n_classes)
            The logits.
        """
        if tuple(features.shape[1:]) != self.output_shape:
            raise ValueError(f"The head takes last-block features of shape (n, {', '.join(map(str, self.output_shape))}), "
                             f"got {tuple(features.shape)}: the images must have the image_size given to the network.")
        n = features.shape[0]
        with autocast_disabled(features.device.type):
            features = features.to(self.head.weight.dtype)
            flat = self.head_norm(features.reshape(-1, features.shape[-1]))
            return self.head(flat.reshape(n, -1))

    def forward(self, images):
        return self.classify(self.features(images))


def count_subsamplings(n_blocks: int, factorized: bool) -> int:
    """Count the blocks of a :class:`PhaseCollapseNet` cascade that subsample by 2.

    Parameters
    ----------
    n_blocks : int
        Number of blocks.
    factorized : bool
        Whether octaves are factorised into two blocks (the first keeps the resolution).

    Returns
    -------
    int
        Number of subsamplings: images must be at least ``2**count`` pixels wide and high.

    See Also
    --------
    PhaseCollapseNet : the network whose blocks are counted.

    Examples
    --------
    >>> from skphase.nn import count_subsamplings
    >>> count_subsamplings(8, factorized=True), count_subsamplings(3, factorized=False)
    (4, 3)
    """
    return sum(kind != "factorized_first" for kind in block_kinds(n_blocks, factorized))
