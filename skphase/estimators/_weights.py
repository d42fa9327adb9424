"""The sample weights of a fit: ``sample_weight`` times the weights of ``class_weight``, validated once."""

from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.validation import column_or_1d

from ..utils._sklearn_compat import check_sample_weight

__all__ = ["fit_sample_weights"]


def fit_sample_weights(sample_weight, n_samples, *, y=None, class_weight=None):
    """Per-sample weights of a fit from ``sample_weight`` and ``class_weight``; None when both are None.

    Parameters
    ----------
    sample_weight : array-like of shape (n_samples,), number or None
        As passed to ``fit``; None weighs every sample 1.
    n_samples : int
        Number of samples of the fit.
    y : array-like of shape (n_samples,) or None
        Class labels; needed with ``class_weight``.
    class_weight : dict, "balanced" or None
        Weight of each class (``"balanced"``: ``n_samples / (n_classes * count)``), multiplied
        with ``sample_weight``.

    Returns
    -------
    ndarray of shape (n_samples,) or None
        Float64 weights; a new array or the validated ``sample_weight`` (never to be modified in place).

    Raises
    ------
    ValueError
        For weights of the wrong length or shape, NaN or infinite, negative, or all zero
        (after ``class_weight`` too).
    """
    if sample_weight is None and class_weight is None:
        return None
    weights = check_sample_weight(sample_weight, n_samples)
    if class_weight is not None:
        weights = weights * compute_sample_weight(class_weight, column_or_1d(y))
    if not weights.sum() > 0:  # class_weight zeroed every remaining sample
        raise ValueError("The sample weights times class_weight must contain at least one non-zero number.")
    return weights
