"""scikit-learn estimators wrapping the torch layers."""

__all__ = []
