"""Measurements on representations: stability, invariance, separation, feature ansatz."""

from ._probes import LayerCapture, as_batch_function, resolve_layers

__all__ = ["LayerCapture", "as_batch_function", "resolve_layers"]
from ._sensitivity import diffeo_sensitivity, layerwise_sensitivity, noise_sensitivity, relative_stability  # noqa: E402
__all__ += ["diffeo_sensitivity", "layerwise_sensitivity", "noise_sensitivity", "relative_stability"]
from ._separation import class_separation, layerwise_class_separation, separation_scores  # noqa: E402
__all__ += ["class_separation", "layerwise_class_separation", "separation_scores"]
from ._shift_invariance import dtcwpt_gamma, gamma_q, maxpool_modulus_error, mean_flip_rate, shift_images, shift_sensitivity  # noqa: E402
__all__ += ["dtcwpt_gamma", "gamma_q", "maxpool_modulus_error", "mean_flip_rate", "shift_images", "shift_sensitivity"]
from ._feature_ansatz import nfa_correlation, pearson_matrix_correlation  # noqa: E402
__all__ += ["nfa_correlation", "pearson_matrix_correlation"]
