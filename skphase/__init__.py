"""skphase: scikit-learn estimators on torch for studying how deep image classifiers
remove spatial variability and separate classes.

Estimators live at the top level; measurements in :mod:`skphase.metrics`, data in
:mod:`skphase.datasets`, torch building blocks in :mod:`skphase.nn` and fixed filter
banks in :mod:`skphase.filters`.
"""

from . import estimators
from .estimators import (PAPER_CONFIGS, ConvRFM, ConvRFMRegressor, DTCWPTFeatures, PhaseCollapse,
                         ScatteringPhaseCollapse, ScatteringTransform, paper_config)

__version__ = "0.1.0.dev0"

__all__ = list(estimators.__all__)
