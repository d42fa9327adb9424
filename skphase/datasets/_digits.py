"""scikit-learn's bundled digits, shaped as images."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_digits

__all__ = ["load_digits_images"]


def load_digits_images() -> tuple[np.ndarray, np.ndarray]:
    """The 1,797 8x8 handwritten digits bundled with scikit-learn, as images in [0, 1].

    Returns
    -------
    X : ndarray of shape (1797, 1, 8, 8), float32
        The digits as images in [0, 1] (scikit-learn's pixel values over 16).
    y : ndarray of shape (1797,), int64
        The digits 0-9.

    See Also
    --------
    load_mnist : the 28 x 28 MNIST digits (local files).

    Examples
    --------
    >>> from skphase.datasets import load_digits_images
    >>> X, y = load_digits_images()
    >>> X.shape
    (1797, 1, 8, 8)
    """
    digits = load_digits()
    X = (digits.images.astype(np.float32) / 16.0)[:, None]
    return X, digits.target.astype(np.int64)
