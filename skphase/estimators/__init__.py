"""scikit-learn estimators wrapping the torch layers."""

from ._phase_collapse import PhaseCollapse, ScatteringPhaseCollapse
from ._scattering import ScatteringTransform

__all__ = ["PhaseCollapse", "ScatteringPhaseCollapse", "ScatteringTransform"]
from ._dtcwpt import DTCWPTFeatures  # noqa: E402
__all__ += ["DTCWPTFeatures"]
from ._convrfm import ConvRFM  # noqa: E402
__all__ += ["ConvRFM"]
