"""Running statistics recomputed from the final weights ("precise" batch normalisation).

During training, the running means and variances of batch-normalising layers are
exponential averages of batch statistics taken while the weights moved; after a short
training, or on inputs of an unusual scale, they lag behind the final network, and eval-mode
predictions suffer. One pass over the training images in train mode, without gradients,
with each layer's momentum set to ``1 / (k + 1)`` at batch ``k``, replaces them by the
plain average of the batch statistics of the final network.
"""

from __future__ import annotations

import torch

from ..utils._precision import autocast
from ..utils._sources import ImageSource

__all__ = ["recalibrate_running_statistics"]


def _statistics_layers(module):
    """Sub-modules keeping running statistics with a momentum (BatchNorm, ComplexStandardization)."""
    return [m for m in module.modules()
            if hasattr(m, "running_mean") and hasattr(m, "running_var") and hasattr(m, "momentum")
            and m.running_mean is not None]


@torch.no_grad()
def recalibrate_running_statistics(
    module: torch.nn.Module,
    source: ImageSource,
    *,
    batch_size: int,
    device: str | torch.device,
    precision: str = "float32",
) -> int:
    """Set every running mean and variance of ``module`` to the average over ``source``'s batches.

    Parameters
    ----------
    module : torch.nn.Module
        Its batch-normalising layers (``torch.nn.BatchNorm*``,
        :class:`~skphase.nn.ComplexStandardization` and the blocks using it) are updated in place;
        nothing else changes. Layers that act randomly in train mode (dropout) would make the
        statistics random too.
    source : ImageSource
        The training images (read in order, batch by batch; a final batch of one image is left out,
        having no batch statistics).
    batch_size : int
        Images per batch: use the training batch size, so that the statistics are those of training.
    device : torch.device or str
        Device of the module; the batches are sent there.
    precision : {"float32", "bfloat16", "float16"}, default="float32"
        Forward passes under :func:`torch.autocast` in this dtype.

    Returns
    -------
    int
        Number of batches averaged (0 when the module has no such layer).

    Raises
    ------
    FloatingPointError
        When a recomputed statistic is not finite (inputs too large for the precision).

    See Also
    --------
    train_classifier : calls this after the last epoch (``recalibrate=True``).

    Examples
    --------
    >>> import torch
    >>> from skphase.nn import recalibrate_running_statistics
    >>> from skphase.utils import as_image_source
    >>> module = torch.nn.BatchNorm2d(1)
    >>> recalibrate_running_statistics(module, as_image_source(torch.full((8, 1, 2, 2), 3.0)),
    ...                                batch_size=4, device="cpu")
    2
    >>> module.running_mean
    tensor([3.])
    """
    layers = _statistics_layers(module)
    if not layers:
        return 0
    momenta = [layer.momentum for layer in layers]
    was_training = module.training
    module.train()
    n_used = source.n_samples - (1 if source.n_samples % batch_size == 1 and source.n_samples > 1 else 0)
    count = 0
    try:
        for _, images in source.batches(batch_size, torch.arange(n_used)):
            count += 1
            for layer in layers:
                layer.momentum = 1.0 / count
            with autocast(device, precision):
                module(images.to(device, non_blocking=True))
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
        module.train(was_training)
    for layer in layers:
        if not (torch.isfinite(layer.running_mean).all() and torch.isfinite(layer.running_var).all()):
            raise FloatingPointError(
                f"The running statistics of {type(layer).__name__} overflowed (NaN or infinity): the images "
                "or the activations are too large for the precision of the computation. Rescale the images "
                "(e.g. to [0, 1]) and fit again."
            )
    return count
