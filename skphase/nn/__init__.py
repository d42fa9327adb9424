"""torch modules and functional ops (no sklearn)."""

from ._complex_ops import NONLINEARITIES, ComplexNonlinearity, safe_modulus
from ._phase_collapse_net import PhaseCollapseNet
from ._scattering_block import ComplexProjection, ComplexStandardization, ScatteringBlock, WaveletFilter
from ._training import TrainingResult, augment_batch, train_classifier

__all__ = [
    "NONLINEARITIES", "ComplexNonlinearity", "safe_modulus", "PhaseCollapseNet", "ComplexProjection",
    "ComplexStandardization", "ScatteringBlock", "WaveletFilter", "TrainingResult", "augment_batch",
    "train_classifier",
]
from ._diffeo import RandomDiffeomorphism, deform, matched_noise, random_deform, sample_displacement, temperature_from_displacement, temperature_range  # noqa: E402
__all__ += ["RandomDiffeomorphism", "deform", "matched_noise", "random_deform", "sample_displacement", "temperature_from_displacement", "temperature_range"]
from ._dtcwpt import DTCWPT2d, IDTCWPT2d, dtcwpt2d, dtcwpt_pool, idtcwpt2d  # noqa: E402
__all__ += ["DTCWPT2d", "IDTCWPT2d", "dtcwpt2d", "dtcwpt_pool", "idtcwpt2d"]
from ._patch_kernels import PATCH_KERNELS, extract_patches, patch_grid_shape, patch_kernel, psd_sqrt  # noqa: E402
__all__ += ["PATCH_KERNELS", "extract_patches", "patch_grid_shape", "patch_kernel", "psd_sqrt"]
from ._agop import patch_agop, patch_agop_from_patches  # noqa: E402
__all__ += ["patch_agop", "patch_agop_from_patches"]
