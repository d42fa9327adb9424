"""Class separation of representations, layer by layer, in bounded memory.

Four measures of how well a representation separates classes, as used to argue that phase
collapse (not sparsity) separates class means (Guth, Zarka, Mallat, ICLR 2022; Zarka et al., 2021):

- ``fisher_ratio``: between-class over within-class variance, ``tr(S_B) / tr(S_W)``;
- ``calinski_harabasz``: the same ratio with degrees of freedom, ``tr(S_B)/(k-1) / (tr(S_W)/(n-k))``
  (what :func:`sklearn.metrics.calinski_harabasz_score` computes);
- ``ncm_accuracy``: accuracy of the nearest class mean (Euclidean);
- ``probe_accuracy``: accuracy of a linear probe, a ridge classifier on one-vs-all +-1 targets
  (what :class:`sklearn.linear_model.RidgeClassifier` fits), solved in closed form.

Features are never stored: one pass accumulates per-class counts, sums and squared norms (and the
Gram matrix of the probe), a second pass scores the nearest class mean and the probe. Layers wider
than ``probe_features`` are compressed for the probe by a count sketch (feature hashing), which
keeps inner products in expectation and the Gram matrix at ``probe_features^2``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike

from ..utils._docs import fill_docstring
from ..utils._torch import iter_batches, seed_from_random_state
from ._probes import ModelProbe

__all__ = ["separation_scores", "class_separation", "layerwise_class_separation"]


def _check_labels(y, n, name="y"):
    y = np.asarray(y.cpu() if isinstance(y, torch.Tensor) else y)
    if y.ndim != 1 or y.shape[0] != n:
        raise ValueError(f"{name} must be a 1-D array of {n} labels (one per image), got shape {y.shape}.")
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        raise ValueError(f"{name} holds NaN or infinite labels; every image needs a class label.")
    if y.dtype == object:
        kinds = {type(label) for label in y.tolist()}
        if any(label is None or (isinstance(label, float) and not np.isfinite(label)) for label in y.tolist()):
            raise ValueError(f"{name} holds missing labels (None or NaN); every image needs a class label.")
        if len({str in k.__mro__ for k in kinds}) > 1:
            raise ValueError(f"{name} mixes string and non-string labels ({sorted(k.__name__ for k in kinds)}); "
                             "use one type of label.")
    return y


class _SeparationAccumulator:
    """Streaming statistics of one representation for all four measures."""

    def __init__(self, n_classes, probe_features, alpha, rng):
        self.k, self.p_max, self.alpha, self.rng = n_classes, probe_features, alpha, rng
        self.initialised = False

    def _init(self, features):
        d = features.shape[1]
        dev = features.device
        self.d = d
        # Shift by the first batch's mean so that sums of squares do not cancel catastrophically.
        self.shift = features.mean(dim=0)
        self.counts = torch.zeros(self.k, dtype=torch.float64, device=dev)
        self.sums = torch.zeros(self.k, d, dtype=torch.float64, device=dev)
        self.squares = torch.zeros(self.k, dtype=torch.float64, device=dev)
        self.sketch = None
        if d > self.p_max:
            self.sketch = (
                torch.as_tensor(self.rng.integers(0, self.p_max, d), device=dev),
                torch.as_tensor(self.rng.choice([-1.0, 1.0], d), dtype=torch.float64, device=dev),
            )
        p = min(d, self.p_max)
        self.probe_shift = self._probe_features(features).mean(dim=0)
        self.gram = torch.zeros(p, p, dtype=torch.float64, device=dev)
        self.cross = torch.zeros(p, self.k, dtype=torch.float64, device=dev)
        self.probe_sum = torch.zeros(p, dtype=torch.float64, device=dev)
        self.target_sum = torch.zeros(self.k, dtype=torch.float64, device=dev)
        self.initialised = True

    def _probe_features(self, features):
        if self.sketch is None:
            return features
        buckets, signs = self.sketch
        out = torch.zeros(features.shape[0], self.p_max, dtype=torch.float64, device=features.device)
        return out.index_add_(1, buckets, features * signs)

    def fit_batch(self, features, labels):
        features = features.double()
        if not self.initialised:
            self._init(features)
        labels = labels.to(features.device)
        centred = features - self.shift
        onehot = torch.nn.functional.one_hot(labels, self.k).double()
        self.counts += onehot.sum(dim=0)
        self.sums += onehot.T @ centred
        self.squares += onehot.T @ centred.pow(2).sum(dim=1)
        z = self._probe_features(features) - self.probe_shift
        targets = 2 * onehot - 1  # RidgeClassifier's one-vs-all +-1 coding
        self.gram += z.T @ z
        self.cross += z.T @ targets
        self.probe_sum += z.sum(dim=0)
        self.target_sum += targets.sum(dim=0)

    def finalise(self, name):
        n = self.counts.sum()
        class_means = self.sums / self.counts[:, None]
        grand_mean = self.sums.sum(dim=0) / n
        within = float((self.squares - self.sums.pow(2).sum(dim=1) / self.counts).sum())
        between = float((self.counts * (class_means - grand_mean).pow(2).sum(dim=1)).sum())
        self.means = class_means + self.shift  # in the original coordinates
        self.mean_norms = self.means.pow(2).sum(dim=1)
        # Ridge probe with intercept: centre the accumulated moments, solve (Zc'Zc + a I) W = Zc'Yc.
        z_mean, t_mean = self.probe_sum / n, self.target_sum / n
        gram = self.gram - n * torch.outer(z_mean, z_mean)
        cross = self.cross - n * torch.outer(z_mean, t_mean)
        gram.diagonal().add_(self.alpha)
        self.weights = torch.linalg.solve(gram, cross)
        self.intercept = t_mean - z_mean @ self.weights
        n, k = float(n), self.k
        if within <= 1e-12 * (within + between) or within == 0:
            warnings.warn(
                f"Representation {name!r} has no within-class variance: every class collapses to a point, "
                "so the Fisher ratio and the Calinski-Harabasz score are infinite.",
                RuntimeWarning,
                stacklevel=4,
            )
            fisher = np.inf if between > 0 else np.nan
        else:
            fisher = between / within
        return {
            "n_features": int(self.d),
            "fisher_ratio": fisher,
            "calinski_harabasz": fisher * (n - k) / (k - 1) if n > k else np.nan,
        }

    def score_batch(self, features, labels):
        features = features.double()
        labels = labels.to(features.device)
        dist = features.pow(2).sum(dim=1, keepdim=True) - 2 * features @ self.means.T + self.mean_norms
        ncm = (dist.argmin(dim=1) == labels).sum().item()
        scores = (self._probe_features(features) - self.probe_shift) @ self.weights + self.intercept
        probe = (scores.argmax(dim=1) == labels).sum().item()
        return ncm, probe


def _separation_table(model, X, y, *, X_test, y_test, layers, include_input, include_output, probe_alpha,
                      probe_features, batch_size, device, random_state, image_shape):
    if not (probe_alpha >= 0 and np.isfinite(probe_alpha)) or probe_features < 1 or batch_size < 1:
        raise ValueError(
            f"Need a finite probe_alpha >= 0, probe_features >= 1 and batch_size >= 1; got {probe_alpha}, "
            f"{probe_features}, {batch_size}."
        )
    probe = ModelProbe(model, X, image_shape=image_shape, min_samples=2, device=device, layers=layers)
    images = probe.images
    y = _check_labels(y, images.shape[0])
    classes, codes = np.unique(y, return_inverse=True)
    if classes.shape[0] < 2:
        raise ValueError(f"Class separation needs samples of at least 2 classes; y has only {classes.tolist()}.")
    if images.shape[0] <= classes.shape[0]:
        raise ValueError(f"Need more images ({images.shape[0]}) than classes ({classes.shape[0]}).")
    if X_test is None:
        test_images, test_codes = images, codes
    else:
        if y_test is None:
            raise ValueError("X_test needs its labels y_test.")
        test_images = probe.check_images(X_test, name="X_test")
        y_test = _check_labels(y_test, test_images.shape[0], "y_test")
        unseen = np.setdiff1d(y_test, classes)
        if unseen.size:
            raise ValueError(
                f"y_test has labels {unseen.tolist()[:10]} that y does not; a class mean needs training data."
            )
        test_codes = np.searchsorted(classes, y_test)
    batch_size = probe.batch_size(batch_size)

    def representations(x):
        return probe.representations(x.to(probe.device), include_input=include_input, include_output=include_output)

    rng = np.random.default_rng(seed_from_random_state(random_state))
    accumulators, rows = {}, {}
    codes, test_codes = torch.as_tensor(codes), torch.as_tensor(test_codes)
    with probe:
        for batch in iter_batches(images.shape[0], batch_size):
            for name, f in representations(images[batch]).items():
                if name not in accumulators:
                    accumulators[name] = _SeparationAccumulator(len(classes), probe_features, probe_alpha, rng)
                accumulators[name].fit_batch(f, codes[batch])
        for name, acc in accumulators.items():
            rows[name] = {"layer": name, "n_images": int(images.shape[0]), **acc.finalise(name), "ncm": 0, "probe": 0}
        for batch in iter_batches(test_images.shape[0], batch_size):
            for name, f in representations(test_images[batch]).items():
                ncm, probe_hits = accumulators[name].score_batch(f, test_codes[batch])
                rows[name]["ncm"] += ncm
                rows[name]["probe"] += probe_hits
    n_test = test_images.shape[0]
    out = []
    for row in rows.values():
        ncm, probe_hits = row.pop("ncm"), row.pop("probe")
        out.append({**row, "ncm_accuracy": ncm / n_test, "probe_accuracy": probe_hits / n_test})
    return out


def separation_scores(
    features: ArrayLike,
    y: ArrayLike,
    *,
    probe_alpha: float = 1.0,
    batch_size: int = 4096,
) -> dict[str, Any]:
    """The four separation measures of a feature matrix (resubstitution accuracies).

    Parameters
    ----------
    features : array-like of shape (n, d) or (n, ...)
        One representation per sample (flattened); complex values count as two real features.
    y : array-like of shape (n,)
        Class labels, at least 2 classes.
    probe_alpha : float, default=1.0
        Ridge penalty of the linear probe.
    batch_size : int, default=4096
        Samples per block of the computations; bounds memory.

    Returns
    -------
    dict
        ``n_features, fisher_ratio, calinski_harabasz, ncm_accuracy, probe_accuracy``.

    See Also
    --------
    class_separation : the same measures on the output of a model.
    layerwise_class_separation : the same at every layer of a model.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.metrics import calinski_harabasz_score
    >>> rng = np.random.default_rng(0)
    >>> F, y = rng.normal(size=(60, 3)), np.repeat([0, 1, 2], 20)
    >>> F[y == 1] += 2.0
    >>> scores = separation_scores(F, y)
    >>> bool(np.isclose(scores["calinski_harabasz"], calinski_harabasz_score(F, y)))
    True
    """
    if not isinstance(features, torch.Tensor):
        features = np.asarray(features)
        if features.dtype == object or not (np.issubdtype(features.dtype, np.number)
                                            or np.issubdtype(features.dtype, np.bool_)):
            raise ValueError(f"features must hold numbers, got an array of dtype {features.dtype}.")
    features = torch.as_tensor(features)
    if features.ndim < 2 or features.shape[0] == 0 or features[0].numel() == 0:
        raise ValueError(f"features must have shape (n, d) with n, d >= 1, got {tuple(features.shape)}.")
    if features.is_complex():
        features = torch.view_as_real(features)
    # float64 features keep their precision through the probe (see _probes.input_dtype).
    features = features.reshape(features.shape[0], -1).to(torch.float64)
    (row,) = _separation_table(
        lambda batch: batch, features.reshape(features.shape[0], 1, 1, -1), y, X_test=None, y_test=None,
        layers=False, include_input=False, include_output=True, probe_alpha=probe_alpha,
        probe_features=features.shape[1], batch_size=batch_size, device=None, random_state=0, image_shape=None,
    )
    row.pop("layer")
    row.pop("n_images")
    return row


_COMMON_DOC = """    X_test, y_test : optional
        Held-out images and labels for the accuracies (default: the training images, so the
        accuracies are resubstitution accuracies, optimistic for wide layers).
    probe_alpha : float, default=1.0
        Ridge penalty of the linear probe (``RidgeClassifier(alpha=probe_alpha)``).
    probe_features : int, default=1024
        Layers wider than this are count-sketched to this many features for the probe only.
    batch_size : int, default=256
        Images per forward pass; bounds memory (two passes are made).
    device : str or torch.device, optional
        For a torch module, where the batches are sent: the device of its parameters (the default).
    random_state : int, RandomState or None
        Seeds the count sketches.
    image_shape : tuple, optional
        ``(C, H, W)`` of flat input rows.
"""


def class_separation(
    model: object,
    X: ArrayLike,
    y: ArrayLike,
    *,
    X_test: ArrayLike | None = None,
    y_test: ArrayLike | None = None,
    probe_alpha: float = 1.0,
    probe_features: int = 1024,
    batch_size: int = 256,
    device: str | torch.device | None = None,
    random_state: int | np.random.RandomState | None = None,
    image_shape: tuple[int, ...] | None = None,
) -> dict[str, Any]:
    """Class separation of a model's output.

    Parameters
    ----------
    model : torch.nn.Module, fitted transformer or pipeline (prefix), or callable
        Read through :func:`skphase.metrics.as_batch_function`, on batches shaped like ``X``.
    X : array-like or torch.Tensor
        Images ``(n, C, H, W)``, ``(n, H, W)`` or flat ``(n, d)`` with ``image_shape``.
    y : array-like of shape (n,)
        Labels, at least 2 classes.
    {common}

    Returns
    -------
    dict
        ``layer ("output"), n_images, n_features, fisher_ratio, calinski_harabasz, ncm_accuracy,
        probe_accuracy``.

    See Also
    --------
    layerwise_class_separation : the same at every layer of a model.
    separation_scores : the same on a feature matrix.

    Examples
    --------
    >>> import torch
    >>> X = torch.rand(40, 1, 8, 8); y = torch.arange(40) % 2
    >>> X[y == 1] += 0.5
    >>> class_separation(torch.nn.Flatten(), X, y)["ncm_accuracy"]
    1.0
    """
    (row,) = _separation_table(
        model, X, y, X_test=X_test, y_test=y_test, layers=False, include_input=False, include_output=True,
        probe_alpha=probe_alpha, probe_features=probe_features, batch_size=batch_size, device=device,
        random_state=random_state, image_shape=image_shape,
    )
    return row


def layerwise_class_separation(
    model: object,
    X: ArrayLike,
    y: ArrayLike,
    *,
    layers: Sequence[str] | str | Callable | None = None,
    include_input: bool = True,
    include_output: bool = False,
    X_test: ArrayLike | None = None,
    y_test: ArrayLike | None = None,
    probe_alpha: float = 1.0,
    probe_features: int = 1024,
    batch_size: int = 256,
    device: str | torch.device | None = None,
    random_state: int | np.random.RandomState | None = None,
    image_shape: tuple[int, ...] | None = None,
) -> list[dict[str, Any]]:
    """Class separation at every layer of a model, as a tidy table (one dict per representation).

    Parameters
    ----------
    model : torch.nn.Module, fitted estimator with a torch ``module_``, or any other model
        Layers are read through :class:`skphase.metrics.LayerCapture` (on ``model.module_``
        while the estimator's ``transform`` runs, for fitted skphase estimators); other models give
        the input and output rows.
    X : array-like or torch.Tensor
        Images ``(n, C, H, W)``, ``(n, H, W)`` or flat ``(n, d)`` with ``image_shape``.
    y : array-like of shape (n,)
        Labels, at least 2 classes.
    layers : None, list of str or callable
        None takes the blocks flagged ``is_representation_layer`` when the model has any, else
        every Conv/Linear layer (see :func:`skphase.metrics.resolve_layers`).
    include_input : bool, default=True
        Add a row ``"input"`` for the images themselves.
    include_output : bool, default=False
        Add a row ``"output"`` for what the model returns.
    {common}

    Returns
    -------
    list of dict
        One row per representation, keys as in :func:`class_separation`.

    See Also
    --------
    class_separation : the same on the output of a model only.
    layerwise_sensitivity : the stability of every layer.

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Conv2d(4, 4, 3))
    >>> X = torch.rand(40, 1, 10, 10); y = torch.arange(40) % 2
    >>> [row["layer"] for row in layerwise_class_separation(net, X, y)]
    ['input', '0', '2']
    """
    return _separation_table(
        model, X, y, X_test=X_test, y_test=y_test, layers=layers,
        include_input=include_input, include_output=include_output, probe_alpha=probe_alpha,
        probe_features=probe_features, batch_size=batch_size, device=device, random_state=random_state,
        image_shape=image_shape,
    )


fill_docstring(class_separation, layerwise_class_separation, common=_COMMON_DOC)
