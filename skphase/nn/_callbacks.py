"""Callbacks of the training loop: what happened in an epoch, and built-ins that act on it.

A callback is a callable ``cb(owner, info)`` or an object with
``on_epoch_end(owner, info)`` and, optionally, ``on_train_begin(owner)`` and
``on_train_end(owner, result)``. ``owner`` is whatever the caller of
:func:`~skphase.nn.train_classifier` passed (the estimator being fitted, for
skphase estimators); ``info`` is an :class:`EpochInfo`. A callback that returns
True from ``on_epoch_end`` stops training after that epoch.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

import torch

if TYPE_CHECKING:  # _training imports this module
    from ._training import TrainingResult

__all__ = ["EpochInfo", "Callback", "Checkpoint", "EpochLogger", "StopAfter", "load_checkpoint"]


@dataclass
class EpochInfo:
    """What one training epoch did, handed to every callback at its end.

    Parameters
    ----------
    epoch : int
        Number of the epoch, from 1 (counting the epochs of earlier warm starts).
    loss : float
        Mean training loss over the epoch.
    validation_score : float or None
        Validation accuracy after the epoch (None without validation data).
    learning_rate : float
        Learning rate of the epoch.
    epoch_time : float
        Seconds the epoch took, its validation included.
    elapsed : float
        Seconds since training started.
    is_best : bool
        Whether this epoch improved on the best one so far (validation accuracy,
        or training loss without validation, by more than ``tol``).
    module : torch.nn.Module
        The module being trained.
    optimizer : torch.optim.Optimizer
        The optimizer of the training.

    See Also
    --------
    Callback : receives it at the end of every epoch.

    Examples
    --------
    >>> from skphase.nn import EpochInfo
    >>> info = EpochInfo(epoch=1, loss=0.7, validation_score=None, learning_rate=0.1, epoch_time=2.0,
    ...                  elapsed=2.0, is_best=True)
    >>> info.epoch, info.is_best
    (1, True)
    """

    epoch: int
    loss: float
    validation_score: Optional[float]
    learning_rate: float
    epoch_time: float
    elapsed: float
    is_best: bool
    module: Any = None
    optimizer: Any = None


class Callback:
    """Base class of callbacks; every hook does nothing. Subclasses override what they need.

    A callback is passed to :func:`train_classifier` (or an estimator's ``callbacks``); plain
    callables ``cb(owner, info)`` are called at the end of every epoch as ``on_epoch_end``.

    See Also
    --------
    Checkpoint, EpochLogger, StopAfter : the callbacks skphase provides.
    EpochInfo : what ``on_epoch_end`` receives.

    Examples
    --------
    >>> from skphase.nn import Callback
    >>> class StopBelow(Callback):
    ...     def on_epoch_end(self, owner, info):
    ...         return info.loss < 0.1
    """

    def on_train_begin(self, owner: object) -> None:
        """Run once before the first epoch.

        Parameters
        ----------
        owner : object
            The estimator being fitted, or the ``owner`` passed to :func:`train_classifier`.
        """

    def on_epoch_end(self, owner: object, info: EpochInfo) -> bool | None:
        """Run after every epoch.

        Parameters
        ----------
        owner : object
            The estimator being fitted, or the ``owner`` passed to :func:`train_classifier`.
        info : EpochInfo
            What the epoch did.

        Returns
        -------
        bool or None
            True stops training after this epoch.
        """

    def on_train_end(self, owner: object, result: TrainingResult) -> None:
        """Run once when training ends (not when it is interrupted).

        Parameters
        ----------
        owner : object
            The estimator being fitted, or the ``owner`` passed to :func:`train_classifier`.
        result : TrainingResult
            What the training did.
        """


class CallbackList:
    """The callbacks of one training run, called in order; internal to the training loop."""

    def __init__(self, callbacks):
        self.callbacks = list(callbacks or [])
        for callback in self.callbacks:
            if not (hasattr(callback, "on_epoch_end") or callable(callback)):
                raise TypeError(f"callbacks must be callables cb(estimator, info) or objects with an "
                                f"on_epoch_end(estimator, info) method; got {callback!r}.")

    def train_begin(self, owner):
        for callback in self.callbacks:
            if hasattr(callback, "on_train_begin"):
                callback.on_train_begin(owner)

    def epoch_end(self, owner, info):
        """Call every callback; True when one of them asks to stop."""
        stop = False
        for callback in self.callbacks:
            hook = callback.on_epoch_end if hasattr(callback, "on_epoch_end") else callback
            stop = bool(hook(owner, info)) or stop
        return stop

    def train_end(self, owner, result):
        for callback in self.callbacks:
            if hasattr(callback, "on_train_end"):
                callback.on_train_end(owner, result)


_MONITORS = ("validation_score", "loss")


def _monitored(monitor, info):
    if monitor == "loss":
        return info.loss
    if info.validation_score is None:
        raise ValueError(f"monitor={monitor!r} needs validation data (early_stopping=True in the estimator, "
                         "validation=... in train_classifier); use monitor='loss' without it.")
    return info.validation_score


class Checkpoint(Callback):
    """Save the module and optimizer states to a file with :func:`torch.save`.

    The file holds a dict: ``"module"`` and ``"optimizer"`` (state dicts),
    ``"epoch"``, ``"monitor"``, ``"value"`` (the monitored value at that epoch)
    and ``"history"`` (one dict per epoch seen so far: epoch, loss,
    validation_score, learning_rate).

    Parameters
    ----------
    path : str or os.PathLike
        File to write. It may hold ``{epoch}``, formatted with the epoch number,
        to keep one file per save instead of overwriting one.
    monitor : {"validation_score", "loss"}, default="validation_score"
        What "best" means: the highest validation accuracy (needs validation
        data) or the lowest training loss.
    every : int or None, default=None
        Also save every ``every`` epochs, best or not.
    save_best_only : bool, default=True
        Save only when the monitored value improves (and every ``every``
        epochs when given); False saves after every epoch.

    Attributes
    ----------
    best_ : float or None
        Best monitored value seen in the current training run.
    history_ : list of dict
        One entry per epoch of the current training run.
    saved_epochs_ : list of int
        Epochs at which a file was written.

    See Also
    --------
    load_checkpoint : read a checkpoint back into a model.

    Examples
    --------
    >>> import torch
    >>> from skphase import PhaseCollapse
    >>> from skphase.datasets import load_digits_images
    >>> from skphase.nn import Checkpoint
    >>> import tempfile, os
    >>> X, y = load_digits_images()
    >>> path = os.path.join(tempfile.mkdtemp(), "best.pt")
    >>> model = PhaseCollapse(widths=(8,), max_iter=2, device="cpu", random_state=0,
    ...                       callbacks=[Checkpoint(path, monitor="loss")]).fit(X[:200], y[:200])
    >>> _ = model.module_.load_state_dict(torch.load(path)["module"])  # back to the saved epoch
    """

    def __init__(
        self,
        path: str | os.PathLike,
        monitor: str = "validation_score",
        every: int | None = None,
        save_best_only: bool = True,
    ):
        if monitor not in _MONITORS:
            raise ValueError(f"monitor must be one of {_MONITORS}, got {monitor!r}.")
        if every is not None and (not isinstance(every, int) or isinstance(every, bool) or every < 1):
            raise ValueError(f"every must be a positive int or None, got {every!r}.")
        self.path, self.monitor, self.every, self.save_best_only = path, monitor, every, save_best_only

    def on_train_begin(self, owner):
        self.best_, self.history_, self.saved_epochs_ = None, [], []

    def on_epoch_end(self, owner, info):
        if not hasattr(self, "history_"):  # used without on_train_begin (a custom loop)
            self.on_train_begin(owner)
        value = _monitored(self.monitor, info)
        self.history_.append({"epoch": info.epoch, "loss": info.loss, "validation_score": info.validation_score,
                              "learning_rate": info.learning_rate})
        sign = 1.0 if self.monitor == "validation_score" else -1.0
        improved = self.best_ is None or sign * value > sign * self.best_
        if improved:
            self.best_ = value
        periodic = self.every is not None and info.epoch % self.every == 0
        if improved or periodic or not self.save_best_only:
            self.save(info, value)

    def save(self, info: EpochInfo, value: float | None) -> None:
        """Write the checkpoint of the epoch described by ``info``.

        Parameters
        ----------
        info : EpochInfo
            The epoch to save (its module and optimizer).
        value : float or None
            The monitored value at that epoch.
        """
        path = str(self.path).format(epoch=info.epoch)
        torch.save({
            "module": info.module.state_dict(),
            "optimizer": info.optimizer.state_dict() if info.optimizer is not None else None,
            "epoch": info.epoch, "monitor": self.monitor, "value": value, "history": list(self.history_),
        }, path)
        self.saved_epochs_.append(info.epoch)


def load_checkpoint(
    path: str | os.PathLike,
    target: object = None,
    *,
    map_location: str | torch.device = "cpu",
) -> dict[str, Any]:
    """Read a file written by :class:`Checkpoint`, and load its weights into ``target``.

    Parameters
    ----------
    path : str or os.PathLike
        The file written by :class:`Checkpoint`.
    target : fitted estimator, torch.nn.Module or None
        An estimator with a ``module_`` (e.g. a fitted ``PhaseCollapse`` of the
        same architecture) or a module; None only reads the file.
    map_location : str or torch.device, default="cpu"
        Where the tensors are loaded (as in :func:`torch.load`).

    Returns
    -------
    dict
        The checkpoint (``"module"``, ``"optimizer"``, ``"epoch"``, ``"history"``, ...).

    See Also
    --------
    Checkpoint : the callback that writes the file.

    Examples
    --------
    >>> import os, tempfile, torch
    >>> from skphase.nn import load_checkpoint
    >>> path = os.path.join(tempfile.mkdtemp(), "net.pt")
    >>> torch.save({"module": torch.nn.Linear(2, 1).state_dict(), "epoch": 3}, path)
    >>> load_checkpoint(path, torch.nn.Linear(2, 1))["epoch"]
    3
    """
    checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    if target is not None:
        module = getattr(target, "module_", target)
        if not isinstance(module, torch.nn.Module):
            raise TypeError(f"target must be a fitted estimator with a module_ or a torch module, got {target!r}.")
        module.load_state_dict(checkpoint["module"])
    return checkpoint


class EpochLogger(Callback):
    """One :mod:`logging` line per epoch: epoch, loss, validation accuracy, learning rate, time.

    Lines go to ``logging.getLogger(logger)`` at ``level``; they are shown once
    logging is configured, e.g. ``logging.basicConfig(level=logging.INFO)``.

    Parameters
    ----------
    logger : str, default="skphase"
        Name of the logger.
    level : int, default=logging.INFO
        Level of the lines.

    See Also
    --------
    Checkpoint, StopAfter : the other callbacks.

    Examples
    --------
    >>> import logging
    >>> from skphase.nn import EpochLogger
    >>> callback = EpochLogger(level=logging.DEBUG)
    """

    def __init__(self, logger: str = "skphase", level: int = logging.INFO):
        self.logger, self.level = logger, level

    def on_epoch_end(self, owner, info):
        validation = "" if info.validation_score is None else f", validation accuracy {info.validation_score:.4f}"
        logging.getLogger(self.logger).log(
            self.level, "epoch %d: loss %.4f%s, lr %.3g, %.1f s (%.1f s in all)%s", info.epoch, info.loss,
            validation, info.learning_rate, info.epoch_time, info.elapsed, " *" if info.is_best else "",
        )


class StopAfter(Callback):
    """Stop training after a number of epochs, or once a target is reached.

    Parameters
    ----------
    epochs : int or None, default=None
        Stop after this many epochs of the training run.
    validation_score : float or None, default=None
        Stop once the validation accuracy reaches this value.
    loss : float or None, default=None
        Stop once the training loss falls to this value.

    See Also
    --------
    Checkpoint, EpochLogger : the other callbacks.

    Examples
    --------
    >>> from skphase.nn import StopAfter
    >>> callback = StopAfter(validation_score=0.99)  # stop once 99 % validation accuracy is reached
    """

    def __init__(
        self,
        epochs: int | None = None,
        *,
        validation_score: float | None = None,
        loss: float | None = None,
    ):
        self.epochs, self.validation_score, self.loss = epochs, validation_score, loss

    def on_train_begin(self, owner):
        self.n_epochs_ = 0

    def on_epoch_end(self, owner, info):
        self.n_epochs_ = getattr(self, "n_epochs_", 0) + 1
        if self.epochs is not None and self.n_epochs_ >= self.epochs:
            return True
        if self.loss is not None and info.loss <= self.loss:
            return True
        score = info.validation_score
        if self.validation_score is None or score is None or math.isnan(score):
            return False
        return score >= self.validation_score
