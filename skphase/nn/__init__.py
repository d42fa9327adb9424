"""torch modules and functional ops (no sklearn)."""

__all__ = []
from ._diffeo import RandomDiffeomorphism, deform, matched_noise, random_deform, sample_displacement, temperature_from_displacement, temperature_range  # noqa: E402
__all__ += ["RandomDiffeomorphism", "deform", "matched_noise", "random_deform", "sample_displacement", "temperature_from_displacement", "temperature_range"]
from ._dtcwpt import DTCWPT2d, IDTCWPT2d, dtcwpt2d, dtcwpt_pool, idtcwpt2d  # noqa: E402
__all__ += ["DTCWPT2d", "IDTCWPT2d", "dtcwpt2d", "dtcwpt_pool", "idtcwpt2d"]
