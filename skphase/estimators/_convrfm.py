"""ConvRFM: convolutional recursive feature machines, learning patch features through the patch AGOP.

:class:`ConvRFM` (classifier) and :class:`ConvRFMRegressor` share one
implementation, :class:`~skphase.estimators._convrfm_base._BaseConvRFM`; they
differ only in how targets are encoded and weighted and how the validation split
scores an iteration. The iterations themselves are :func:`skphase.nn.fit_rfm`.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from numpy.typing import ArrayLike
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.metrics import accuracy_score, r2_score
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, column_or_1d

from ..utils._sklearn_compat import StrOptions
from ._convrfm_base import _BaseConvRFM, _shared_docs
from ._weights import fit_sample_weights

__all__ = ["ConvRFM", "ConvRFMRegressor"]


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
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes in the ridge loss, the AGOP mean and the validation accuracy, as
        in scikit-learn's linear models (``"balanced"``: ``n / (n_classes * count)``);
        multiplied with ``sample_weight``.
    {last_parameters}

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels, in the order of the columns of the ridge targets.
    {attributes}

    See Also
    --------
    ConvRFMRegressor : the same machine for real-valued targets.
    skphase.nn.fit_rfm : the iterations, in torch.
    skphase.metrics.nfa_correlation : how close a network's filters are to its AGOP.

    Examples
    --------
    >>> from skphase import ConvRFM
    >>> from skphase.datasets import load_digits_images
    >>> X, y = load_digits_images()
    >>> clf = ConvRFM(n_iter=1, device="cpu", random_state=0).fit(X[:300], y[:300])
    >>> clf.M_.shape, clf.validation_scores_.shape
    ((9, 9), (2,))
    >>> bool(clf.score(X[300:500], y[300:500]) > 0.8)
    True
    """

    _parameter_constraints = {**_BaseConvRFM._parameter_constraints,
                              "class_weight": [StrOptions({"balanced"}), dict, None]}

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
        class_weight: dict | str | None = None,
        random_state: int | np.random.RandomState | None = None,
        verbose: int = 0,
    ):
        super().__init__(kernel=kernel, bandwidth=bandwidth, patch_size=patch_size, stride=stride, padding=padding,
                         ntk_depth=ntk_depth, ntk_padding=ntk_padding, n_iter=n_iter, alpha=alpha,
                         agop_power=agop_power, agop_threshold=agop_threshold, agop_max_samples=agop_max_samples,
                         validation_fraction=validation_fraction, n_filters=n_filters, dtype=dtype,
                         batch_size=batch_size, image_shape=image_shape, device=device, random_state=random_state,
                         verbose=verbose)
        self.class_weight = class_weight

    def _encode_targets(self, y):
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        encoder = LabelEncoder().fit(y)
        self.classes_ = encoder.classes_
        if len(self.classes_) < 2:
            raise ValueError(f"ConvRFM needs samples of at least 2 classes; got 1 class ({self.classes_[0]!r}).")
        y_enc = encoder.transform(y)
        return np.eye(len(self.classes_))[y_enc], y_enc, y_enc

    def _sample_weights(self, sample_weight, y, n_samples):
        return fit_sample_weights(sample_weight, n_samples, y=y, class_weight=self.class_weight)

    def _validation_score(self, outputs, truth, sample_weight):
        return float(np.average(outputs.argmax(1) == truth, weights=sample_weight))

    def _labels(self, outputs):
        """The class of each row of ridge outputs: the largest one."""
        return self.classes_[outputs.argmax(1)]

    def _format_decision(self, outputs):
        return outputs[:, 1] - outputs[:, 0] if len(self.classes_) == 2 else outputs

    def decision_function(self, X: ArrayLike | torch.utils.data.Dataset) -> np.ndarray:
        """Compute the kernel ridge outputs, one column per class (a single column for two classes).

        Parameters
        ----------
        X : array-like, torch.Tensor or torch.utils.data.Dataset
            Images of the shape seen in ``fit``.

        Returns
        -------
        ndarray of shape (n,) or (n, n_classes)
            The outputs; for two classes, that of the second class minus that of the first, so
            that positive values vote for ``classes_[1]``.
        """
        return self._format_decision(self._fitted_outputs(X))

    def predict(self, X: ArrayLike | torch.utils.data.Dataset) -> np.ndarray:
        """Predict the class of each image: that of the largest kernel ridge output.

        Parameters
        ----------
        X : array-like, torch.Tensor or torch.utils.data.Dataset
            Images of the shape seen in ``fit``.

        Returns
        -------
        ndarray of shape (n,)
            Labels from ``classes_``.
        """
        return self._labels(self._fitted_outputs(X))

    def staged_decision_function(self, X: ArrayLike | torch.utils.data.Dataset) -> Iterator[np.ndarray]:
        """Compute the decision function of each iteration's model (fitted on the training split), in order.

        Useful to trace test accuracy over the AGOP iterations; model
        selection itself only uses the validation split.

        Parameters
        ----------
        X : array-like, torch.Tensor or torch.utils.data.Dataset
            Images of the shape seen in ``fit``.

        Yields
        ------
        ndarray of shape (n,) or (n, n_classes)
            The outputs of one iteration's model, as :meth:`decision_function` gives them.
        """
        for outputs in self._staged_outputs(X):
            yield self._format_decision(outputs)

    def staged_score(
        self, X: ArrayLike | torch.utils.data.Dataset, y: ArrayLike, sample_weight: ArrayLike | None = None
    ) -> np.ndarray:
        """Compute the accuracy of each iteration's model (fitted on the training split) on ``(X, y)``.

        Parameters
        ----------
        X : array-like, torch.Tensor or torch.utils.data.Dataset
            Images of the shape seen in ``fit``.
        y : array-like of shape (n,)
            True labels.
        sample_weight : array-like of shape (n,) or None, default=None
            Weight of each image in the accuracy; None weighs every image 1.

        Returns
        -------
        ndarray of shape ``(n_iter_ + 1,)``
            The accuracy of each iteration's model, the fixed kernel first.
        """
        return np.asarray([float(accuracy_score(y, self._labels(outputs), sample_weight=sample_weight))
                           for outputs in self._staged_outputs(X)])


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
    {last_parameters}

    Attributes
    ----------
    n_outputs_ : int
        Number of targets per image.
    {attributes}

    See Also
    --------
    ConvRFM : the classifier.
    skphase.nn.fit_rfm : the iterations, in torch.

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

    def _validation_score(self, outputs, truth, sample_weight):
        return float(r2_score(truth, outputs, sample_weight=sample_weight))

    def _format_prediction(self, outputs):
        return outputs[:, 0] if self._y_is_1d else outputs

    def predict(self, X: ArrayLike | torch.utils.data.Dataset) -> np.ndarray:
        """Predict the targets of each image: the kernel ridge outputs.

        Parameters
        ----------
        X : array-like, torch.Tensor or torch.utils.data.Dataset
            Images of the shape seen in ``fit``.

        Returns
        -------
        ndarray of shape (n,) or (n, n_outputs)
            The predictions, of the shape of ``y`` in ``fit``.
        """
        return self._format_prediction(self._fitted_outputs(X))

    def staged_predict(self, X: ArrayLike | torch.utils.data.Dataset) -> Iterator[np.ndarray]:
        """Predict with each iteration's model (fitted on the training split), in order.

        Parameters
        ----------
        X : array-like, torch.Tensor or torch.utils.data.Dataset
            Images of the shape seen in ``fit``.

        Yields
        ------
        ndarray of shape (n,) or (n, n_outputs)
            The predictions of one iteration's model, as :meth:`predict` gives them.
        """
        for outputs in self._staged_outputs(X):
            yield self._format_prediction(outputs)

    def staged_score(
        self, X: ArrayLike | torch.utils.data.Dataset, y: ArrayLike, sample_weight: ArrayLike | None = None
    ) -> np.ndarray:
        """Compute the R^2 of each iteration's model (fitted on the training split) on ``(X, y)``.

        Parameters
        ----------
        X : array-like, torch.Tensor or torch.utils.data.Dataset
            Images of the shape seen in ``fit``.
        y : array-like of shape (n,) or (n, n_outputs)
            True targets.
        sample_weight : array-like of shape (n,) or None, default=None
            Weight of each image in the R^2; None weighs every image 1.

        Returns
        -------
        ndarray of shape ``(n_iter_ + 1,)``
            The R^2 of each iteration's model, the fixed kernel first.
        """
        return np.asarray([float(r2_score(y, prediction, sample_weight=sample_weight))
                           for prediction in self.staged_predict(X)])

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
