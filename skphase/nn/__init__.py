"""torch building blocks (no scikit-learn): modules, functional ops and training.

Modules
    The learned scattering network (:class:`PhaseCollapseNet`, :class:`ScatteringBlock` and its
    parts), the ResNet baselines, the DT-CWPT layers and :class:`RandomDiffeomorphism`; the
    string options of their parameters are the constants ``NONLINEARITIES``, ``VARIANTS`` and
    ``POOLINGS``.
Functional ops
    Pure functions on tensors: complex modulus, the DT-CWPT and its inverse, diffeomorphisms
    and matched noise, patch kernels (:class:`PatchKernel`, a frozen value, and their one-call
    forms), the patch AGOP and PSD matrix powers.
Training
    :func:`train_classifier` and its callbacks, evaluation and batch-norm recalibration; the
    options of the training loop are ``AUGMENTATIONS``, ``SCHEDULES`` and ``OPTIMIZERS``. The
    recursive feature machine on a patch kernel, :func:`fit_rfm`, with its kernel ridge
    regression (:func:`kernel_ridge`) and its result (:class:`RFMResult`).
"""

from ._agop import patch_agop, patch_agop_from_patches
from ._augment import AUGMENTATIONS, augment_batch
from ._callbacks import Callback, Checkpoint, EpochInfo, EpochLogger, StopAfter, load_checkpoint
from ._complex_ops import NONLINEARITIES, ComplexNonlinearity, safe_modulus
from ._diffeo import RandomDiffeomorphism, deform, matched_noise, random_deform
from ._diffeo_fields import sample_displacement, temperature_from_displacement, temperature_range
from ._dtcwpt import POOLINGS, DTCWPT2d, IDTCWPT2d, dtcwpt2d, dtcwpt2d_parts, dtcwpt_pool, idtcwpt2d
from ._optimizers import OPTIMIZERS, optimizer_class
from ._patch_kernels import (PATCH_KERNELS, PatchKernel, extract_patches, median_patch_distance, patch_grid_shape,
                             patch_kernel, psd_power, psd_sqrt, transform_patches)
from ._phase_collapse_net import PhaseCollapseNet, count_subsamplings
from ._recalibration import recalibrate_running_statistics
from ._resnet import BasicBlock, ResNet, resnet18, resnet20
from ._rfm import RFMResult, fit_rfm, kernel_ridge
from ._scattering_block import VARIANTS, ScatteringBlock
from ._schedules import SCHEDULES
from ._standardized_projection import ComplexProjection, ComplexStandardization
from ._training import TrainingInterrupted, TrainingResult, evaluate_accuracy, train_classifier
from ._wavelet_filter import WaveletFilter

__all__ = [
    # Modules
    "BasicBlock", "ComplexNonlinearity", "ComplexProjection", "ComplexStandardization", "DTCWPT2d", "IDTCWPT2d",
    "PhaseCollapseNet", "RandomDiffeomorphism", "ResNet", "ScatteringBlock", "WaveletFilter", "count_subsamplings",
    "resnet18", "resnet20", "NONLINEARITIES", "POOLINGS", "VARIANTS",
    # Functional ops
    "deform", "dtcwpt2d", "dtcwpt2d_parts", "dtcwpt_pool", "idtcwpt2d", "matched_noise", "random_deform",
    "safe_modulus", "sample_displacement", "temperature_from_displacement", "temperature_range",
    "PatchKernel", "extract_patches", "median_patch_distance", "patch_agop", "patch_agop_from_patches",
    "patch_grid_shape", "patch_kernel", "psd_power", "psd_sqrt", "transform_patches", "PATCH_KERNELS",
    # Training
    "Callback", "Checkpoint", "EpochInfo", "EpochLogger", "StopAfter", "TrainingInterrupted", "TrainingResult",
    "augment_batch", "evaluate_accuracy", "load_checkpoint", "optimizer_class", "recalibrate_running_statistics",
    "train_classifier", "AUGMENTATIONS", "OPTIMIZERS", "SCHEDULES",
    "RFMResult", "fit_rfm", "kernel_ridge",
]
