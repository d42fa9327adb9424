"""ScatteringTransform: kymatio's fixed 2-D scattering as a scikit-learn transformer."""

from __future__ import annotations

import numbers

import numpy as np
import torch
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from ..utils._images import min_image_size_error
from ..utils._kymatio import import_kymatio
from ..utils._progress import progress_bar
from ..utils._sklearn_compat import Interval, StrOptions, _fit_context
from ..utils._torch import map_batches
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
    padding : {"zero", "error"}, default="zero"
        Images smaller than ``2**J`` pixels on a side (which kymatio cannot transform) are padded
        with zeros at the bottom/right to ``2**J`` ("zero") or refused ("error"). Larger images
        are transformed as they are.
    batch_size : int, default=256
        Images read and transformed at a time: memory beyond the output grows
        with ``batch_size``, not with the number of images.
    image_shape : tuple of int or None, default=None
        ``(H, W)`` or ``(C, H, W)`` of one image when ``X`` is flat.
    device : str, default="auto"
        ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``: where the transform runs (see
        :func:`skphase.utils.resolve_device`).
    verbose : int, default=0
        Show a progress bar in ``transform``.

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
        ``(C, K, H' / 2**J, W' / 2**J)`` per image, ``K`` scattering channels per input channel.
    padded_shape_ : tuple of int
        ``(H', W')``: the image size after zero padding (the input size when no padding is needed).

    See Also
    --------
    ScatteringPhaseCollapse : the learned scattering network.
    DTCWPTFeatures : the dual-tree complex wavelet packet transform.

    Notes
    -----
    There is no ``precision`` (bfloat16/float16 autocast) parameter: kymatio computes the
    scattering with FFTs and complex products, which autocast does not lower and torch does not
    offer in bfloat16, so an autocast region leaves the output and its cost unchanged (see
    benchmarks/bench_precision.py for figures).

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
        "padding": [StrOptions({"zero", "error"})],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "image_shape": ["array-like", None],
        "device": [str, torch.device],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        *,
        J: int = 2,
        L: int = 8,
        max_order: int = 2,
        padding: str = "zero",
        batch_size: int = 256,
        image_shape: tuple[int, ...] | None = None,
        device: str | torch.device = "auto",
        verbose: int = 0,
    ):
        self.J = J
        self.L = L
        self.max_order = max_order
        self.padding = padding
        self.batch_size = batch_size
        self.image_shape = image_shape
        self.device = device
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: ArrayLike | torch.utils.data.Dataset, y: ArrayLike | None = None) -> ScatteringTransform:
        """Build the filters for the size of the images in ``X``.

        Parameters
        ----------
        X : array-like, torch.Tensor or torch Dataset
            ``(n, C, H, W)``, ``(n, H, W)`` or flat ``(n, d)`` images (any real
            dtype, memmaps included), or a map-style Dataset of images or
            ``(image, label)`` pairs. Only validated, never converted whole.
        y : None
            Ignored; present for scikit-learn's API.

        Returns
        -------
        self
            The fitted transformer.
        """
        source = self._validate_source(X, reset=True)
        height, width = self.image_shape_[1:]
        side = 2**self.J
        if min(height, width) < side and self.padding == "error":
            raise min_image_size_error((height, width), (side, side), f"J={self.J} octaves (padding='error')")
        self.padded_shape_ = (max(height, side), max(width, side))
        self._resolve_device()
        self._build_scattering()
        probe = self.scattering_(torch.zeros((1,) + self.image_shape_[:1] + self.padded_shape_, device=self.device_))
        self.output_shape_ = tuple(probe.shape[1:])
        self._n_features_out = int(np.prod(self.output_shape_))
        return self

    def _build_scattering(self):
        Scattering2D = import_kymatio("kymatio.torch").Scattering2D

        self.scattering_ = Scattering2D(
            J=self.J, shape=self.padded_shape_, L=self.L, max_order=self.max_order
        ).to(self.device_)

    def __setstate__(self, state):
        super().__setstate__(state)
        if hasattr(self, "image_shape_"):
            self._build_scattering()

    def _scatter(self, batch):
        """Flattened scattering coefficients of one batch on ``device_``."""
        height, width = batch.shape[-2:]
        pad_h, pad_w = self.padded_shape_[0] - height, self.padded_shape_[1] - width
        if pad_h or pad_w:
            batch = torch.nn.functional.pad(batch, (0, pad_w, 0, pad_h))
        return self.scattering_(batch).flatten(1)

    def transform(self, X: ArrayLike | torch.utils.data.Dataset) -> np.ndarray:
        """Compute the scattering coefficients, flattened.

        Parameters
        ----------
        X : array-like, torch.Tensor or torch Dataset
            Images of the shape seen in ``fit`` (see :meth:`fit`), read
            ``batch_size`` at a time as float32.

        Returns
        -------
        ndarray of shape (n, C * K * H' * W'), float32
            The coefficients of every image, in the order of ``output_shape_``.

        Raises
        ------
        ValueError
            When the coefficients overflow float32 (NaN or infinity), e.g. for
            inputs of 1e20 and more.
        """
        check_is_fitted(self)
        source = self._validate_source(X, reset=False)
        self.scattering_.to(self.device_)
        return map_batches(self._scatter, source, batch_size=self.batch_size, device=self.device_,
                           progress=progress_bar(self.verbose, "scattering"), check_finite=type(self).__name__)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = True
        tags.input_tags.allow_nan = False
        tags.transformer_tags.preserves_dtype = ["float32"]  # computations run in float32
        return tags
