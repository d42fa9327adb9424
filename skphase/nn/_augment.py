"""Training-time augmentation of image batches: random crops and horizontal flips."""

import torch
import torch.nn.functional as F

__all__ = ["AUGMENTATIONS", "augment_batch"]

AUGMENTATIONS = (None, "crop", "crop+flip")


def augment_batch(images, augmentation, generator):
    """Random crops after zero padding by ``H // 8`` pixels, and optional horizontal flips.

    Parameters
    ----------
    images : torch.Tensor of shape (n, C, H, W)
    augmentation : {None, "crop", "crop+flip"}
    generator : torch.Generator
        A CPU generator; draws are made on the CPU so results do not depend on the device.

    Returns
    -------
    torch.Tensor
        Augmented images, same shape and device.
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
