"""The learned scattering network: a cascade of scattering blocks and a linear head."""

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
    nonlinearity : str, default="modulus"
    variant : {"lscat", "lscat+skip"}, default="lscat+skip"
    factorized : bool, default=False
    generator : torch.Generator or None
        Seeds the initial projections.

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
    """

    def __init__(self, in_channels, image_size, widths, n_classes, *, L=4, nonlinearity="modulus",
                 variant="lscat+skip", factorized=False, generator=None):
        super().__init__()
        blocks, channels, complex_input = [], in_channels, False
        height, width = image_size
        for width_out, kind in zip(widths, block_kinds(len(widths), factorized)):
            block = ScatteringBlock(channels, width_out, L=L, kind=kind, nonlinearity=nonlinearity,
                                    variant=variant, complex_input=complex_input, generator=generator)
            blocks.append(block)
            height, width = block.wavelets.output_size(height), block.wavelets.output_size(width)
            channels, complex_input = width_out, True
        self.blocks = nn.ModuleList(blocks)
        self.output_shape = (height, width, 2 * channels)
        self.head_norm = nn.BatchNorm1d(2 * channels)
        self.head = nn.Linear(height * width * 2 * channels, n_classes)
        with torch.no_grad():  # seeded like the projections, not from torch's global generator
            fan_in = self.head.in_features
            self.head.weight.copy_(torch.randn(n_classes, fan_in, generator=generator) / fan_in**0.5)
            self.head.bias.zero_()

    def features(self, images, *, all_blocks=False):
        """Output of the last block ``(n, h, w, 2C)``, or the list of every block's output."""
        x = images.permute(0, 2, 3, 1)
        outputs = []
        for block in self.blocks:
            x = block(x)
            outputs.append(x)
        return outputs if all_blocks else x

    def classify(self, features):
        """Logits from last-block features ``(n, h, w, 2C)``.

        The head runs in the dtype of its parameters even inside an autocast region: it costs
        little next to the blocks, and the logits (and the loss computed from them) stay in float32.
        """
        n = features.shape[0]
        with autocast_disabled(features.device.type):
            features = features.to(self.head.weight.dtype)
            flat = self.head_norm(features.reshape(-1, features.shape[-1]))
            return self.head(flat.reshape(n, -1))

    def forward(self, images):
        return self.classify(self.features(images))


def count_subsamplings(n_blocks, factorized):
    """How many blocks of the cascade subsample by 2."""
    return sum(kind != "factorized_first" for kind in block_kinds(n_blocks, factorized))
