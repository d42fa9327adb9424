"""ScatteringPhaseCollapse: the learned scattering network as a scikit-learn estimator."""

# This module runs past the ~500-line guide on purpose: more than half of it is numpydoc
# docstrings with runnable examples; its code is one concern and under 350 lines.

from __future__ import annotations

import numbers
import warnings
from collections.abc import Callable, Sequence

import numpy as np
import torch
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d

from ..nn import (
    AUGMENTATIONS,
    NONLINEARITIES,
    OPTIMIZERS,
    SCHEDULES,
    VARIANTS,
    Callback,
    EpochLogger,
    PhaseCollapseNet,
    TrainingInterrupted,
    count_subsamplings,
    optimizer_class,
    train_classifier,
)
from ..utils import make_generator
from ..utils._images import is_integer, min_image_size_error
from ..utils._precision import PRECISIONS, autocast, check_precision
from ..utils._progress import epoch_progress, progress_bar
from ..utils._sklearn_compat import Interval, StrOptions, _fit_context
from ..utils._torch import map_batches, to_numpy
from ._base import ImageEstimatorMixin
from ._weights import fit_sample_weights

__all__ = ["ScatteringPhaseCollapse", "PhaseCollapse"]


def _is_whole(value):
    """True for an integer, or a real number with an integer value (8.0); False for 4.5 and bools."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    return is_integer(value) or float(value).is_integer()


def _as_numpy(out):
    """``map_batches`` output as a numpy array, whether it returns tensors or arrays."""
    return to_numpy(out) if isinstance(out, torch.Tensor) else np.asarray(out)


class ScatteringPhaseCollapse(ImageEstimatorMixin, ClassifierMixin, TransformerMixin, BaseEstimator):
    """Learned scattering network with phase collapse (Guth, Zarka & Mallat, ICLR 2022).

    A cascade of blocks, each made of fixed complex wavelet filtering ``W``
    (a low-pass and ``L`` oriented Morlet wavelets, kymatio's formulas),
    a point-wise non-linearity ``rho``, a standardisation without affine
    parameters, a learned complex 1x1 projection ``P`` (no bias) and a
    per-pixel normalisation; a linear classifier reads the last block. The
    whole network is trained end to end by ``fit``; ``transform`` returns the
    learned representation (the last block, flattened) for any linear
    classifier, and ``predict`` uses the trained head.

    Swapping ``nonlinearity`` between the modulus (which collapses the phase)
    and phase-preserving maps such as soft-thresholding is the experiment of
    the paper: the modulus separates class means, thresholding does much worse.

    Parameters
    ----------
    widths : int or sequence of int, default=(32, 64, 128)
        Complex channels out of each block's projection; a sequence sets one
        width per block, an int is repeated ``n_blocks`` times.
    n_blocks : int or None, default=None
        Number of blocks; None takes ``len(widths)``.
    L : int, default=4
        Number of wavelet orientations per block.
    nonlinearity : {"modulus", "soft_threshold", "modulus_collapse", "sigmoid", "tanh", "relu", "identity"}, \
            default="modulus"
        See :class:`skphase.nn.ComplexNonlinearity`.
    variant : {"lscat", "lscat+skip"}, default="lscat+skip"
        ``"lscat"`` keeps the low-pass linear and applies ``rho`` to the
        wavelet coefficients; ``"lscat+skip"`` feeds ``P`` with both the
        linear coefficients and ``rho`` of all of them.
    factorized : bool, default=False
        Two blocks per octave with half-octave filters; only every second
        block subsamples (the paper's CIFAR configuration).
    max_iter : int, default=20
        Training epochs.
    batch_size : int, default=128
        Mini-batch size in training, and the number of images processed at a
        time in ``transform``/``predict`` (bounds memory).
    learning_rate_init : float, default=0.05
        Learning rate at the start of the schedule (the optimizer's ``lr``).
    momentum : float, default=0.9
        Passed only to optimizers whose constructor takes a ``momentum``
        argument (SGD; not Adam or AdamW).
    weight_decay : float, default=1e-4
        Passed to every optimizer that takes it: an L2 penalty in SGD and Adam,
        decoupled decay in AdamW (which then runs with this value, not its own
        default of 1e-2).
    optimizer : {"sgd", "adam", "adamw"} or torch.optim.Optimizer subclass, default="sgd"
        The optimizer: SGD with momentum (the paper's), Adam, AdamW, or any
        optimizer class (not an instance), built on the network's parameters
        with ``lr=learning_rate_init`` and the arguments above that it takes.
    optimizer_params : dict or None, default=None
        More keyword arguments of the optimizer (``{"betas": (0.9, 0.99)}``,
        ``{"nesterov": True}``); they override the parameters above.
    schedule : {"cosine", "step", "constant"}, default="cosine"
        Learning-rate factor over the budget: a cosine from 1 to 0, steps by
        ``gamma``, or constant. The schedule runs over ``max_iter`` epochs, or
        over ``max_time`` when that ends first.
    schedule_params : dict or None, default=None
        For ``"step"``: ``step_size`` (in epochs, default ``max_iter / 3``) and
        ``gamma`` (default 0.1). The paper's "x0.1 every 70 of 300 epochs" is
        ``max_iter=300, schedule="step", schedule_params={"step_size": 70}``.
    augmentation : {None, "crop", "crop+flip"}, default=None
        Random crops (padding of ``H // 8`` pixels) and horizontal flips.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training data, keep the epoch
        with the best validation accuracy, and stop after
        ``n_iter_no_change`` epochs without improvement.
    validation_fraction : float, default=0.1
        Fraction of the training images held out with ``early_stopping``.
    n_iter_no_change : int, default=5
        Epochs without improvement after which ``early_stopping`` stops training.
    tol : float, default=1e-4
        Smallest improvement of the validation accuracy (or training loss) that counts.
    max_time : float or None, default=None
        Training budget in seconds: no epoch starts that would end past it (judged by the last
        epoch's duration), and when the budget ends before ``max_iter`` epochs the learning-rate
        schedule runs over the budget instead, so that it still anneals. The pass that recomputes
        the running statistics after the last epoch (see Notes) comes on top of it.
    callbacks : list or None, default=None
        Called after every epoch: callables ``cb(estimator, info)`` or objects
        with ``on_epoch_end(estimator, info)`` (and optionally
        ``on_train_begin(estimator)``, ``on_train_end(estimator, result)``);
        ``info`` is a :class:`skphase.nn.EpochInfo` (epoch, loss,
        validation_score, learning_rate, times, is_best, module, optimizer). A
        callback returning True stops training (``stopped_by_ == "callback"``).
        Built-ins: :class:`skphase.nn.Checkpoint`, :class:`skphase.nn.EpochLogger`,
        :class:`skphase.nn.StopAfter`.
    precision : {"float32", "bfloat16", "float16"}, default="float32"
        Arithmetic of the forward passes, in training and inference:
        ``"bfloat16"`` and ``"float16"`` run under :func:`torch.autocast`
        (float16 on CUDA only, with gradient scaling), while the loss, the
        weights and every output stay float32.
    memory_efficient : bool, default=False
        Training keeps, for the backward, each block's input rather than its
        wavelet filtering's output (up to ``1 + L`` times larger) and filters
        it again there: less memory per step for one more filtering pass
        (``benchmarks/bench_memory.py --training`` and
        ``benchmarks/bench_phase_collapse.py`` measure both).
    compile : bool, default=False
        Train through :func:`torch.compile` (see
        :func:`skphase.nn.train_classifier`): faster steps once compiled, for a
        compilation of a few minutes at the first batch (and at a smaller last
        one), so for long trainings; the compiler then chooses what the
        backward keeps (``memory_efficient`` has no effect). Needs a C++
        compiler on the CPU, Triton on CUDA. Prediction and ``transform`` run
        eagerly.
    warm_start : bool, default=False
        Continue training the fitted network (same data shape, classes and
        architecture parameters), and its optimizer state when ``optimizer``
        is unchanged.
    image_shape : tuple of int or None, default=None
        ``(H, W)`` or ``(C, H, W)`` of one image when ``X`` is flat.
    device : str, default="auto"
        ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    num_workers : int, default=0
        Worker processes of the :class:`torch.utils.data.DataLoader` that reads
        ``X`` when it is a torch Dataset.
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes in the training loss, as in scikit-learn's linear models
        (``"balanced"``: ``n / (n_classes * count)``); multiplied with ``sample_weight``.
    random_state : int, RandomState instance or None, default=None
        Seeds the initial projections, the shuffling and the augmentation.
        Equal seeds give equal results on the CPU.
    verbose : int, default=0
        1: one progress bar per epoch over its batches, with the running loss,
        left on screen with the epoch's loss (and validation accuracy); 2 and
        more: also one line per epoch logged to ``logging.getLogger("skphase")``
        at INFO level (shown once logging is configured, e.g.
        ``logging.basicConfig(level=logging.INFO)``).

    Attributes
    ----------
    module_ : PhaseCollapseNet
        The trained torch network (``module_.blocks`` holds the blocks).
    classes_ : ndarray of shape (n_classes,)
    image_shape_ : tuple of int
        ``(C, H, W)`` of the training images.
    n_features_in_ : int
        ``C * H * W``.
    feature_names_in_ : ndarray of str
        Names of the columns of flat ``X`` when they are all strings.
    block_shapes_ : list of tuple
        ``(H, W, 2 * width)`` of each block's output (real parts, then imaginary parts).
    device_ : torch.device
    n_iter_ : int
        Epochs run (summed over warm starts).
    loss_curve_ : list of float
        Training loss per epoch.
    validation_scores_ : list of float
        Validation accuracy per epoch (with ``early_stopping``).
    best_loss_ : float
    best_validation_score_ : float or None
    stopped_by_ : str
        Why training ended: ``"max_iter"``, ``"early_stopping"``, ``"max_time"``,
        ``"callback"`` or ``"interrupted"``.
    training_time_ : float
        Seconds spent in the last call to ``fit``, the final statistics pass included.
    recalibration_time_ : float
        Seconds of that final statistics pass.

    See Also
    --------
    ScatteringTransform : the fixed (not learned) scattering baseline.

    Notes
    -----
    The output of ``transform`` has ``H' * W' * 2 * widths[-1]`` features:
    the last block's complex map, channels last, real parts then imaginary
    parts. :meth:`transform_blocks` returns every block's output, and forward
    hooks on ``module_.blocks`` reach them inside torch code.

    After the last epoch, one pass over the training images without gradients
    recomputes the running statistics of the standardisations from the final
    weights (:func:`skphase.nn.recalibrate_running_statistics`), so that
    ``predict`` and ``transform`` use statistics of the network as trained
    rather than an average that lags behind it (it would after a short
    training or on inputs of unusual scale).

    Ctrl-C during ``fit`` keeps the best weights reached (by validation
    accuracy with ``early_stopping``, else by training loss), stores every
    fitted attribute (``stopped_by_ == "interrupted"``), so the model can be
    used, and then raises :class:`skphase.nn.TrainingInterrupted` (a
    ``KeyboardInterrupt``) so that scripts and ``cross_validate`` stop.
    ``warm_start=True`` continues from there. The weights saved by a
    :class:`skphase.nn.Checkpoint` go back into a fitted estimator with
    ``skphase.nn.load_checkpoint(path, estimator)``, i.e.
    ``estimator.module_.load_state_dict(torch.load(path)["module"])``.

    References
    ----------
    F. Guth, J. Zarka, S. Mallat. "Phase Collapse in Neural Networks". ICLR 2022.

    Examples
    --------
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skphase import PhaseCollapse
    >>> from skphase.datasets import load_digits_images
    >>> X, y = load_digits_images()
    >>> pipe = make_pipeline(PhaseCollapse(widths=(16, 32), max_iter=2, device="cpu", random_state=0),
    ...                      LogisticRegression(max_iter=200))
    >>> pipe.fit(X[:300], y[:300]).score(X[300:400], y[300:400]) > 0.5
    True
    """

    classes_: np.ndarray  # set by fit

    _parameter_constraints = {
        "widths": [Interval(numbers.Integral, 1, None, closed="left"), "array-like"],
        "n_blocks": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "L": [Interval(numbers.Integral, 1, None, closed="left")],
        "nonlinearity": [StrOptions(set(NONLINEARITIES))],
        "variant": [StrOptions(set(VARIANTS))],
        "factorized": ["boolean"],
        "max_iter": [Interval(numbers.Integral, 0, None, closed="left")],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "learning_rate_init": [Interval(numbers.Real, 0, None, closed="neither")],
        "momentum": [Interval(numbers.Real, 0, 1, closed="left")],
        "weight_decay": [Interval(numbers.Real, 0, None, closed="left")],
        "optimizer": [StrOptions(set(OPTIMIZERS)), type],
        "optimizer_params": [dict, None],
        "schedule": [StrOptions(set(SCHEDULES))],
        "schedule_params": [dict, None],
        "augmentation": [StrOptions({a for a in AUGMENTATIONS if a}), None],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(numbers.Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(numbers.Integral, 1, None, closed="left")],
        "tol": [Interval(numbers.Real, 0, None, closed="left")],
        "max_time": [Interval(numbers.Real, 0, None, closed="neither"), None],
        "callbacks": [list, None],
        "precision": [StrOptions(set(PRECISIONS))],
        "memory_efficient": ["boolean"],
        "compile": ["boolean"],
        "warm_start": ["boolean"],
        "image_shape": ["array-like", None],
        "device": [str, torch.device],
        "num_workers": [Interval(numbers.Integral, 0, None, closed="left")],
        "class_weight": [StrOptions({"balanced"}), dict, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        *,
        widths: int | Sequence[int] = (32, 64, 128),
        n_blocks: int | None = None,
        L: int = 4,
        nonlinearity: str = "modulus",
        variant: str = "lscat+skip",
        factorized: bool = False,
        max_iter: int = 20,
        batch_size: int = 128,
        learning_rate_init: float = 0.05,
        momentum: float = 0.9,
        weight_decay: float = 1e-4,
        optimizer: str | type[torch.optim.Optimizer] = "sgd",
        optimizer_params: dict | None = None,
        schedule: str = "cosine",
        schedule_params: dict | None = None,
        augmentation: str | None = None,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 5,
        tol: float = 1e-4,
        max_time: float | None = None,
        callbacks: Sequence[Callback | Callable] | None = None,
        precision: str = "float32",
        memory_efficient: bool = False,
        compile: bool = False,
        warm_start: bool = False,
        image_shape: tuple[int, ...] | None = None,
        device: str | torch.device = "auto",
        num_workers: int = 0,
        class_weight: dict | str | None = None,
        random_state: int | np.random.RandomState | None = None,
        verbose: int = 0,
    ):
        self.widths = widths
        self.n_blocks = n_blocks
        self.L = L
        self.nonlinearity = nonlinearity
        self.variant = variant
        self.factorized = factorized
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.optimizer = optimizer
        self.optimizer_params = optimizer_params
        self.schedule = schedule
        self.schedule_params = schedule_params
        self.augmentation = augmentation
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.max_time = max_time
        self.callbacks = callbacks
        self.precision = precision
        self.memory_efficient = memory_efficient
        self.compile = compile
        self.warm_start = warm_start
        self.image_shape = image_shape
        self.device = device
        self.num_workers = num_workers
        self.class_weight = class_weight
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ set-up
    def _block_channels(self):
        if is_integer(self.widths):
            return [int(self.widths)] * (self.n_blocks or 1)
        block_channels = list(self.widths)
        if not block_channels or not all(_is_whole(w) and w >= 1 for w in block_channels):
            raise ValueError(f"widths must be positive integers (one per block), got {self.widths!r}.")
        block_channels = [int(w) for w in block_channels]
        if self.n_blocks is not None and self.n_blocks != len(block_channels):
            raise ValueError(
                f"n_blocks={self.n_blocks} but widths has {len(block_channels)} entries; give one width per "
                "block or an int width."
            )
        return block_channels

    def _architecture(self, block_channels):
        """The parameters that shape the network, as a warm start must find them again."""
        return {"widths": tuple(block_channels), "n_blocks": self.n_blocks, "L": self.L,
                "nonlinearity": self.nonlinearity, "variant": self.variant, "factorized": bool(self.factorized)}

    def _check_warm_architecture(self, block_channels):
        fitted = self._fitted_architecture
        current = self._architecture(block_channels)
        changed = [name for name in ("L", "nonlinearity", "variant", "factorized") if current[name] != fitted[name]]
        if current["widths"] != fitted["widths"]:
            changed.append("n_blocks" if current["n_blocks"] != fitted["n_blocks"] else "widths")
        if changed:
            name = changed[0]
            raise ValueError(
                f"warm_start=True continues the fitted network, but {name} changed since it was fitted "
                f"({fitted[name]!r} -> {current[name]!r}); set {name} back, or set warm_start=False to train "
                "a new network."
            )

    def _check_image_size(self, n_blocks):
        _, height, width = self.image_shape_
        needed = 2 ** count_subsamplings(n_blocks, self.factorized)
        # A side of length 1 (a 1-D signal) is never subsampled.
        if any(1 < side < needed for side in (height, width)):
            raise min_image_size_error(
                (height, width), (needed, needed),
                f"{n_blocks} block(s) with {count_subsamplings(n_blocks, self.factorized)} subsampling(s) by 2",
            )

    def _encode_targets(self, y, n_samples):
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None.")
        y = column_or_1d(y, warn=True)
        if len(y) != n_samples:
            raise ValueError(f"X has {n_samples} samples but y has {len(y)}.")
        check_classification_targets(y)
        encoder = LabelEncoder().fit(y)
        if len(encoder.classes_) < 2:
            raise ValueError(
                f"{type(self).__name__} needs samples of at least 2 classes in the data; got only one "
                f"class: {encoder.classes_[0]!r}."
            )
        return encoder

    # ---------------------------------------------------------------- training
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(
        self,
        X: ArrayLike | torch.utils.data.Dataset,
        y: ArrayLike | None = None,
        sample_weight: ArrayLike | None = None,
    ) -> ScatteringPhaseCollapse:
        """Train the network end to end on images ``X`` with labels ``y``.

        Parameters
        ----------
        X : array-like, torch.Tensor or torch.utils.data.Dataset
            ``(n, C, H, W)``, ``(n, H, W)`` or flat ``(n, d)`` (see ``image_shape``),
            in any numeric dtype (read batch by batch), or a map-style Dataset of
            images or of ``(image, label)`` pairs (read with ``num_workers``).
        y : array-like of shape (n,) or None
            Labels; None takes those of a Dataset of ``(image, label)`` pairs.
        sample_weight : array-like of shape (n,) or None
            Weight of each image in the training loss (weighted cross-entropy), multiplied by
            the weights of ``class_weight``; with ``early_stopping`` the validation accuracy
            stays unweighted. Routed by ``set_fit_request(sample_weight=True)`` in a pipeline.

        Returns
        -------
        self
            The fitted estimator.

        Raises
        ------
        skphase.nn.TrainingInterrupted
            On Ctrl-C, after storing the best model reached (see Notes).
        """
        if self.batch_size < 2:
            raise ValueError(
                f"batch_size={self.batch_size} is too small for training: the standardisation of every block "
                "needs the statistics of at least 2 images per batch; use batch_size >= 2 (e.g. 32 or 128)."
            )
        warm = self.warm_start and hasattr(self, "module_")
        block_channels = self._block_channels()
        if warm:
            self._check_warm_architecture(block_channels)
        source = self._validate_source(X, reset=not warm, min_samples=2, num_workers=self.num_workers)
        if y is None:
            y = source.labels()
        encoder = self._encode_targets(y, source.n_samples)
        if warm and not np.array_equal(encoder.classes_, self.classes_):
            raise ValueError("warm_start needs the classes of the first fit; got different classes.")
        self.classes_ = encoder.classes_
        labels = torch.as_tensor(encoder.transform(column_or_1d(y)), dtype=torch.int64)
        weights = fit_sample_weights(sample_weight, source.n_samples, y=y, class_weight=self.class_weight)
        self._check_image_size(len(block_channels))
        device = self._resolve_device()
        check_precision(self.precision, device)
        kind = optimizer_class(self.optimizer)
        optimizer_kind = f"{kind.__module__}.{kind.__qualname__}"
        generator = make_generator(self.random_state)
        if not warm:
            self.module_ = PhaseCollapseNet(
                self.image_shape_[0], self.image_shape_[1:], block_channels, len(self.classes_), L=self.L,
                nonlinearity=self.nonlinearity, variant=self.variant, factorized=self.factorized,
                generator=generator,
            )
            self._fitted_architecture = self._architecture(block_channels)
            self.n_iter_ = 0
            self.loss_curve_: list[float] = []
            self.validation_scores_: list[float] = []
            self._optimizer_state = None
        self.module_.to(device)
        self.module_.memory_efficient = self.memory_efficient  # warm starts follow the parameter too
        source, labels, validation, weights = self._split_validation(source, labels, generator, weights)
        # The optimizer state resumes only an optimizer of the same kind.
        resumed = self._optimizer_state if getattr(self, "_optimizer_kind", None) == optimizer_kind else None
        callbacks = list(self.callbacks or []) + ([EpochLogger()] if self.verbose >= 2 else [])
        try:
            result = train_classifier(
                self.module_, source, labels, validation=validation, optimizer=self.optimizer,
                optimizer_params=self.optimizer_params, max_iter=self.max_iter, batch_size=self.batch_size,
                learning_rate=self.learning_rate_init, momentum=self.momentum, weight_decay=self.weight_decay,
                schedule=self.schedule, schedule_params=self.schedule_params, augmentation=self.augmentation,
                n_iter_no_change=self.n_iter_no_change if self.early_stopping else None, tol=self.tol,
                max_time=self.max_time, generator=generator, device=device, precision=self.precision,
                optimizer_state=resumed, callbacks=callbacks, owner=self, sample_weight=weights,
                compile=self.compile, progress=epoch_progress(self.verbose, self.max_iter, self.n_iter_),
                epochs_done=self.n_iter_,
            )
        except TrainingInterrupted as interrupt:
            self._store_training(interrupt.result, block_channels, optimizer_kind)
            if self.n_iter_ == 0:
                warnings.warn(
                    f"{type(self).__name__}.fit was interrupted before its first epoch ended: the network is "
                    "untrained (its initial random weights).", UserWarning,
                )
            raise
        self._store_training(result, block_channels, optimizer_kind)
        return self

    def _split_validation(self, source, labels, generator, weights=None):
        """``(train images, train labels, validation or None, train weights)``: the early-stopping split,
        stratified if it can be."""
        if not self.early_stopping:
            return source, labels, None, weights
        stratify = labels.numpy() if np.bincount(labels.numpy()).min() >= 2 else None
        train_idx, val_idx = train_test_split(
            np.arange(source.n_samples), test_size=self.validation_fraction,
            random_state=int(torch.randint(0, 2**31 - 1, (1,), generator=generator)), stratify=stratify,
        )
        return (source.subset(train_idx), labels[train_idx], (source.subset(val_idx), labels[val_idx]),
                None if weights is None else weights[train_idx])

    def _store_training(self, result, block_channels, optimizer_kind):
        """Record what a training run did in the fitted attributes (after it ended or was interrupted)."""
        self._optimizer_state, self._optimizer_kind = result.optimizer_state, optimizer_kind
        self.n_iter_ += result.n_iter
        self.loss_curve_ = self.loss_curve_ + result.loss_curve
        self.validation_scores_ = self.validation_scores_ + result.validation_scores
        self.best_loss_ = min(self.loss_curve_) if self.loss_curve_ else float("nan")
        self.best_validation_score_ = max(self.validation_scores_) if self.validation_scores_ else None
        self.stopped_by_ = result.stopped_by
        self.training_time_ = result.elapsed
        self.recalibration_time_ = result.recalibration_time
        self.block_shapes_ = [self._block_shape(i) for i in range(len(block_channels))]
        self._n_features_out = int(np.prod(self.module_.output_shape))

    def _block_shape(self, index):
        height, width = self.image_shape_[1:]
        for block in self.module_.blocks[: index + 1]:
            height, width = block.wavelets.output_size(height), block.wavelets.output_size(width)
        return (height, width, 2 * self.module_.blocks[index].out_channels)

    # --------------------------------------------------------------- inference
    def _run(self, X, fn, desc):
        """``fn`` over the images of ``X``, batch by batch under the ``precision`` autocast; float32 numpy out."""
        check_is_fitted(self)
        source = self._validate_source(X, reset=False, num_workers=self.num_workers)
        precision = check_precision(self.precision, self.device_)
        self.module_.to(self.device_).eval()

        def run(batch):
            with autocast(self.device_, precision):
                out = fn(batch)
            return tuple(o.float() for o in out) if isinstance(out, tuple) else out.float()

        out = map_batches(run, source, batch_size=self.batch_size, device=self.device_,
                          progress=progress_bar(self.verbose, desc), check_finite=f"{type(self).__name__}.{desc}")
        return tuple(_as_numpy(o) for o in out) if isinstance(out, tuple) else _as_numpy(out)

    def transform(self, X: ArrayLike | torch.utils.data.Dataset) -> np.ndarray:
        """Compute the learned representation: the last block's output, flattened.

        Parameters
        ----------
        X : array-like, torch.Tensor or torch.utils.data.Dataset
            Images of the shape seen in ``fit`` (a Dataset may yield ``(image, label)`` pairs).

        Returns
        -------
        ndarray of shape (n, n_features_out), float32
            One row per image, in the order of :meth:`get_feature_names_out`.
        """
        return self._run(X, lambda b: self.module_.features(b).flatten(1), "transform")

    def transform_blocks(self, X: ArrayLike | torch.utils.data.Dataset) -> list[np.ndarray]:
        """Compute every block's output, for layer-by-layer measurements.

        Parameters
        ----------
        X : array-like, torch.Tensor or torch.utils.data.Dataset
            Images of the shape seen in ``fit``.

        Returns
        -------
        list of ndarray
            One ``(n, H_k * W_k * 2 * widths[k])`` float32 array per block
            (shapes in ``block_shapes_``).
        """
        outputs = self._run(
            X, lambda b: tuple(o.flatten(1) for o in self.module_.features(b, all_blocks=True)),
            "transform_blocks",
        )
        return list(outputs)

    def _logits(self, X):
        check_is_fitted(self)
        return self._run(X, self.module_, "predict")

    def decision_function(self, X: ArrayLike | torch.utils.data.Dataset) -> np.ndarray:
        """Compute the logits of the trained linear head.

        Parameters
        ----------
        X : array-like, torch.Tensor or torch.utils.data.Dataset
            Images of the shape seen in ``fit``.

        Returns
        -------
        ndarray of shape (n, n_classes) or (n,)
            The logits; for two classes, that of the second class minus that of the first.
        """
        logits = self._logits(X)
        return logits[:, 1] - logits[:, 0] if len(self.classes_) == 2 else logits

    def predict_proba(self, X: ArrayLike | torch.utils.data.Dataset) -> np.ndarray:
        """Compute the class probabilities from the trained head (softmax of the logits).

        Parameters
        ----------
        X : array-like, torch.Tensor or torch.utils.data.Dataset
            Images of the shape seen in ``fit``.

        Returns
        -------
        ndarray of shape (n, n_classes)
            Probabilities of the classes of ``classes_``.
        """
        return torch.softmax(torch.from_numpy(self._logits(X)), dim=1).numpy()

    def predict(self, X: ArrayLike | torch.utils.data.Dataset) -> np.ndarray:
        """Predict the class labels from the trained head.

        Parameters
        ----------
        X : array-like, torch.Tensor or torch.utils.data.Dataset
            Images of the shape seen in ``fit``.

        Returns
        -------
        ndarray of shape (n,)
            Labels from ``classes_``.
        """
        logits = self._logits(X)
        return self.classes_[np.argmax(logits, axis=1)]

    def get_feature_names_out(self, input_features: ArrayLike | None = None) -> np.ndarray:
        """Get the names ``blockK_y{i}_x{j}_{re|im}{c}`` of the output features.

        Parameters
        ----------
        input_features : None
            Ignored; present for scikit-learn's API.

        Returns
        -------
        ndarray of str
            One name per feature, in ``transform``'s order.
        """
        check_is_fitted(self)
        height, width, channels = self.block_shapes_[-1]
        half = channels // 2
        parts = [f"re{c}" for c in range(half)] + [f"im{c}" for c in range(half)]
        last = len(self.block_shapes_) - 1
        names = [f"block{last}_y{i}_x{j}_{p}" for i in range(height) for j in range(width) for p in parts]
        return np.asarray(names, dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.transformer_tags.preserves_dtype = ["float32"]  # computations run in float32
        tags.non_deterministic = False
        return tags


#: Short name of :class:`ScatteringPhaseCollapse`.
PhaseCollapse = ScatteringPhaseCollapse
