"""ResNet baselines for small images: He et al.'s CIFAR ResNet-20 and the CIFAR variant of ResNet-18.

These are the networks the phase-collapse paper compares against (Table 1: ResNet-20 on
CIFAR-10, ResNet-18 on ImageNet). Both take ``(n, C, H, W)`` images of any size (global
average pooling before the classifier) and train with :func:`skphase.nn.train_classifier`,
like :class:`~skphase.nn.PhaseCollapseNet`, so that a comparison changes one thing at a time.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["BasicBlock", "ResNet", "resnet20", "resnet18"]


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch normalisation and an identity (or downsampling) shortcut.

    Parameters
    ----------
    in_channels, out_channels : int
        Channels of the input and of the output.
    stride : int, default=1
        Stride of the first convolution (2 halves the map).
    shortcut : {"projection", "zero_pad"}, default="projection"
        How the shortcut changes shape when the block does: a 1x1 convolution with batch
        normalisation (ResNet-18), or subsampling and zero channels, parameter-free
        (He et al.'s "option A" for the CIFAR ResNets).

    See Also
    --------
    ResNet : the network built from these blocks.

    Examples
    --------
    >>> import torch
    >>> from skphase.nn import BasicBlock
    >>> BasicBlock(16, 32, stride=2)(torch.zeros(1, 16, 8, 8)).shape
    torch.Size([1, 32, 4, 4])
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, shortcut: str = "projection"):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.stride, self.extra_channels = stride, out_channels - in_channels
        self.projection = None
        if (stride != 1 or in_channels != out_channels) and shortcut == "projection":
            self.projection = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                                            nn.BatchNorm2d(out_channels))
        elif shortcut not in ("projection", "zero_pad"):
            raise ValueError(f"shortcut must be 'projection' or 'zero_pad', got {shortcut!r}.")

    def _shortcut(self, x):
        if self.projection is not None:
            return self.projection(x)
        if self.stride != 1:
            x = x[:, :, ::self.stride, ::self.stride]
        if self.extra_channels:
            x = F.pad(x, (0, 0, 0, 0, 0, self.extra_channels))
        return x

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self._shortcut(x))


class ResNet(nn.Module):
    """A 3x3 stem, stages of :class:`BasicBlock`, global average pooling and a linear classifier.

    Parameters
    ----------
    in_channels : int
        Channels of the input images.
    n_classes : int
        Outputs of the linear classifier.
    widths : sequence of int
        Channels of each stage; every stage after the first halves the map.
    blocks_per_stage : int or sequence of int
        Blocks of each stage; an int is the same for every stage.
    shortcut : {"projection", "zero_pad"}, default="projection"
        See :class:`BasicBlock`.

    Attributes
    ----------
    stages : torch.nn.ModuleList
        One ``nn.Sequential`` of blocks per stage, for forward hooks.

    See Also
    --------
    resnet20, resnet18 : the two configurations of the paper's Table 1.
    PhaseCollapseNet : the learned scattering network they are compared with.

    Examples
    --------
    >>> import torch
    >>> from skphase.nn import resnet20
    >>> resnet20(in_channels=1, n_classes=10)(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
    """

    def __init__(
        self,
        in_channels: int,
        n_classes: int,
        widths: Sequence[int],
        blocks_per_stage: int | Sequence[int],
        shortcut: str = "projection",
    ):
        super().__init__()
        widths = [int(w) for w in widths]
        if isinstance(blocks_per_stage, int):
            blocks_per_stage = [blocks_per_stage] * len(widths)
        if len(blocks_per_stage) != len(widths):
            raise ValueError(f"blocks_per_stage has {len(blocks_per_stage)} entries for {len(widths)} stages.")
        self.stem = nn.Sequential(nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True))
        stages, channels = [], widths[0]
        for index, (channels_out, count) in enumerate(zip(widths, blocks_per_stage)):
            blocks = []
            for position in range(count):
                stride = 2 if index > 0 and position == 0 else 1
                blocks.append(BasicBlock(channels, channels_out, stride, shortcut))
                channels = channels_out
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)
        self.fc = nn.Linear(channels, n_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Compute the pooled representation read by the classifier.

        Parameters
        ----------
        x : torch.Tensor of shape (n, in_channels, H, W)
            Input images.

        Returns
        -------
        torch.Tensor of shape (n, widths[-1])
            The globally average-pooled output of the last stage.
        """
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)

    def forward(self, x):
        return self.fc(self.features(x))


def resnet20(in_channels: int = 3, n_classes: int = 10) -> ResNet:
    """He et al.'s CIFAR ResNet-20: 3 stages of 3 basic blocks, 16/32/64 channels, parameter-free shortcuts.

    Parameters
    ----------
    in_channels : int, default=3
        Channels of the input images.
    n_classes : int, default=10
        Outputs of the classifier.

    Returns
    -------
    ResNet
        0.27 M parameters for 3 channels and 10 classes.

    See Also
    --------
    resnet18 : the wider ResNet of the paper.
    ResNet : the general network.

    References
    ----------
    K. He, X. Zhang, S. Ren, J. Sun. "Deep Residual Learning for Image Recognition". CVPR 2016, section 4.2.

    Examples
    --------
    >>> import torch
    >>> from skphase.nn import resnet20
    >>> resnet20(in_channels=1, n_classes=10)(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
    """
    return ResNet(in_channels, n_classes, (16, 32, 64), 3, shortcut="zero_pad")


def resnet18(in_channels: int = 3, n_classes: int = 10) -> ResNet:
    """ResNet-18, CIFAR variant: a 3x3 stem without max pooling, 4 stages of 2 blocks, 64-512 channels.

    Parameters
    ----------
    in_channels : int, default=3
        Channels of the input images.
    n_classes : int, default=10
        Outputs of the classifier.

    Returns
    -------
    ResNet
        11.17 M parameters for 3 channels and 10 classes.

    See Also
    --------
    resnet20 : the smaller CIFAR ResNet of the paper.
    ResNet : the general network.

    Examples
    --------
    >>> import torch
    >>> from skphase.nn import resnet18
    >>> resnet18(in_channels=1, n_classes=10)(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
    """
    return ResNet(in_channels, n_classes, (64, 128, 256, 512), 2, shortcut="projection")
