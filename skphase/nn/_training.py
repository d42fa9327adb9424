"""The training loop for torch image classifiers shared by skphase estimators.

It knows nothing of scikit-learn: it takes a module, images (an
:class:`~skphase.utils._sources.ImageSource` or a tensor) and labels, trains with
cross-entropy and returns what happened. Its parts, one job each:

- :func:`~skphase.nn._schedules.make_schedule`: the learning-rate factor from the
  fraction of the budget (epochs or wall-clock time) spent;
- :func:`~skphase.nn._optimizers.make_optimizer`: the optimizer, by name or class;
- :class:`BestState`: the best weights seen (validation accuracy, else training
  loss), and early stopping;
- :func:`run_epoch`: one pass over shuffled batches (augmentation, autocast
  forward, float32 loss, gradient scaling for float16, optimizer step);
- :func:`train_classifier`: the epochs, the budget, callbacks and interrupts.
"""

# This module runs past the ~500-line guide on purpose: more than half of it is numpydoc
# docstrings with runnable examples; its code is one concern and under 350 lines.

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import ArrayLike

from ..utils._precision import autocast, check_precision
from ..utils._sources import ImageSource, as_image_source
from ._augment import AUGMENTATIONS, augment_batch
from ._callbacks import Callback, CallbackList, EpochInfo
from ._optimizers import make_optimizer
from ._recalibration import recalibrate_running_statistics
from ._schedules import SCHEDULES, budget_spent, make_schedule

__all__ = ["TrainingResult", "TrainingInterrupted", "BestState", "run_epoch", "evaluate_accuracy",
           "train_classifier", "AUGMENTATIONS", "SCHEDULES"]


@dataclass
class TrainingResult:
    """What :func:`train_classifier` did.

    Parameters
    ----------
    loss_curve : list of float
        Mean training loss of each epoch.
    validation_scores : list of float
        Validation accuracy after each epoch (empty without validation data).
    n_iter : int
        Epochs completed (the last one possibly cut short by a per-batch time budget).
    n_batches : int
        Batches trained, i.e. optimizer steps: ``n_batches / batches_per_epoch`` is the number of
        epochs, fractional when a per-batch time budget ended one mid-way.
    batches_per_epoch : int
        Batches in a full epoch.
    best_loss : float
        Lowest epoch training loss.
    best_validation_score : float or None
        Highest validation accuracy (None without validation data).
    stopped_by : str
        ``"max_iter"``, ``"early_stopping"``, ``"max_time"``, ``"callback"`` or ``"interrupted"``.
    elapsed : float
        Seconds spent training, the final statistics pass included.
    recalibration_time : float
        Seconds of the final statistics pass (``recalibrate``), 0 without it: ``elapsed`` less
        this is the time of the training loop, which ``max_time`` budgets.
    optimizer_state : dict
        State of the optimizer, to continue training.

    See Also
    --------
    train_classifier : returns it.
    TrainingInterrupted : carries it when training is interrupted.

    Examples
    --------
    >>> from skphase.nn import TrainingResult
    >>> TrainingResult(loss_curve=[0.9, 0.5], n_iter=2, best_loss=0.5).stopped_by
    'max_iter'
    """

    loss_curve: list = field(default_factory=list)
    validation_scores: list = field(default_factory=list)
    n_iter: int = 0
    n_batches: int = 0
    batches_per_epoch: int = 0
    best_loss: float = float("inf")
    best_validation_score: float | None = None
    stopped_by: str = "max_iter"
    elapsed: float = 0.0
    recalibration_time: float = 0.0
    optimizer_state: dict | None = None


class TrainingInterrupted(KeyboardInterrupt):
    """Training was interrupted (Ctrl-C); the module holds the best weights reached.

    A :class:`KeyboardInterrupt`, so that code which stops on Ctrl-C still stops.

    Parameters
    ----------
    result : TrainingResult
        What the epochs completed before the interrupt did (``stopped_by="interrupted"``).

    See Also
    --------
    train_classifier : raises it on Ctrl-C.

    Examples
    --------
    >>> from skphase.nn import TrainingInterrupted, TrainingResult
    >>> error = TrainingInterrupted(TrainingResult(n_iter=3, stopped_by="interrupted"))
    >>> isinstance(error, KeyboardInterrupt), error.result.n_iter
    (True, 3)
    """

    def __init__(self, result: TrainingResult):
        super().__init__(f"training interrupted after {result.n_iter} complete epoch(s); "
                         "the module holds the best weights reached")
        self.result = result

    def __reduce__(self):  # rebuilt from the result, e.g. when a worker process sends it back
        return type(self), (self.result,)


class BestState:
    """The best weights seen, and the count of epochs without improvement.

    "Best" is the highest validation accuracy when there is validation data,
    else the lowest training loss; an epoch improves when it beats the best by
    more than ``tol``. Until an epoch has completed, the weights held are those
    at the start, so that an interrupt in the first epoch leaves the module as
    it was rather than half-updated.

    Parameters
    ----------
    module : torch.nn.Module
    tol : float
    n_iter_no_change : int or None
        Epochs without improvement after which :attr:`should_stop` is True.
    """

    def __init__(self, module, *, tol, n_iter_no_change=None):
        self.tol, self.n_iter_no_change = tol, n_iter_no_change
        self.state, self.key, self.stale = _copy_state(module), None, 0

    def update(self, module, loss, validation_score=None):
        """Record an epoch; keep its weights when it is the best so far. Returns whether it is."""
        key = validation_score if validation_score is not None else -loss
        if self.key is None or key > self.key + self.tol:
            self.key, self.stale, self.state = key, 0, _copy_state(module)
            return True
        self.stale += 1
        return False

    @property
    def should_stop(self):
        return self.n_iter_no_change is not None and self.stale >= self.n_iter_no_change

    def restore(self, module):
        module.load_state_dict(self.state)


def _copy_state(module):
    return {name: value.detach().clone() for name, value in module.state_dict().items()}


def _drop_lone_last(order, batch_size):
    """Drop the last index when it would form a batch of one image (no batch statistics)."""
    if len(order) > 1 and len(order) % batch_size == 1:
        return order[:-1]
    return order


def run_epoch(module, optimizer, source, labels, order, *, batch_size, augmentation=None, generator=None,
              device="cpu", precision="float32", scaler=None, bar=None, before_batch=None, sample_weight=None,
              forward=None):
    """One epoch of cross-entropy training over the images of ``source`` in ``order``.

    Parameters
    ----------
    module : torch.nn.Module
        On ``device``.
    optimizer : torch.optim.Optimizer
    source : ImageSource
    labels : torch.Tensor
        int64 CPU labels of every image of ``source``.
    order : torch.Tensor
        Indices of the images to visit, a shuffled permutation. A last batch of
        a single image is left out: batch statistics need two.
    batch_size : int
    augmentation : {None, "crop", "crop+flip"}
    generator : torch.Generator or None
        CPU generator of the augmentation.
    device : torch.device
    precision : {"float32", "bfloat16", "float16"}
        The forward runs under :func:`torch.autocast` in this precision; the
        loss is computed in float32.
    scaler : torch.amp.GradScaler or None
        Scales the loss for float16 gradients.
    bar : tqdm bar or None
        Advanced by one per batch, with the running loss as its postfix.
    before_batch : callable or None
        Called with the number of the batch (from 0) before each one, e.g. to set its learning
        rate; a true return value ends the epoch before that batch.
    sample_weight : torch.Tensor or None
        float32 CPU weight of every image of ``source``, scaled to mean 1: each image's loss is
        multiplied by its weight, so that a batch's mean loss is an unbiased estimate of the
        weighted mean loss over the data.
    forward : callable or None
        What computes the logits of a batch in place of ``module`` (e.g. ``torch.compile(module)``,
        which shares its parameters).

    Returns
    -------
    loss : float
        Mean (weighted) loss over the images seen.
    n_batches : int
        Batches trained (fewer than the epoch's when ``before_batch`` ended it).
    """
    module.train()
    forward = module if forward is None else forward
    total, seen, n_batches = 0.0, 0, 0
    for batch, (index, images) in enumerate(source.batches(batch_size, _drop_lone_last(order, batch_size))):
        if before_batch is not None and before_batch(batch):
            break
        images = augment_batch(images.to(device, non_blocking=True), augmentation, generator)
        with autocast(device, precision):
            logits = forward(images)
        targets = labels[index].to(device, non_blocking=True)
        if sample_weight is None:
            loss = F.cross_entropy(logits.float(), targets)
        else:
            weights = sample_weight[index].to(device, non_blocking=True)
            loss = (F.cross_entropy(logits.float(), targets, reduction="none") * weights).mean()
        optimizer.zero_grad(set_to_none=True)
        if scaler is None:
            loss.backward()
            optimizer.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        total += loss.item() * len(index)
        seen += len(index)
        n_batches += 1
        if bar is not None:
            bar.set_postfix(loss=f"{total / seen:.4f}", refresh=False)
            bar.update(1)
    return total / max(seen, 1), n_batches


@torch.no_grad()
def evaluate_accuracy(
    module: torch.nn.Module,
    source: ImageSource,
    labels: ArrayLike,
    *,
    batch_size: int,
    device: str | torch.device = "cpu",
    precision: str = "float32",
) -> float:
    """Accuracy of ``module``'s argmax on the images of ``source``, in eval mode, batch by batch.

    Parameters
    ----------
    module : torch.nn.Module
        Maps images ``(n, C, H, W)`` to logits; already on ``device``.
    source : ImageSource
        The images (see :func:`skphase.utils.as_image_source`).
    labels : torch.Tensor or array-like of int
        The true class of each image, one per image.
    batch_size : int
        Images per forward pass.
    device : torch.device or str, default="cpu"
        Device of the module; the batches are sent there.
    precision : {"float32", "bfloat16", "float16"}, default="float32"
        Forward passes under :func:`torch.autocast` in this dtype.

    Returns
    -------
    float
        Fraction of the images whose largest logit is their label's.

    See Also
    --------
    train_classifier : the training loop that reports this accuracy on validation data.

    Examples
    --------
    >>> import torch
    >>> from skphase.nn import evaluate_accuracy
    >>> from skphase.utils import as_image_source
    >>> module = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
    >>> source = as_image_source(torch.randn(10, 1, 2, 2))
    >>> accuracy = evaluate_accuracy(module, source, torch.zeros(10, dtype=torch.int64), batch_size=4)
    >>> 0.0 <= accuracy <= 1.0
    True
    """
    true_labels = _as_labels(labels, source.n_samples, "labels")
    was_training = module.training
    module.eval()
    correct = 0
    for index, images in source.batches(batch_size):
        with autocast(device, precision):
            logits = module(images.to(device, non_blocking=True))
        correct += (logits.argmax(1).cpu() == true_labels[index]).sum().item()
    module.train(was_training)
    return correct / source.n_samples


def _as_labels(labels, n_samples, name):
    labels = torch.as_tensor(labels).to(torch.int64).cpu().reshape(-1)
    if labels.shape[0] != n_samples:
        raise ValueError(f"{name} has {n_samples} images but {labels.shape[0]} labels.")
    return labels


def train_classifier(
    module: torch.nn.Module,
    images: ImageSource | ArrayLike,
    labels: ArrayLike,
    *,
    validation: tuple[ImageSource | ArrayLike, ArrayLike] | None = None,
    optimizer: str | type[torch.optim.Optimizer] = "sgd",
    optimizer_params: dict | None = None,
    max_iter: int = 10,
    batch_size: int = 128,
    learning_rate: float = 0.01,
    momentum: float = 0.9,
    weight_decay: float = 1e-4,
    schedule: str = "cosine",
    schedule_params: dict | None = None,
    augmentation: str | None = None,
    n_iter_no_change: int | None = None,
    tol: float = 1e-4,
    max_time: float | None = None,
    generator: torch.Generator | None = None,
    device: str | torch.device = "cpu",
    precision: str = "float32",
    schedule_every: str = "epoch",
    optimizer_state: dict | None = None,
    callbacks: Sequence[Callback | Callable] | None = None,
    owner: object = None,
    progress: Callable[[int, int], Any] | None = None,
    epochs_done: int = 0,
    recalibrate: bool = True,
    sample_weight: ArrayLike | None = None,
    compile: bool = False,
) -> TrainingResult:
    """Train ``module`` with cross-entropy, epoch by epoch.

    Parameters
    ----------
    module : torch.nn.Module
        Maps images ``(n, C, H, W)`` to logits; already on ``device``.
    images : ImageSource, torch.Tensor or ndarray
        Training images; a tensor or array ``(n, C, H, W)`` is wrapped with
        :func:`~skphase.utils._sources.as_image_source`.
    labels : torch.Tensor or array-like of int
        Labels in ``[0, n_classes)``, one per image.
    validation : tuple (images, labels) or None
        Validation split: selects the best epoch (whose weights the module holds
        at the end) and drives early stopping.
    optimizer : {"sgd", "adam", "adamw"} or torch.optim.Optimizer subclass, default="sgd"
        The optimizer, by name (see ``OPTIMIZERS``) or class.
    optimizer_params : dict or None
        Extra keyword arguments of the optimizer; they override the ones below.
    max_iter : int
        Number of epochs.
    batch_size : int
        Images per training step.
    learning_rate : float
        Passed as ``lr``; the schedule multiplies it.
    momentum : float
        Passed only to optimizers that take it (SGD).
    weight_decay : float
        L2 penalty, passed to the optimizer.
    schedule : {"cosine", "step", "constant"}
        Learning-rate schedule over ``max_iter`` epochs (or ``max_time``,
        whichever ends first); see :func:`~skphase.nn._schedules.make_schedule`.
    schedule_params : dict or None
        ``{"step_size": epochs, "gamma": factor}`` for ``"step"``.
    augmentation : {None, "crop", "crop+flip"}
        Random crops (and flips) of every batch; see :func:`augment_batch`.
    n_iter_no_change : int or None
        Stop when the validation score (or the training loss without
        validation) has not improved by ``tol`` for this many epochs.
    tol : float
        Smallest improvement that counts, for early stopping and the best epoch.
    max_time : float or None
        Wall-clock budget in seconds: no epoch starts that would end past it (judged by the
        last epoch's duration), and the schedule runs over the budget when the time ends before
        the ``max_iter`` epochs do, so that the learning rate still anneals. With
        ``schedule_every="batch"`` training instead stops at the first batch that would start
        past the budget, mid-epoch if need be, when the schedule has run its course: the
        budget is spent to the batch (an equal wall-clock comparison).
    generator : torch.Generator or None
        CPU generator for shuffling and augmentation.
    device : torch.device or str
        Device the module is on; the batches are sent there.
    precision : {"float32", "bfloat16", "float16"}
        Forward passes under :func:`torch.autocast`; float16 (CUDA only) scales
        the loss with :class:`torch.amp.GradScaler`.
    schedule_every : {"epoch", "batch"}, default="epoch"
        Set the learning rate once per epoch (the estimators' behaviour), or
        before every batch from the fraction of the budget spent then (as
        ``torch.optim.lr_scheduler`` schedulers stepped every batch do).
    optimizer_state : dict or None
        Resumes the optimizer (momentum buffers, moments) of an earlier call
        with the same optimizer class.
    callbacks : list or None
        Callables ``cb(owner, info)`` or objects with ``on_epoch_end(owner, info)``
        (see :class:`Callback`); one returning True stops training.
    owner : object
        Passed to the callbacks as their first argument (the estimator).
    progress : callable or None
        ``progress(epoch, n_batches)`` returns a bar (tqdm-like: ``update``,
        ``set_postfix``, ``close``) for one epoch, or None.
    epochs_done : int
        Epochs run by earlier calls (warm starts): epoch numbers continue from it.
    recalibrate : bool, default=True
        After the last epoch, recompute the running statistics of the batch-normalising layers
        from the final weights with one pass over the training images
        (:func:`~skphase.nn.recalibrate_running_statistics`), so that eval-mode outputs use
        statistics of the network as trained rather than a lagging average. Not done after an
        interruption.
    sample_weight : array-like of shape (n,) or None
        Non-negative weight of each training image in the loss (scaled to mean 1; the
        validation accuracy stays unweighted).
    compile : bool, default=False
        Train through ``torch.compile(module, dynamic=False)``: the compiler fuses the
        element-wise passes of the forward and the backward and chooses what the backward
        keeps. The first batch (and a smaller last one) pays the compilation; a C++ compiler
        is needed on the CPU, Triton on CUDA. Validation, the statistics pass and the
        returned module run eagerly.

    Returns
    -------
    TrainingResult
        The module holds the best weights seen when there is validation data,
        else those of the last epoch; it is left in eval mode.

    Raises
    ------
    TrainingInterrupted
        On ``KeyboardInterrupt``: the module holds the best weights seen (those
        at the start if no epoch completed) and the exception carries the result.
    FloatingPointError
        When the loss of an epoch is not finite.

    See Also
    --------
    evaluate_accuracy : the accuracy of the trained module.
    Callback : observe or stop the training epoch by epoch.
    skphase.ScatteringPhaseCollapse : the estimator that trains a network with this loop.

    Examples
    --------
    >>> import torch
    >>> from skphase.nn import train_classifier
    >>> torch.manual_seed(0) and None
    >>> images, labels = torch.randn(64, 1, 4, 4), torch.arange(64) % 2
    >>> images[labels == 1] += 1.0
    >>> module = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 2))
    >>> result = train_classifier(module, images, labels, max_iter=3, batch_size=16, learning_rate=0.1)
    >>> result.n_iter, len(result.loss_curve)
    (3, 3)
    """
    if schedule_every not in ("epoch", "batch"):
        raise ValueError(f"schedule_every must be 'epoch' or 'batch', got {schedule_every!r}.")
    if augmentation not in AUGMENTATIONS:
        raise ValueError(f"augmentation must be one of {AUGMENTATIONS}, got {augmentation!r}.")
    factor = make_schedule(schedule, max_iter, schedule_params)
    check_precision(precision, device)
    source = as_image_source(images, name="images")
    labels = _as_labels(labels, source.n_samples, "images")
    weights = _as_weights(sample_weight, source.n_samples)
    if validation is not None:
        val_source = as_image_source(validation[0], name="validation images")
        val_labels = _as_labels(validation[1], val_source.n_samples, "validation images")
    opt, base_lr = make_optimizer(module.parameters(), optimizer, learning_rate=learning_rate, momentum=momentum,
                                  weight_decay=weight_decay, optimizer_params=optimizer_params, state=optimizer_state)
    scaler = torch.amp.GradScaler("cuda") if precision == "float16" else None
    best = BestState(module, tol=tol, n_iter_no_change=n_iter_no_change)
    forward = torch.compile(module, dynamic=False) if compile else module
    callback_list = CallbackList(callbacks)
    n_batches = -(-len(_drop_lone_last(range(source.n_samples), batch_size)) // batch_size)
    result = TrainingResult(batches_per_epoch=n_batches)
    start = time.perf_counter()
    bar = None

    def per_batch(epoch):
        if schedule_every == "epoch":
            return None

        def before_batch(batch):
            elapsed = time.perf_counter() - start
            if max_time is not None and elapsed >= max_time and batch > 0:
                return True  # the budget is spent: stop before this batch
            _set_lr(opt, base_lr * factor(budget_spent(epoch + batch / n_batches, max_iter, elapsed, max_time)))
            return False

        return before_batch

    try:
        callback_list.train_begin(owner)
        for epoch in range(max_iter):
            epoch_start = time.perf_counter()
            lr = base_lr * factor(budget_spent(epoch, max_iter, epoch_start - start, max_time))
            _set_lr(opt, lr)
            order = torch.randperm(source.n_samples, generator=generator)
            bar = progress(epochs_done + epoch + 1, n_batches) if progress is not None else None
            loss, batches_run = run_epoch(
                module, opt, source, labels, order, batch_size=batch_size, augmentation=augmentation,
                generator=generator, device=device, precision=precision, scaler=scaler, bar=bar,
                before_batch=per_batch(epoch), sample_weight=weights, forward=forward)
            if not torch.isfinite(torch.tensor(loss)):
                raise FloatingPointError(f"Training diverged at epoch {epoch + 1} (loss {loss}); lower the "
                                         "learning rate (learning_rate_init).")
            score = None
            if validation is not None:
                score = evaluate_accuracy(module, val_source, val_labels, batch_size=batch_size, device=device,
                                          precision=precision)
                result.validation_scores.append(score)
                result.best_validation_score = max(result.validation_scores)
            is_best = best.update(module, loss, score)
            result.loss_curve.append(loss)
            result.n_iter = epoch + 1
            result.n_batches += batches_run
            result.best_loss = min(result.best_loss, loss)
            if bar is not None:
                bar.set_postfix(loss=f"{loss:.4f}", **({} if score is None else {"val_acc": f"{score:.4f}"}))
                bar.close()
                bar = None
            now = time.perf_counter()
            info = EpochInfo(epoch=epochs_done + epoch + 1, loss=loss, validation_score=score, learning_rate=lr,
                             epoch_time=now - epoch_start, elapsed=now - start, is_best=is_best, module=module,
                             optimizer=opt)
            if callback_list.epoch_end(owner, info):
                result.stopped_by = "callback"
                break
            if best.should_stop:
                result.stopped_by = "early_stopping"
                break
            now = time.perf_counter()
            # Per-batch schedules stop at the batch where the budget ends (an epoch cut short), the
            # others at the epoch that would end past it.
            next_epoch = 0.0 if schedule_every == "batch" else now - epoch_start
            if batches_run < n_batches or (max_time is not None and epoch + 1 < max_iter
                                           and (now - start) + next_epoch >= max_time):
                result.stopped_by = "max_time"
                break
    except KeyboardInterrupt:
        result.stopped_by = "interrupted"
        # The interrupted epoch left the weights half-updated: go back to the best ones.
        _finish(module, opt, best, result, start, restore=True)
        raise TrainingInterrupted(result) from None
    finally:
        if bar is not None:  # an epoch ended by an exception
            bar.close()
    _finish(module, opt, best, result, start, restore=validation is not None)
    if recalibrate and result.n_iter > 0:
        loop_end = time.perf_counter()
        recalibrate_running_statistics(module, source, batch_size=batch_size, device=device, precision=precision)
        module.eval()
        result.elapsed = time.perf_counter() - start
        result.recalibration_time = result.elapsed - (loop_end - start)
    callback_list.train_end(owner, result)
    return result


def _as_weights(sample_weight, n_samples):
    """Per-image weights as a float32 CPU tensor of mean 1, or None; clear errors for bad ones."""
    if sample_weight is None:
        return None
    weights = torch.as_tensor(np.asarray(sample_weight, dtype=np.float64)).reshape(-1)
    if weights.shape[0] != n_samples:
        raise ValueError(f"sample_weight has {weights.shape[0]} values for {n_samples} images; give one per image.")
    if not torch.isfinite(weights).all() or (weights < 0).any() or not weights.sum() > 0:
        raise ValueError("sample_weight must be finite, non-negative and not all zero.")
    return (weights / weights.mean()).to(torch.float32)


def _set_lr(optimizer, lr):
    for group in optimizer.param_groups:
        group["lr"] = lr


def _finish(module, optimizer, best, result, start, *, restore):
    result.elapsed = time.perf_counter() - start
    if restore:
        best.restore(module)
    module.eval()
    result.optimizer_state = optimizer.state_dict()
