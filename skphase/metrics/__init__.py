"""Measurements on representations: stability, invariance, separation, feature ansatz.

Every function reads models through :class:`skphase.metrics._probes.ModelProbe`, so it accepts a
torch ``nn.Module``, a fitted transformer or pipeline (prefix), or a callable on image batches,
and calls it on batches shaped like the ``X`` it is given.
"""

from ._feature_ansatz import matrix_cosine_similarity, nfa_correlation, pearson_matrix_correlation
from ._probes import LayerCapture, as_batch_function, resolve_layers
from ._sensitivity import diffeo_sensitivity, layerwise_sensitivity, noise_sensitivity, relative_stability
from ._separation import class_separation, layerwise_class_separation, separation_scores
from ._shift_invariance import (
    dtcwpt_gamma,
    gamma_q,
    maxpool_modulus_error,
    mean_flip_rate,
    shift_images,
    shift_sensitivity,
)

__all__ = [
    "LayerCapture", "as_batch_function", "class_separation", "diffeo_sensitivity", "dtcwpt_gamma", "gamma_q",
    "layerwise_class_separation", "layerwise_sensitivity", "matrix_cosine_similarity", "maxpool_modulus_error",
    "mean_flip_rate", "nfa_correlation", "noise_sensitivity", "pearson_matrix_correlation", "relative_stability",
    "resolve_layers", "separation_scores", "shift_images", "shift_sensitivity",
]
