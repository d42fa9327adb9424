"""The published configurations of the learned scattering network, as parameters for ``set_params``."""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["PAPER_CONFIGS", "paper_config"]

_SGD = {"optimizer": "sgd", "learning_rate_init": 0.01, "momentum": 0.9, "weight_decay": 1e-4,
        "batch_size": 128, "schedule": "step", "nonlinearity": "modulus", "variant": "lscat+skip"}

#: Guth, Zarka & Mallat (ICLR 2022), section 4 and appendix: the networks of Table 1.
PAPER_CONFIGS = {
    # 32x32 colour images; 8 factorized blocks (4 subsamplings) end on a 512 x 2 x 2 map.
    "cifar10": {**_SGD, "widths": (64, 128, 256, 512, 512, 512, 512, 512), "L": 4, "factorized": True,
                "augmentation": "crop+flip", "max_iter": 300,
                "schedule_params": {"step_size": 70, "gamma": 0.1}},
    # 224x224 colour images; 11 factorized blocks (5 subsamplings) end on a 256 x 7 x 7 map. The
    # random resized crops and flips of ImageNet training belong to the user's Dataset transforms.
    "imagenet": {**_SGD, "widths": (32, 64, 64, 128, 256, 512, 512, 512, 512, 512, 256), "L": 8,
                 "factorized": True, "augmentation": None, "max_iter": 150,
                 "schedule_params": {"step_size": 45, "gamma": 0.1}},
}


def paper_config(name: str) -> dict[str, Any]:
    """Get the parameters of :class:`~skphase.ScatteringPhaseCollapse` for a configuration of the paper.

    Parameters
    ----------
    name : {"cifar10", "imagenet"}
        ``"cifar10"``: 8 blocks, widths 64, 128, 256, 512 x 5, L = 4, factorized filters, crop +
        flip augmentation, 300 epochs with the learning rate x0.1 every 70. ``"imagenet"``: 11
        blocks, widths 32, 64, 64, 128, 256, 512 x 5, 256, L = 8, factorized, 150 epochs with the
        learning rate x0.1 every 45. Both: LScat + skip with the modulus, SGD with learning rate
        0.01, momentum 0.9, weight decay 1e-4, batches of 128.

    Returns
    -------
    dict
        A fresh dict for ``set_params``; change any entry (``nonlinearity="soft_threshold"`` for
        the paper's Table 2, ``max_iter`` for a shorter run) before or after.

    Raises
    ------
    ValueError
        For an unknown name.

    See Also
    --------
    ScatteringPhaseCollapse : the estimator the parameters are for.

    References
    ----------
    F. Guth, J. Zarka, S. Mallat. "Phase Collapse in Neural Networks". ICLR 2022.

    Examples
    --------
    >>> from skphase import ScatteringPhaseCollapse, paper_config
    >>> model = ScatteringPhaseCollapse().set_params(**paper_config("cifar10"))
    >>> model.widths, model.schedule, model.schedule_params
    ((64, 128, 256, 512, 512, 512, 512, 512), 'step', {'step_size': 70, 'gamma': 0.1})
    """
    if name not in PAPER_CONFIGS:
        raise ValueError(f"Unknown configuration {name!r}; choose one of {sorted(PAPER_CONFIGS)}.")
    return copy.deepcopy(PAPER_CONFIGS[name])
