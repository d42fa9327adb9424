"""scikit-learn estimators wrapping the torch layers (one estimator per private module)."""

from ._convrfm import ConvRFM
from ._dtcwpt import DTCWPTFeatures
from ._phase_collapse import PhaseCollapse, ScatteringPhaseCollapse
from ._scattering import ScatteringTransform

__all__ = ["ConvRFM", "DTCWPTFeatures", "PhaseCollapse", "ScatteringPhaseCollapse", "ScatteringTransform"]
