"""ScatteringTransform: kymatio's fixed 2-D scattering as a scikit-learn transformer."""

import numbers

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin, _fit_context
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted

from ..utils import map_batches, min_image_size_error, progress_bar, to_numpy
from ._base import ImageEstimatorMixin

__all__ = ["ScatteringTransform"]


class ScatteringTransform(ImageEstimatorMixin, ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Fixed 2-D scattering transform (kymatio's ``Scattering2D``): the "Scat" baseline.

    The filters are built in ``fit`` from the image size seen there, so
    ``clone``/``set_params``/``GridSearchCV`` over ``J`` or ``L`` give the
    right features.

    Parameters
    ----------
    J : int, default=2
        Number of octaves; the output is subsampled by ``2**J``.
    L : int, default=8
        Number of orientations.
    max_order : {1, 2}, default=2
    batch_size : int, default=256
        Images transformed at a time (bounds memory).
    image_shape : tuple of int or None, default=None
        ``(H, W)`` or ``(C, H, W)`` of one image when ``X`` is flat.
    device : str, default="auto"
    verbose : int, default=0

    Attributes
    ----------
    scattering_ : kymatio.torch.Scattering2D
        The transform, on ``device_``.
    image_shape_ : tuple of int
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Names of the columns of flat ``X`` when they are all strings.
    device_ : torch.device
    output_shape_ : tuple of int
        ``(C, K, H / 2**J, W / 2**J)`` per image, ``K`` scattering channels per input channel.

    Examples
    --------
    >>> from skphase import ScatteringTransform
    >>> from skphase.datasets import load_digits_images
    >>> X, _ = load_digits_images()
    >>> ScatteringTransform(J=1, L=4, device="cpu").fit_transform(X[:10]).shape
    (10, 80)
    """

    # kymatio's module does not pickle; it is rebuilt from the fitted shape on load.
    _transient_attributes = ("scattering_",)

    _parameter_constraints = {
        "J": [Interval(numbers.Integral, 1, None, closed="left")],
        "L": [Interval(numbers.Integral, 1, None, closed="left")],
        "max_order": [Interval(numbers.Integral, 1, 2, closed="both")],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "image_shape": ["array-like", None],
        "device": [str, torch.device],
        "verbose": ["verbose"],
    }

    def __init__(self, *, J=2, L=8, max_order=2, batch_size=256, image_shape=None, device="auto", verbose=0):
        self.J = J
        self.L = L
        self.max_order = max_order
        self.batch_size = batch_size
        self.image_shape = image_shape
        self.device = device
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Build the filters for the size of the images in ``X``.

        Parameters
        ----------
        X : array-like or torch.Tensor
            ``(n, C, H, W)``, ``(n, H, W)`` or flat ``(n, d)``.
        y : ignored

        Returns
        -------
        self
        """
        images = self._validate_images(X, reset=True)
        height, width = images.shape[2:]
        if min(height, width) < 2**self.J:
            raise min_image_size_error((height, width), (2**self.J, 2**self.J), f"J={self.J} octaves")
        self._resolve_device()
        self._build_scattering()
        probe = self.scattering_(images[:1].to(self.device_))
        self.output_shape_ = tuple(probe.shape[1:])
        self._n_features_out = int(np.prod(self.output_shape_))
        return self

    def _build_scattering(self):
        from kymatio.torch import Scattering2D

        self.scattering_ = Scattering2D(
            J=self.J, shape=self.image_shape_[1:], L=self.L, max_order=self.max_order
        ).to(self.device_)

    def __setstate__(self, state):
        super().__setstate__(state)
        if hasattr(self, "image_shape_"):
            self._build_scattering()

    def transform(self, X):
        """Scattering coefficients, flattened.

        Returns
        -------
        ndarray of shape (n, C * K * H' * W'), float32
        """
        check_is_fitted(self)
        images = self._validate_images(X, reset=False)
        self.scattering_.to(self.device_)
        out = map_batches(lambda b: self.scattering_(b).flatten(1), images, batch_size=self.batch_size,
                          device=self.device_, progress=progress_bar(self.verbose, "scattering"))
        return to_numpy(out)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = True
        tags.input_tags.allow_nan = False
        tags.transformer_tags.preserves_dtype = ["float32"]  # computations run in float32
        return tags
