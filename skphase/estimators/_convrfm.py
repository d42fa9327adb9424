"""ConvRFM: convolutional recursive feature machines, learning patch features through the patch AGOP.

:class:`ConvRFM` (classifier) and :class:`ConvRFMRegressor` share one
implementation, :class:`_BaseConvRFM`; they differ only in how targets are
encoded and how the validation split scores an iteration.
"""

import numbers
import time

import numpy as np
import torch
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    ClassNamePrefixFeaturesOutMixin,
    RegressorMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.metrics import r2_score
from sklearn.model_selection import ShuffleSplit, StratifiedShuffleSplit
from sklearn.preprocessing import LabelEncoder
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_is_fitted, column_or_1d

from ..nn._agop import patch_agop_from_patches
from ..nn._patch_kernels import (
    PATCH_KERNELS,
    _pair,
    extract_patches,
    median_patch_distance,
    patch_grid_shape,
    patch_kernel_from_patches,
    psd_power,
    psd_sqrt,
    transform_patches,
)
from ..utils import make_generator, map_batches, seed_from_random_state, to_numpy
from ._base import ImageEstimatorMixin

__all__ = ["ConvRFM", "ConvRFMRegressor"]

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
    regression has no intercept (as kernel ridge regression in scikit-learn)."""

_PARAMETERS_DOC = """\
    kernel : {"laplace", "gaussian", "ntk"}, default="laplace"
        Patch kernel: Laplace ``exp(-||a - b|| / L)`` (the RFM standard),
        Gaussian ``exp(-||a - b||^2 / (2 L^2))``, or the NTK of a ReLU conv
        net without pooling (``ntk_depth`` layers; AGOP by autograd, slow).
    bandwidth : float or "auto", default="auto"
        ``L`` of the Laplace and Gaussian kernels. ``"auto"`` takes 5 times the median
        distance between patches at one position of two training images
        (:func:`skphase.nn.median_patch_distance`, 4000 pairs drawn with a fixed seed, so
        that it depends on the training images only), so that the kernel follows the scale of the data: images in
        0-255 and in 0-1 give the same model. The value used is ``bandwidth_``.
    patch_size, stride, padding : int or pair of int, default=3, 1, 0
        Patch geometry, as in :class:`torch.nn.Conv2d`.
    ntk_depth : int, default=3
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
    batch_size : int, default=256
        Rows and columns of a kernel block; bounds memory.
    image_shape : tuple of int or None, default=None
        ``(H, W)`` or ``(C, H, W)`` of one image when ``X`` is flat.
    device : str, default="auto"
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
    agop_eigenvalues_ : list of ndarray
        Eigenvalues of each computed patch AGOP (largest last).
    centers_ : torch.Tensor of shape (n_samples, C, H, W)
        Training images in ``dtype``, the centres of the kernel predictor.
    dual_coef_ : torch.Tensor of shape (n_samples, n_outputs)
        Coefficients of the predictor on the (max-scaled) kernel.
    n_iter_ : int
        Number of AGOP updates done.
    output_shape_ : tuple of int
        ``(n_filters, H_out, W_out)``: shape of one transformed image.
    image_shape_, n_features_in_, feature_names_in_, device_
        As for every skphase estimator."""


def _shared_docs(score):
    """Fill the shared sections of a ConvRFM estimator's docstring; ``score`` names its validation score."""

    def decorate(cls):
        if cls.__doc__ is None:  # python -OO strips docstrings
            return cls
        # Placeholders stand on lines of their own, indented like the text that replaces them.
        cls.__doc__ = (cls.__doc__.replace("    {method}", _METHOD_DOC.replace("{score}", score))
                       .replace("    {parameters}", _PARAMETERS_DOC)
                       .replace("    {attributes}", _ATTRIBUTES_DOC.replace("{score}", score)))
        return cls

    return decorate


class _BaseConvRFM(ImageEstimatorMixin, ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Fit, AGOP iterations, model selection, staged outputs and filters shared by the ConvRFM estimators.

    A subclass encodes the targets (``_encode_targets``), scores an
    iteration's outputs on the validation split (``_validation_score``) and
    turns kernel ridge outputs into predictions.
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

    def __init__(self, *, kernel="laplace", bandwidth="auto", patch_size=3, stride=1, padding=0, ntk_depth=3,
                 ntk_padding="same", n_iter=3, alpha=1e-3, agop_power=0.5, agop_threshold=None, agop_max_samples=1000,
                 validation_fraction=0.2, n_filters=None, dtype="float32", batch_size=256, image_shape=None,
                 device="auto", random_state=None, verbose=0):
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

    def _validation_score(self, outputs, truth):
        """Score (higher is better) of the ridge ``outputs`` (numpy, ``(n_val, n_outputs)``) against ``truth``."""
        raise NotImplementedError

    # ------------------------------------------------------------------ helpers
    def _geometry(self):
        return dict(patch_size=_pair(self.patch_size, "patch_size"), stride=_pair(self.stride, "stride"),
                    padding=_pair(self.padding, "padding"))

    def _patches(self, images):
        return extract_patches(images.to(self.device_, self._dtype), **self._geometry())

    def _kernel(self, A, B=None):
        return patch_kernel_from_patches(A, B, kernel=self.kernel, bandwidth=self.bandwidth_, grid=self._grid,
                                         ntk_depth=self.ntk_depth, window=_pair(self.patch_size, "patch_size"),
                                         ntk_padding=self.ntk_padding, batch_size=self.batch_size)

    def _resolve_bandwidth(self, images):
        """The kernel's bandwidth: the parameter, or for "auto" 5x the median aligned-patch distance."""
        if self.kernel == "ntk":
            return None  # the NTK has no bandwidth
        if self.bandwidth != "auto":
            return float(self.bandwidth)
        # A fixed seed: the bandwidth is a statistic of the training images, not a random draw.
        distance = median_patch_distance(images, **self._geometry(), generator=torch.Generator().manual_seed(0))
        if not distance > 0:
            raise ValueError("bandwidth='auto' needs images that differ: the median distance between their "
                             "patches is 0; pass a bandwidth.")
        return 5.0 * distance

    def _solve(self, K, Y):
        """Kernel ridge regression on ``K / max(K)``: Cholesky, or a general solve if that fails."""
        scale = K.abs().max().clamp_min(torch.finfo(K.dtype).tiny)
        system = K / scale
        system.diagonal().add_(self.alpha)
        factor, info = torch.linalg.cholesky_ex(system)
        if int(info) == 0:
            coef = torch.cholesky_solve(Y, factor)
        else:
            coef = torch.linalg.lstsq(system, Y).solution if self.alpha == 0 else torch.linalg.solve(system, Y)
        return coef / scale

    def _next_transform(self, G):
        T, eigvals = psd_power(G, self.agop_power, return_eigenvalues=True)
        self.agop_eigenvalues_.append(to_numpy(eigvals))
        if self.agop_threshold is not None:
            t_vals, t_vecs = torch.linalg.eigh(T)
            t_vals = torch.where(t_vals >= self.agop_threshold * t_vals.max(), t_vals, torch.zeros_like(t_vals))
            T = (t_vecs * t_vals) @ t_vecs.T
        # Normalise M = T^T T to the trace of the identity, the fixed kernel's M:
        # the bandwidth keeps its meaning from one iteration to the next.
        trace = (T * T).sum()
        if not trace > 0:
            scale = ("" if self.bandwidth_ is None else
                     f" A fixed bandwidth ({self.bandwidth_:g}) far below the distances between patches (images "
                     "of large values, e.g. 0-255 pixels) makes the kernel vanish between distinct images: use "
                     "bandwidth='auto' or rescale the images.")
            raise ValueError("The patch AGOP vanished (the predictor is constant)." + scale +
                             " Otherwise increase n_samples or decrease alpha.")
        return T * (T.shape[0] / trace).sqrt()

    def _split(self, n_samples, strata):
        """Train/validation indices, stratified by ``strata`` when given and possible; None for no split."""
        if self.validation_fraction == 0:
            return None
        n_val = int(np.ceil(self.validation_fraction * n_samples))
        seed = seed_from_random_state(self._rng)
        if n_val < 2 or n_val >= n_samples - 1:  # one held-out sample cannot rank the iterations
            return None
        splitter = ShuffleSplit(n_splits=1, test_size=n_val, random_state=seed)
        if strata is not None:
            counts = np.bincount(strata)
            if counts.min() >= 2 and n_val >= len(counts) and n_samples - n_val >= len(counts):
                splitter = StratifiedShuffleSplit(n_splits=1, test_size=n_val, random_state=seed)
        train, val = next(splitter.split(np.zeros(n_samples), strata))
        if strata is not None and len(np.unique(strata[train])) < 2:
            return None
        return train, val

    def _run_iterations(self, patches_train, Y_train, patches_val, truth_val):
        """Fit ``n_iter + 1`` models; return the per-iteration states and validation scores."""
        d = patches_train.shape[-1]
        T = torch.eye(d, device=self.device_, dtype=self._dtype)
        n_train = patches_train.shape[0]
        stages, scores = [], []
        start = time.perf_counter()
        for iteration in range(self.n_iter + 1):
            # Iteration 0 has T = I: skip the product, which would copy every patch once more.
            T_apply = None if iteration == 0 else T
            A = transform_patches(patches_train, T_apply)
            coef = self._solve(self._kernel(A), Y_train)
            stages.append((T, coef))
            if patches_val is not None:
                outputs = to_numpy(self._kernel(transform_patches(patches_val, T_apply), A) @ coef)
                scores.append(self._validation_score(outputs, truth_val))
            else:
                scores.append(np.nan)
            if self.verbose:
                score = "no validation split" if patches_val is None else f"validation score {scores[-1]:.4f}"
                print(f"{type(self).__name__} iteration {iteration}: {score} "
                      f"({time.perf_counter() - start:.0f} s)", flush=True)
            if iteration == self.n_iter:
                break
            rows = patches_train
            if self.agop_max_samples is not None and self.agop_max_samples < n_train:
                subset = torch.randperm(n_train, generator=self._generator)[: self.agop_max_samples]
                rows = patches_train[subset.to(patches_train.device)]
            G = patch_agop_from_patches(rows, patches_train, coef, T=T, kernel=self.kernel,
                                        bandwidth=self.bandwidth_, grid=self._grid, ntk_depth=self.ntk_depth,
                                        window=_pair(self.patch_size, "patch_size"), ntk_padding=self.ntk_padding,
                                        batch_size=self.batch_size)
            T = self._next_transform(G)
        return stages, np.asarray(scores)

    # --------------------------------------------------------------------- fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Fit on images ``X`` and targets ``y``.

        Parameters
        ----------
        X : array-like, torch.Tensor or torch Dataset
            ``(n, C, H, W)``, ``(n, H, W)`` or flat ``(n, d)`` images (any real
            dtype), or a map-style Dataset of images. Copied once, into
            ``dtype``: that copy is ``centers_``.
        y : array-like of shape (n,) (or (n, n_outputs) for the regressor)

        Returns
        -------
        self
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
        images = source.to_tensor()  # the only copy of X: the kernel machine keeps it as its centres
        self._resolve_device()
        self._grid = patch_grid_shape(images.shape[-2:], **self._geometry())
        self._rng = np.random.RandomState(seed_from_random_state(self.random_state))
        self._generator = make_generator(self._rng)

        Y = torch.as_tensor(Y).to(self.device_, self._dtype)
        self.bandwidth_ = self._resolve_bandwidth(images)
        split = self._split(images.shape[0], strata)
        self.agop_eigenvalues_ = []
        if split is None:
            stages, scores = self._run_iterations(self._patches(images), Y, None, None)
            best = len(stages) - 1
            T, coef = stages[best]
            self._stage_rows = None
        else:
            # Patches of the two splits are extracted from their images, not indexed out of the
            # patches of all images, which would hold every patch twice.
            train, val = (torch.as_tensor(s) for s in split)
            self._stage_rows = train  # the centres of the staged models, indices into centers_
            stages, scores = self._run_iterations(self._patches(images[train]), Y[train.to(Y.device)],
                                                  self._patches(images[val]), truth[split[1]])
            best = int(np.nanargmax(scores))
            T = stages[best][0]
            # Refit the ridge regression with the chosen features on every training sample.
            coef = self._solve(self._kernel(transform_patches(self._patches(images), T)), Y)
        self._stages = list(stages)
        self.validation_scores_ = scores
        self.best_iteration_ = best
        self.n_iter_ = len(stages) - 1
        self.transform_matrix_ = to_numpy(T).astype(np.float64)
        self.M_ = self.transform_matrix_.T @ self.transform_matrix_
        self.centers_ = images
        self.dual_coef_ = coef
        self._T = T
        self.filters_ = self._make_filters(images.shape[1])
        grid = self._grid
        self.output_shape_ = (self.filters_.shape[0], grid[0], grid[1])
        self._n_features_out = int(np.prod(self.output_shape_))
        del self._rng, self._generator
        return self

    def _make_filters(self, n_channels):
        root = psd_sqrt(torch.as_tensor(self.M_))
        if self.n_filters is not None:
            generator = make_generator(seed_from_random_state(self.random_state))
            Z = torch.randn(self.n_filters, root.shape[0], generator=generator, dtype=torch.float64)
            root = Z @ root
        qh, qw = _pair(self.patch_size, "patch_size")
        return to_numpy(root).reshape(-1, n_channels, qh, qw).astype(np.float32)

    # ------------------------------------------------------------- prediction
    def _ridge_outputs(self, X, T, coef, centers):
        """Kernel ridge outputs ``(n, n_outputs)`` (float64 numpy) of the model ``(T, coef, centers)``."""
        source = self._validate_source(X, reset=False, dtype=self._dtype)
        B = transform_patches(self._patches(centers), T)

        def outputs(batch):  # patches of a few images at a time: those of a large test set would not fit
            return self._kernel(transform_patches(self._patches(batch), T), B) @ coef

        out = map_batches(outputs, source, batch_size=self.batch_size, device=self.device_)
        return out.astype(np.float64, copy=False)

    def _fitted_outputs(self, X):
        check_is_fitted(self)
        return self._ridge_outputs(X, self._T, self.dual_coef_, self.centers_)

    def _staged_outputs(self, X):
        """Ridge outputs of each iteration's model (fitted on the training split), in order."""
        check_is_fitted(self)
        centers = self.centers_ if self._stage_rows is None else self.centers_[self._stage_rows]
        for T, coef in self._stages:
            yield self._ridge_outputs(X, T, coef, centers)

    def transform(self, X):
        """Feature maps of the learned filters: ``conv2d(X, filters_)``, flattened.

        Returns
        -------
        ndarray of shape (n, n_filters * H_out * W_out), float32
        """
        check_is_fitted(self)
        source = self._validate_source(X, reset=False)
        weight = torch.as_tensor(self.filters_, device=self.device_)
        geometry = self._geometry()

        def feature_maps(batch):
            maps = torch.nn.functional.conv2d(batch, weight, stride=geometry["stride"], padding=geometry["padding"])
            return maps.flatten(1)

        return map_batches(feature_maps, source, batch_size=self.batch_size, device=self.device_)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags


@_shared_docs(score="accuracy")
class ConvRFM(ClassifierMixin, _BaseConvRFM):
    """Convolutional recursive feature machine (ConvRFM) classifier.

    {method}

    Classes are one-hot targets of the ridge regression; the class with the
    largest output is predicted.

    ``transform`` applies the learned filters as a convolution, so a deep
    ConvRFM is a pipeline of ConvRFMs, each fitted on the feature maps of the
    previous one::

        layer1 = ConvRFM(n_filters=64)
        # layer1.output_shape_ gives the (C, H, W) of its feature maps after fit
        deep = Pipeline([("layer1", layer1), ("layer2", ConvRFM(image_shape=(64, 26, 26)))])

    Parameters
    ----------
    {parameters}

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    {attributes}

    See Also
    --------
    ConvRFMRegressor : the same machine for real-valued targets.

    Examples
    --------
    >>> from skphase.estimators import ConvRFM
    >>> from skphase.datasets import load_digits_images
    >>> X, y = load_digits_images()
    >>> clf = ConvRFM(n_iter=1, device="cpu", random_state=0).fit(X[:300], y[:300])
    >>> clf.M_.shape, clf.validation_scores_.shape
    ((9, 9), (2,))
    >>> bool(clf.score(X[300:500], y[300:500]) > 0.8)
    True
    """

    def _encode_targets(self, y):
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        encoder = LabelEncoder().fit(y)
        self.classes_ = encoder.classes_
        if len(self.classes_) < 2:
            raise ValueError(f"ConvRFM needs samples of at least 2 classes; got 1 class ({self.classes_[0]!r}).")
        y_enc = encoder.transform(y)
        return np.eye(len(self.classes_))[y_enc], y_enc, y_enc

    def _validation_score(self, outputs, truth):
        return float((outputs.argmax(1) == truth).mean())

    def _labels(self, outputs):
        """The class of each row of ridge outputs: the largest one."""
        return self.classes_[outputs.argmax(1)]

    def _format_decision(self, outputs):
        return outputs[:, 1] - outputs[:, 0] if len(self.classes_) == 2 else outputs

    def decision_function(self, X):
        """Kernel ridge outputs, one column per class (a single column for two classes).

        Returns
        -------
        ndarray of shape (n,) or (n, n_classes)
            For two classes, positive values vote for ``classes_[1]``.
        """
        return self._format_decision(self._fitted_outputs(X))

    def predict(self, X):
        """Predicted class of each image."""
        return self._labels(self._fitted_outputs(X))

    def staged_decision_function(self, X):
        """Decision function of each iteration's model (fitted on the training split), in order.

        Useful to trace test accuracy over the AGOP iterations; model
        selection itself only uses the validation split.

        Yields
        ------
        ndarray of shape (n,) or (n, n_classes)
        """
        for outputs in self._staged_outputs(X):
            yield self._format_decision(outputs)

    def staged_score(self, X, y):
        """Accuracy of each iteration's model on ``(X, y)``; returns an array of length ``n_iter_ + 1``."""
        y = np.asarray(y)
        return np.asarray([float((self._labels(outputs) == y).mean()) for outputs in self._staged_outputs(X)])


@_shared_docs(score="R^2")
class ConvRFMRegressor(RegressorMixin, _BaseConvRFM):
    """Convolutional recursive feature machine (ConvRFM) for real-valued targets.

    {method}

    One or several real targets per image; predictions are the kernel ridge
    outputs. Like :class:`ConvRFM`, ``transform`` applies the learned filters,
    so the regressor can be a layer of a deep ConvRFM pipeline.

    Parameters
    ----------
    {parameters}

    Attributes
    ----------
    n_outputs_ : int
        Number of targets per image.
    {attributes}

    See Also
    --------
    ConvRFM : the classifier.

    Examples
    --------
    The target is the mean over 3 x 3 patches of ``(w . patch)^2`` for one
    hidden filter ``w``; the AGOP steps find ``w`` as the top eigenvector of
    ``M_``, and the test R^2 rises with each of them:

    >>> import numpy as np
    >>> from skphase.estimators import ConvRFMRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((500, 1, 6, 6))
    >>> w = rng.standard_normal(9)
    >>> w /= np.linalg.norm(w)
    >>> patches = np.lib.stride_tricks.sliding_window_view(X[:, 0], (3, 3), axis=(1, 2))
    >>> y = ((patches.reshape(500, 16, 9) @ w) ** 2).mean(1)
    >>> reg = ConvRFMRegressor(n_iter=3, validation_fraction=0, device="cpu").fit(X[:400], y[:400])
    >>> top = np.linalg.eigh(reg.M_)[1][:, -1]
    >>> bool(abs(top @ w) > 0.9)
    True
    >>> r2 = reg.staged_score(X[400:], y[400:])
    >>> bool(np.all(np.diff(r2) > 0))
    True
    """

    def _encode_targets(self, y):
        y = check_array(y, ensure_2d=False, allow_nd=True, dtype=np.float64, input_name="y")
        if y.ndim not in (1, 2):
            raise ValueError(f"y must be of shape (n,) or (n, n_outputs); got an array of shape {y.shape}.")
        self._y_is_1d = y.ndim == 1
        Y = y.reshape(len(y), -1)
        self.n_outputs_ = Y.shape[1]
        return Y, Y, None

    def _validation_score(self, outputs, truth):
        return float(r2_score(truth, outputs))

    def _format_prediction(self, outputs):
        return outputs[:, 0] if self._y_is_1d else outputs

    def predict(self, X):
        """Predicted targets of each image.

        Returns
        -------
        ndarray of shape (n,) or (n, n_outputs)
            The shape of ``y`` in ``fit``.
        """
        return self._format_prediction(self._fitted_outputs(X))

    def staged_predict(self, X):
        """Predictions of each iteration's model (fitted on the training split), in order.

        Yields
        ------
        ndarray of shape (n,) or (n, n_outputs)
        """
        for outputs in self._staged_outputs(X):
            yield self._format_prediction(outputs)

    def staged_score(self, X, y):
        """R^2 of each iteration's model on ``(X, y)``; returns an array of length ``n_iter_ + 1``."""
        return np.asarray([float(r2_score(y, prediction)) for prediction in self.staged_predict(X)])

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
