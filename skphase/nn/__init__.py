"""torch modules and functional ops (no sklearn)."""

__all__ = []
from ._diffeo import RandomDiffeomorphism, deform, matched_noise, random_deform, sample_displacement, temperature_from_displacement, temperature_range  # noqa: E402
__all__ += ["RandomDiffeomorphism", "deform", "matched_noise", "random_deform", "sample_displacement", "temperature_from_displacement", "temperature_range"]
