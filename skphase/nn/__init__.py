"""torch modules and functional ops (no scikit-learn)."""

from ._agop import patch_agop, patch_agop_from_patches
from ._complex_ops import NONLINEARITIES, ComplexNonlinearity, safe_modulus
from ._diffeo import RandomDiffeomorphism, deform, matched_noise, random_deform
from ._diffeo_fields import sample_displacement, temperature_from_displacement, temperature_range
from ._dtcwpt import DTCWPT2d, IDTCWPT2d, dtcwpt2d, dtcwpt_pool, idtcwpt2d
from ._patch_kernels import PATCH_KERNELS, extract_patches, patch_grid_shape, patch_kernel, psd_power, psd_sqrt
from ._phase_collapse_net import PhaseCollapseNet
from ._scattering_block import ComplexProjection, ComplexStandardization, ScatteringBlock, WaveletFilter
from ._training import TrainingResult, augment_batch, train_classifier

__all__ = [
    "NONLINEARITIES", "PATCH_KERNELS", "ComplexNonlinearity", "ComplexProjection", "ComplexStandardization",
    "DTCWPT2d", "IDTCWPT2d", "PhaseCollapseNet", "RandomDiffeomorphism", "ScatteringBlock", "TrainingResult",
    "WaveletFilter", "augment_batch", "deform", "dtcwpt2d", "dtcwpt_pool", "extract_patches", "idtcwpt2d",
    "matched_noise", "patch_agop", "patch_agop_from_patches", "patch_grid_shape", "patch_kernel", "psd_power",
    "psd_sqrt", "random_deform", "safe_modulus", "sample_displacement", "temperature_from_displacement",
    "temperature_range", "train_classifier",
]
