"""scikit-learn estimators wrapping the torch layers (one estimator per private module)."""

from ._convrfm import ConvRFM, ConvRFMRegressor
from ._dtcwpt import DTCWPTFeatures
from ._paper_configs import PAPER_CONFIGS, paper_config
from ._phase_collapse import PhaseCollapse, ScatteringPhaseCollapse
from ._scattering import ScatteringTransform

__all__ = [
    "PAPER_CONFIGS",
    "ConvRFM",
    "ConvRFMRegressor",
    "DTCWPTFeatures",
    "PhaseCollapse",
    "ScatteringPhaseCollapse",
    "ScatteringTransform",
    "paper_config",
]
