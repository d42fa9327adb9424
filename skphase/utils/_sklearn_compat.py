"""The one place where skphase imports scikit-learn's private API.

scikit-learn's estimator machinery -- parameter constraints (``Interval``, ``StrOptions``),
``_fit_context`` (which validates parameters once per ``fit`` and honours
``skip_parameter_validation``), sample-weight validation -- lives in private modules that may
move between releases. Every estimator imports these names from here, so that a release that
moves one is answered in this module alone. The supported range is ``scikit-learn >= 1.6``
(the first release with ``validate_data`` and ``__sklearn_tags__``); the test suite checks the
installed release against it.
"""

import re

import numpy as np
import sklearn
from sklearn.base import _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_sample_weight, validate_data

#: Oldest scikit-learn release whose private API matches the names re-exported here.
MIN_SKLEARN_VERSION = (1, 6)


def sklearn_version():
    """The installed scikit-learn release as a tuple of ints, e.g. ``(1, 9)``.

    Examples
    --------
    >>> sklearn_version() >= MIN_SKLEARN_VERSION
    True
    """
    major, minor = re.match(r"(\d+)\.(\d+)", sklearn.__version__).groups()
    return int(major), int(minor)


def _check_supported():
    if sklearn_version() < MIN_SKLEARN_VERSION:
        raise ImportError(
            f"skphase needs scikit-learn >= {'.'.join(map(str, MIN_SKLEARN_VERSION))}, found "
            f"{sklearn.__version__}; upgrade it with `pip install -U scikit-learn`."
        )


_check_supported()


def check_sample_weight(sample_weight, n_samples):
    """Validate ``sample_weight`` for ``n_samples`` images: None becomes ones; length, sign and finiteness checked.

    Parameters
    ----------
    sample_weight : None, float or array-like of shape (n_samples,)
    n_samples : int

    Returns
    -------
    ndarray of shape (n_samples,), float64

    Examples
    --------
    >>> check_sample_weight(None, 3)
    array([1., 1., 1.])
    """
    # An empty 2-D stand-in for the images: scikit-learn only reads its length, and images need not be 2-D.
    return _check_sample_weight(sample_weight, np.empty((n_samples, 0)), dtype=np.float64, ensure_non_negative=True)


__all__ = ["Interval", "MIN_SKLEARN_VERSION", "StrOptions", "_fit_context", "check_sample_weight",
           "sklearn_version", "validate_data"]
