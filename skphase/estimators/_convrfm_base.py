"""What the ConvRFM estimators share: parameters, validation, the split, model selection, outputs, filters.

:class:`_BaseConvRFM` turns the estimator's parameters into a
:class:`~skphase.nn.PatchKernel`, runs the recursive feature machine of
:func:`skphase.nn.fit_rfm` on the training split, keeps the iteration with the best
validation score and refits its ridge regression on every training image. The classifier
and the regressor (:mod:`skphase.estimators._convrfm`) differ only in how targets are
encoded and how the validation split scores an iteration.
"""

from __future__ import annotations

import numbers
import time

import numpy as np
import torch
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.model_selection import ShuffleSplit, StratifiedShuffleSplit
from sklearn.utils.validation import check_is_fitted

from ..nn import (
    PATCH_KERNELS,
    PatchKernel,
    fit_rfm,
    kernel_ridge,
    median_patch_distance,
    patch_grid_shape,
    psd_sqrt,
    transform_patches,
)
from ..utils import make_generator
from ..utils._docs import fill_docstring
from ..utils._sklearn_compat import Interval, StrOptions, _fit_context
from ..utils._torch import map_batches, seed_from_random_state, to_numpy
from ._base import ImageEstimatorMixin
from ._weights import fit_sample_weights

__all__ = []

# Shared by the docstrings of both estimators (filled in by ``_shared_docs``).
_METHOD_DOC = """\
    Alternates kernel ridge regression with a convolutional patch kernel
    ``K(x, z) = (1/P) sum_p k(T x_p, T z_p)`` and the update of the patch
    transform ``T`` from the patch AGOP ``G`` of the fitted predictor
    (Radhakrishnan et al., "Mechanism of feature learning in convolutional
    neural networks"): iteration 0 is the fixed kernel (``T = I``), each
    following iteration sets ``T = G^agop_power`` (normalised), so that the
    Mahalanobis matrix ``M = T^T T`` is ``G^(2 agop_power)`` -- proportional to
    ``G`` for the default ``1/2``. The iteration with the best {score} on a
    held-out validation split of the training data is kept and the ridge
    regression is refitted on all the training data with its ``T``. The ridge
    regression has no intercept (as kernel ridge regression in scikit-learn).

    Sample weights ``w`` (``fit(..., sample_weight=w)``) make every step the
    weighted one: the ridge regression minimises
    ``sum_i w_i ||y_i - f(x_i)||^2 + lambda ||f||^2``, the AGOP is the
    ``w``-weighted mean over images and the validation {score} is weighted, so
    that an integer weight equals repeating the image (with a fixed
    ``bandwidth`` and no validation split, which both depend on the images
    drawn). Images of weight 0 are left out of the fit."""

_PARAMETERS_DOC = """\
    kernel : {"laplace", "gaussian", "ntk"}, default="laplace"
        Patch kernel: Laplace ``exp(-||a - b|| / L)`` (the RFM standard),
        Gaussian ``exp(-||a - b||^2 / (2 L^2))``, or the NTK of a ReLU conv
        net without pooling (``ntk_depth`` layers; AGOP by autograd, slow).
    bandwidth : float or "auto", default="auto"
        ``L`` of the Laplace and Gaussian kernels. ``"auto"`` takes 5 times the median
        distance between patches at one position of two training images
        (:func:`skphase.nn.median_patch_distance`, 4000 pairs drawn with a fixed seed, so
        that it depends on the training images of non-zero weight only, not on the
        weights), so that the kernel follows the scale of the data: images in
        0-255 and in 0-1 give the same model. The value used is ``bandwidth_``.
    patch_size : int or pair of int, default=3
        Height and width ``(q_h, q_w)`` of a patch, as the kernel size of
        :class:`torch.nn.Conv2d`: the size of the learned filters.
    stride : int or pair of int, default=1
        Step between two neighbouring patch positions.
    padding : int or pair of int, default=0
        Rows and columns of zeros added on each side of the images.
    ntk_depth : int, default=3
        Number of ReLU conv layers of the NTK; ignored by the other kernels.
    ntk_padding : {"same", "valid"}, default="same"
        The NTK's deeper ``patch_size`` conv layers pad with zeros ('same'),
        or shrink the grid by ``patch_size - 1`` each ('valid', the network of
        the ConvRFM paper's experiments); ignored by the other kernels.
    n_iter : int, default=3
        Number of AGOP updates; ``n_iter + 1`` models are fitted (the first
        with the fixed kernel) and no AGOP is computed after the last.
    alpha : float, default=1e-3
        Ridge regularisation of the kernel matrix scaled by its maximum.
    agop_power : float, default=0.5
        ``T = G^agop_power``.
    agop_threshold : float or None, default=None
        Eigenvalues of ``T`` below ``agop_threshold`` times the largest are
        set to 0 (keeps only the dominant patch directions).
    agop_max_samples : int or None, default=1000
        Evaluate the AGOP on at most this many training images (a random
        subset); the predictor keeps all of them as centres. None uses all.
        The AGOP is an average over images, so a subset estimates it well
        (the authors evaluate it on 20 images) and the cost of that step
        then grows like ``n`` instead of ``n^2``: at ``n = 4000`` it is about
        three times cheaper than on all images.
    validation_fraction : float, default=0.2
        Fraction of the training data held out to choose the iteration. 0
        keeps the last iteration and uses every sample for every iteration.
    n_filters : int or None, default=None
        Filters applied by ``transform``: None uses the rows of
        ``M^(1/2)`` (``C q^2`` filters); an int samples that many filters
        ``W = Z M^(1/2)``, ``Z`` standard normal.
    dtype : {"float32", "float64"}, default="float32"
        Floating type of the kernel computations and of ``centers_`` and ``dual_coef_``.
    batch_size : int, default=256
        Rows and columns of a kernel block; bounds memory.
    image_shape : tuple of int or None, default=None
        ``(H, W)`` or ``(C, H, W)`` of one image when ``X`` is flat.
    device : str or torch.device, default="auto"
        ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``: where the kernels run (see
        :func:`skphase.utils.resolve_device`)."""

# The last parameters of both estimators, after those of the classifier alone.
_LAST_PARAMETERS_DOC = """\
    random_state : int, RandomState or None, default=None
        Seeds the validation split, the AGOP subset and sampled filters.
    verbose : int, default=0
        Print the validation score of each iteration (when there is a validation split)."""

_ATTRIBUTES_DOC = """\
    bandwidth_ : float or None
        Bandwidth of the Laplace or Gaussian kernel (the parameter, or the value "auto" chose);
        None for the NTK.
    M_ : ndarray of shape (d, d)
        Mahalanobis matrix of the selected iteration, ``d = C q_h q_w``.
    transform_matrix_ : ndarray of shape (d, d)
        ``T`` of the selected iteration (``M_ = T^T T``).
    filters_ : ndarray of shape (n_filters, C, q_h, q_w)
        Learned convolution filters used by ``transform``.
    validation_scores_ : ndarray of shape (n_iter + 1,)
        Validation {score} of each iteration (NaN without a validation split).
    best_iteration_ : int
        Index of the selected iteration (0 = fixed kernel).
    agop_eigenvalues_ : list of ndarray of shape (d,)
        Eigenvalues of each computed patch AGOP (largest last).
    centers_ : torch.Tensor of shape (n_centers, C, H, W)
        The training images of non-zero weight (all of them without ``sample_weight``), in
        ``dtype`` on ``device_``: the centres of the kernel predictor. A torch tensor, so that
        predictions read it where the kernel runs, without a copy.
    dual_coef_ : torch.Tensor of shape (n_centers, n_outputs)
        Coefficients of the predictor, one row per centre, in ``dtype`` on ``device_``.
    n_iter_ : int
        Number of AGOP updates done.
    output_shape_ : tuple of int
        ``(n_filters, H_out, W_out)``: shape of one transformed image.
    image_shape_, n_features_in_, feature_names_in_, device_
        As for every skphase estimator."""

def _shared_docs(score):
    """Fill the shared sections of a ConvRFM estimator's docstring; ``score`` names its validation score."""

    def decorate(cls):
        fill_docstring(cls, method=_METHOD_DOC.replace("{score}", score), parameters=_PARAMETERS_DOC,
                       last_parameters=_LAST_PARAMETERS_DOC, attributes=_ATTRIBUTES_DOC.replace("{score}", score))
        return cls

    return decorate


class _BaseConvRFM(ImageEstimatorMixin, ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Fit, model selection, staged outputs and filters shared by the ConvRFM estimators.

    A subclass encodes the targets (``_encode_targets``), computes the sample
    weights (``_sample_weights``), scores an iteration's outputs on the
    validation split (``_validation_score``) and turns kernel ridge outputs
    into predictions.
    """

    _parameter_constraints = {
        "kernel": [StrOptions(set(PATCH_KERNELS))],
        "bandwidth": [Interval(numbers.Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "patch_size": [Interval(numbers.Integral, 1, None, closed="left"), tuple],
        "stride": [Interval(numbers.Integral, 1, None, closed="left"), tuple],
        "padding": [Interval(numbers.Integral, 0, None, closed="left"), tuple],
        "ntk_depth": [Interval(numbers.Integral, 1, None, closed="left")],
        "ntk_padding": [StrOptions({"same", "valid"})],
        "n_iter": [Interval(numbers.Integral, 0, None, closed="left")],
        "alpha": [Interval(numbers.Real, 0, None, closed="left")],
        "agop_power": [Interval(numbers.Real, 0, None, closed="neither")],
        "agop_threshold": [Interval(numbers.Real, 0, 1, closed="left"), None],
        "agop_max_samples": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "validation_fraction": [Interval(numbers.Real, 0, 1, closed="left")],
        "n_filters": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "dtype": [StrOptions({"float32", "float64"})],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "image_shape": ["array-like", None],
        "device": [str, torch.device],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        *,
        kernel: str = "laplace",
        bandwidth: float | str = "auto",
        patch_size: int | tuple[int, int] = 3,
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        ntk_depth: int = 3,
        ntk_padding: str = "same",
        n_iter: int = 3,
        alpha: float = 1e-3,
        agop_power: float = 0.5,
        agop_threshold: float | None = None,
        agop_max_samples: int | None = 1000,
        validation_fraction: float = 0.2,
        n_filters: int | None = None,
        dtype: str = "float32",
        batch_size: int = 256,
        image_shape: tuple[int, ...] | None = None,
        device: str | torch.device = "auto",
        random_state: int | np.random.RandomState | None = None,
        verbose: int = 0,
    ):
        self.kernel = kernel
        self.bandwidth = bandwidth
        self.patch_size = patch_size
        self.stride = stride
        self.padding = padding
        self.ntk_depth = ntk_depth
        self.ntk_padding = ntk_padding
        self.n_iter = n_iter
        self.alpha = alpha
        self.agop_power = agop_power
        self.agop_threshold = agop_threshold
        self.agop_max_samples = agop_max_samples
        self.validation_fraction = validation_fraction
        self.n_filters = n_filters
        self.dtype = dtype
        self.batch_size = batch_size
        self.image_shape = image_shape
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------ subclass hooks
    def _encode_targets(self, y):
        """Return ``(Y, truth, strata)``: the ridge targets ``(n, n_outputs)`` as a numpy array, the
        validation truth for ``_validation_score`` and the labels to stratify the split by (or None)."""
        raise NotImplementedError

    def _sample_weights(self, sample_weight, y, n_samples):
        """Validated per-image weights (numpy), or None when every image weighs 1."""
        return fit_sample_weights(sample_weight, n_samples)

    def _validation_score(self, outputs, truth, sample_weight):
        """Score (higher is better) of the ridge ``outputs`` (numpy, ``(n_val, n_outputs)``) against
        ``truth``, weighted by ``sample_weight`` (or None)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ helpers
    def _patches(self, images):
        return self._patch_kernel.patches(images.to(self.device_, self._dtype))

    def _resolve_bandwidth(self, images):
        """The kernel's bandwidth: the parameter, or for "auto" 5x the median aligned-patch distance."""
        if self.kernel == "ntk":
            return None  # the NTK has no bandwidth
        if self.bandwidth != "auto":
            return float(self.bandwidth)
        # A fixed seed: the bandwidth is a statistic of the training images, not a random draw.
        distance = median_patch_distance(images, self.patch_size, stride=self.stride, padding=self.padding,
                                         generator=torch.Generator().manual_seed(0))
        if not distance > 0:
            raise ValueError("bandwidth='auto' needs images that differ: the median distance between their "
                             "patches is 0; pass a bandwidth.")
        return 5.0 * distance

    def _split(self, n_samples, strata, rng):
        """Train/validation indices, stratified by ``strata`` when given and possible; None for no split."""
        if self.validation_fraction == 0:
            return None
        n_val = int(np.ceil(self.validation_fraction * n_samples))
        seed = seed_from_random_state(rng)
        if n_val < 2 or n_val >= n_samples - 1:  # one held-out sample cannot rank the iterations
            return None
        splitter = ShuffleSplit(n_splits=1, test_size=n_val, random_state=seed)
        if strata is not None:
            counts = np.bincount(strata)
            counts = counts[counts > 0]  # classes left out with their weight-0 images
            if counts.min() >= 2 and n_val >= len(counts) and n_samples - n_val >= len(counts):
                splitter = StratifiedShuffleSplit(n_splits=1, test_size=n_val, random_state=seed)
        train, val = next(splitter.split(np.zeros(n_samples), strata))
        if strata is not None and len(np.unique(strata[train])) < 2:
            return None
        return train, val

    # --------------------------------------------------------------------- fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(
        self,
        X: ArrayLike | torch.utils.data.Dataset,
        y: ArrayLike,
        sample_weight: ArrayLike | None = None,
    ) -> _BaseConvRFM:
        """Fit the recursive feature machine on images ``X`` and targets ``y``.

        Parameters
        ----------
        X : array-like, torch.Tensor or torch.utils.data.Dataset
            ``(n, C, H, W)``, ``(n, H, W)`` or flat ``(n, d)`` images (any real
            dtype), or a map-style Dataset of images. The images of non-zero weight
            are copied once, into ``dtype``: that copy is ``centers_``.
        y : array-like of shape (n,) or (n, n_outputs)
            Class labels (classifier), or one or several real targets per image (regressor).
        sample_weight : array-like of shape (n,) or None, default=None
            Non-negative weight of each image in the ridge loss, the AGOP mean and the
            validation score, multiplied by the weights of ``class_weight`` (classifier);
            images of weight 0 are left out. Routed by ``set_fit_request(sample_weight=True)``
            in a pipeline.

        Returns
        -------
        self
            The fitted estimator.
        """
        name = type(self).__name__
        if y is None:
            raise ValueError(f"{name} requires y to be passed, but the target y is None.")
        self._dtype = torch.float32 if self.dtype == "float32" else torch.float64
        # One image has no gradient to learn from.
        source = self._validate_source(X, reset=True, min_samples=2, dtype=self._dtype)
        Y, truth, strata = self._encode_targets(y)
        if Y.shape[0] != source.n_samples:
            raise ValueError(f"y has {Y.shape[0]} targets for {source.n_samples} images; pass one per image.")
        weights = self._sample_weights(sample_weight, y, source.n_samples)
        source, Y, truth, strata, weights = self._drop_zero_weights(source, Y, truth, strata, weights)
        images = source.to_tensor()  # the only copy of X: the kernel machine keeps it as its centres
        self._resolve_device()
        grid = patch_grid_shape(images.shape[-2:], self.patch_size, stride=self.stride, padding=self.padding)
        rng = np.random.RandomState(seed_from_random_state(self.random_state))
        generator = make_generator(rng)
        Y = torch.as_tensor(Y).to(self.device_, self._dtype)
        self.bandwidth_ = self._resolve_bandwidth(images)
        self._patch_kernel = PatchKernel(self.kernel, self.bandwidth_, patch_size=self.patch_size, stride=self.stride,
                                         padding=self.padding, ntk_depth=self.ntk_depth, ntk_padding=self.ntk_padding,
                                         grid=grid, batch_size=self.batch_size)
        split = self._split(images.shape[0], strata, rng)
        result, best, coef = self._fit_iterations(images, Y, truth, weights, split, generator)
        self._stages = list(zip(result.transforms, result.dual_coefs))
        self.validation_scores_ = np.asarray(result.scores)
        self.agop_eigenvalues_ = [to_numpy(eigvals) for eigvals in result.agop_eigenvalues]
        self.best_iteration_ = best
        self.n_iter_ = len(result.transforms) - 1
        self.transform_matrix_ = to_numpy(result.transforms[best]).astype(np.float64)
        self.M_ = self.transform_matrix_.T @ self.transform_matrix_
        self.centers_ = images
        self.dual_coef_ = coef
        self.filters_ = self._make_filters(images.shape[1])
        self.output_shape_ = (self.filters_.shape[0], grid[0], grid[1])
        self._n_features_out = int(np.prod(self.output_shape_))
        return self

    def _drop_zero_weights(self, source, Y, truth, strata, weights):
        """The images of non-zero weight, with their targets, truth, strata and weights.

        They are dropped before the bandwidth, the split and the AGOP subset are drawn, so that a
        weight of 0 is the same as leaving the image out of ``X``.
        """
        if weights is None or weights.all():
            return source, Y, truth, strata, weights
        name = type(self).__name__
        kept = np.flatnonzero(weights)
        if len(kept) < 2:
            raise ValueError(f"{name} needs at least 2 images of non-zero weight; got {len(kept)}.")
        strata = None if strata is None else strata[kept]
        if strata is not None and len(np.unique(strata)) < 2:
            raise ValueError(f"{name} needs images of at least 2 classes with non-zero weight; the weights "
                             "leave one class.")
        return source.subset(kept), Y[kept], truth[kept], strata, weights[kept]

    def _fit_iterations(self, images, Y, truth, weights, split, generator):
        """Run the RFM iterations (on the training split, if any) and select one.

        Returns the :class:`~skphase.nn.RFMResult`, the index of the selected iteration
        (the last without a validation split) and its dual coefficients, refitted on every
        image when there is a validation split.
        """
        w = None if weights is None else torch.as_tensor(weights)
        rfm = dict(n_iter=self.n_iter, alpha=self.alpha, agop_power=self.agop_power,
                   agop_threshold=self.agop_threshold, agop_max_samples=self.agop_max_samples,
                   generator=generator, callback=self._reporter(split is not None) if self.verbose else None)
        if split is None:
            self._stage_rows = None
            result = fit_rfm(self._patch_kernel, self._patches(images), Y, sample_weight=w, **rfm)
            return result, len(result.transforms) - 1, result.dual_coefs[-1]
        train, val = split
        self._stage_rows = train  # the centres of the staged models, indices into centers_
        w_val = None if weights is None else weights[val]

        def score(outputs):
            return self._validation_score(to_numpy(outputs), truth[val], w_val)

        # Patches of the two splits are extracted from their images, not indexed out of the
        # patches of all images, which would hold every patch twice.
        rows = torch.as_tensor(train)
        result = fit_rfm(self._patch_kernel, self._patches(images[rows]), Y[rows.to(Y.device)],
                         sample_weight=None if w is None else w[rows],
                         validation=(self._patches(images[torch.as_tensor(val)]), score), **rfm)
        best = int(np.nanargmax(result.scores))
        # Refit the ridge regression with the chosen features on every training sample.
        A = transform_patches(self._patches(images), result.transforms[best])
        return result, best, kernel_ridge(self._patch_kernel.gram(A), Y, self.alpha, w)

    def _reporter(self, has_validation):
        """``callback`` of :func:`~skphase.nn.fit_rfm` printing each iteration's score and the time spent."""
        start = time.perf_counter()

        def report(iteration, score):
            text = f"validation score {score:.4f}" if has_validation else "no validation split"
            print(f"{type(self).__name__} iteration {iteration}: {text} ({time.perf_counter() - start:.0f} s)",
                  flush=True)

        return report

    def _make_filters(self, n_channels):
        root = psd_sqrt(torch.as_tensor(self.M_))
        if self.n_filters is not None:
            generator = make_generator(seed_from_random_state(self.random_state))
            Z = torch.randn(self.n_filters, root.shape[0], generator=generator, dtype=torch.float64)
            root = Z @ root
        qh, qw = self._patch_kernel.patch_size
        return to_numpy(root).reshape(-1, n_channels, qh, qw).astype(np.float32)

    # ------------------------------------------------------------- prediction
    def _ridge_outputs(self, X, T, coef, centers):
        """Kernel ridge outputs ``(n, n_outputs)`` (float64 numpy) of the model ``(T, coef, centers)``."""
        source = self._validate_source(X, reset=False, dtype=self._dtype)
        B = transform_patches(self._patches(centers), T)

        def outputs(batch):  # patches of a few images at a time: those of a large test set would not fit
            return self._patch_kernel.gram(transform_patches(self._patches(batch), T), B) @ coef

        out = map_batches(outputs, source, batch_size=self.batch_size, device=self.device_)
        return out.astype(np.float64, copy=False)

    def _fitted_outputs(self, X):
        check_is_fitted(self)
        T = torch.as_tensor(self.transform_matrix_).to(self.device_, self._dtype)  # exact: T was in dtype
        return self._ridge_outputs(X, T, self.dual_coef_, self.centers_)

    def _staged_outputs(self, X):
        """Ridge outputs of each iteration's model (fitted on the training split), in order."""
        check_is_fitted(self)
        rows = self._stage_rows
        centers = self.centers_ if rows is None else self.centers_[torch.as_tensor(rows).to(self.centers_.device)]
        for T, coef in self._stages:
            yield self._ridge_outputs(X, T, coef, centers)

    def transform(self, X: ArrayLike | torch.utils.data.Dataset) -> np.ndarray:
        """Compute the feature maps of the learned filters: ``conv2d(X, filters_)``, flattened.

        Parameters
        ----------
        X : array-like, torch.Tensor or torch.utils.data.Dataset
            Images of the shape seen in ``fit``, read ``batch_size`` at a time as float32.

        Returns
        -------
        ndarray of shape (n, n_filters * H_out * W_out), float32
            The maps of every image, in the order of ``output_shape_``.
        """
        check_is_fitted(self)
        source = self._validate_source(X, reset=False)
        weight = torch.as_tensor(self.filters_, device=self.device_)
        kernel = self._patch_kernel  # the geometry of the filters, as fitted

        def feature_maps(batch):
            maps = torch.nn.functional.conv2d(batch, weight, stride=kernel.stride, padding=kernel.padding)
            return maps.flatten(1)

        return map_batches(feature_maps, source, batch_size=self.batch_size, device=self.device_)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags
