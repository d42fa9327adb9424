"""scikit-learn estimators wrapping the torch layers."""

__all__ = []
from ._dtcwpt import DTCWPTFeatures  # noqa: E402
__all__ += ["DTCWPTFeatures"]
