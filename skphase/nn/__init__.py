"""torch modules and functional ops (no scikit-learn)."""

from ._agop import patch_agop, patch_agop_from_patches
from ._augment import augment_batch
from ._callbacks import Callback, Checkpoint, EpochInfo, EpochLogger, StopAfter, load_checkpoint
from ._complex_ops import NONLINEARITIES, ComplexNonlinearity, safe_modulus
from ._diffeo import RandomDiffeomorphism, deform, matched_noise, random_deform
from ._diffeo_fields import sample_displacement, temperature_from_displacement, temperature_range
from ._dtcwpt import DTCWPT2d, IDTCWPT2d, dtcwpt2d, dtcwpt_pool, idtcwpt2d
from ._patch_kernels import (PATCH_KERNELS, extract_patches, median_patch_distance, patch_grid_shape, patch_kernel,
                             psd_power, psd_sqrt)
from ._phase_collapse_net import PhaseCollapseNet
from ._recalibration import recalibrate_running_statistics
from ._resnet import BasicBlock, ResNet, resnet18, resnet20
from ._scattering_block import ComplexProjection, ComplexStandardization, ScatteringBlock, WaveletFilter
from ._training import TrainingInterrupted, TrainingResult, evaluate_accuracy, train_classifier

__all__ = [
    "NONLINEARITIES", "PATCH_KERNELS", "BasicBlock", "Callback", "Checkpoint", "ComplexNonlinearity",
    "ComplexProjection", "ComplexStandardization", "DTCWPT2d", "EpochInfo", "EpochLogger", "IDTCWPT2d",
    "PhaseCollapseNet", "RandomDiffeomorphism", "ResNet", "ScatteringBlock", "StopAfter", "TrainingInterrupted",
    "TrainingResult", "WaveletFilter", "augment_batch", "deform", "dtcwpt2d", "dtcwpt_pool",
    "evaluate_accuracy", "extract_patches", "idtcwpt2d", "load_checkpoint", "matched_noise", "median_patch_distance", "patch_agop",
    "patch_agop_from_patches", "patch_grid_shape", "patch_kernel", "psd_power", "psd_sqrt", "random_deform", "recalibrate_running_statistics",
    "resnet18", "resnet20", "safe_modulus", "sample_displacement", "temperature_from_displacement",
    "temperature_range", "train_classifier",
]
