"""scikit-learn estimators wrapping the torch layers (one estimator per private module)."""

from ._convrfm import ConvRFM, ConvRFMRegressor
from ._dtcwpt import DTCWPTFeatures
from ._phase_collapse import PhaseCollapse, ScatteringPhaseCollapse
from ._scattering import ScatteringTransform

__all__ = [
    "ConvRFM",
    "ConvRFMRegressor",
    "DTCWPTFeatures",
    "PhaseCollapse",
    "ScatteringPhaseCollapse",
    "ScatteringTransform",
]
