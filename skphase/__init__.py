"""skphase: scikit-learn estimators on torch for studying how deep image classifiers
remove spatial variability and separate classes."""

from .estimators import PhaseCollapse, ScatteringPhaseCollapse, ScatteringTransform

__version__ = "0.1.0.dev0"

__all__ = ["PhaseCollapse", "ScatteringPhaseCollapse", "ScatteringTransform"]
