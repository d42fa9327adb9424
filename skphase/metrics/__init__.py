"""Measurements on representations: stability, invariance, separation, feature ansatz."""

__all__ = []
from ._sensitivity import diffeo_sensitivity, layerwise_sensitivity, noise_sensitivity, relative_stability  # noqa: E402
__all__ += ["diffeo_sensitivity", "layerwise_sensitivity", "noise_sensitivity", "relative_stability"]
