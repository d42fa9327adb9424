"""Training-time augmentation of image batches: random crops and horizontal flips."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["AUGMENTATIONS", "augment_batch"]

#: The ``augmentation`` values of :func:`augment_batch` and :func:`train_classifier`: none, random
#: crops after zero padding, or crops and horizontal flips.
AUGMENTATIONS = (None, "crop", "crop+flip")


def augment_batch(images: torch.Tensor, augmentation: str | None, generator: torch.Generator) -> torch.Tensor:
    """Random crops after zero padding by ``H // 8`` pixels, and optional horizontal flips.

    Parameters
    ----------
    images : torch.Tensor of shape (n, C, H, W)
        The batch to augment.
    augmentation : {None, "crop", "crop+flip"}
        None returns the images unchanged.
    generator : torch.Generator
        A CPU generator; draws are made on the CPU so results do not depend on the device.

    Returns
    -------
    torch.Tensor
        Augmented images, same shape and device.

    See Also
    --------
    train_classifier : augments every training batch with this (``augmentation``).

    Examples
    --------
    >>> import torch
    >>> from skphase.nn import augment_batch
    >>> images = torch.rand(4, 3, 16, 16)
    >>> augment_batch(images, "crop+flip", torch.Generator().manual_seed(0)).shape
    torch.Size([4, 3, 16, 16])
    """
    if augmentation is None:
        return images
    n, _, height, width = images.shape
    pad_h, pad_w = height // 8, width // 8
    device = images.device
    if pad_h or pad_w:
        padded = F.pad(images, (pad_w, pad_w, pad_h, pad_h))
        off_h = torch.randint(0, 2 * pad_h + 1, (n,), generator=generator).to(device)
        off_w = torch.randint(0, 2 * pad_w + 1, (n,), generator=generator).to(device)
        rows = (torch.arange(height, device=device)[None] + off_h[:, None])[:, None, :, None]
        cols = (torch.arange(width, device=device)[None] + off_w[:, None])[:, None, None, :]
        batch = torch.arange(n, device=device)[:, None, None, None]
        channels = torch.arange(images.shape[1], device=device)[None, :, None, None]
        images = padded[batch, channels, rows, cols]
    if augmentation == "crop+flip":
        flip = (torch.rand(n, generator=generator) < 0.5).to(device)[:, None, None, None]
        images = torch.where(flip, images.flip(-1), images)
    return images
