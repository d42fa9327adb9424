"""A mini-batch SGD loop for torch image classifiers, shared by skphase estimators.

It knows nothing of scikit-learn: it takes tensors and a module, trains with
cross-entropy, and returns what happened. It keeps the best weights seen (on
the validation split when there is one, else on the training loss), stops
early when asked, honours a wall-clock budget, and on ``KeyboardInterrupt``
returns the best model reached so far instead of losing the run.
"""

import copy
import math
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

__all__ = ["TrainingResult", "train_classifier", "augment_batch", "SCHEDULES", "AUGMENTATIONS"]

SCHEDULES = ("cosine", "step", "constant")
AUGMENTATIONS = (None, "crop", "crop+flip")


@dataclass
class TrainingResult:
    """What :func:`train_classifier` did.

    Attributes
    ----------
    loss_curve : list of float
        Mean training loss of each epoch.
    validation_scores : list of float
        Validation accuracy after each epoch (empty without validation data).
    n_iter : int
        Epochs completed.
    best_loss : float
        Lowest epoch training loss.
    best_validation_score : float or None
    stopped_by : str
        ``"max_iter"``, ``"early_stopping"``, ``"max_time"`` or ``"interrupted"``.
    elapsed : float
        Seconds spent training.
    optimizer_state : dict
        State of the optimizer, to continue training.
    """

    loss_curve: list = field(default_factory=list)
    validation_scores: list = field(default_factory=list)
    n_iter: int = 0
    best_loss: float = float("inf")
    best_validation_score: float = None
    stopped_by: str = "max_iter"
    elapsed: float = 0.0
    optimizer_state: dict = None


def augment_batch(images, augmentation, generator):
    """Random crops after zero padding by ``H // 8`` pixels, and optional horizontal flips.

    Parameters
    ----------
    images : torch.Tensor of shape (n, C, H, W)
    augmentation : {None, "crop", "crop+flip"}
    generator : torch.Generator
        A CPU generator; draws are made on the CPU so results do not depend on the device.

    Returns
    -------
    torch.Tensor
        Augmented images, same shape and device.
    """
    if augmentation is None:
        return images
    n, _, height, width = images.shape
    pad_h, pad_w = height // 8, width // 8
    device = images.device
    if pad_h or pad_w:
        padded = F.pad(images, (pad_w, pad_w, pad_h, pad_h))
        off_h = torch.randint(0, 2 * pad_h + 1, (n,), generator=generator).to(device)
        off_w = torch.randint(0, 2 * pad_w + 1, (n,), generator=generator).to(device)
        rows = (torch.arange(height, device=device)[None] + off_h[:, None])[:, None, :, None]
        cols = (torch.arange(width, device=device)[None] + off_w[:, None])[:, None, None, :]
        batch = torch.arange(n, device=device)[:, None, None, None]
        channels = torch.arange(images.shape[1], device=device)[None, :, None, None]
        images = padded[batch, channels, rows, cols]
    if augmentation == "crop+flip":
        flip = (torch.rand(n, generator=generator) < 0.5).to(device)[:, None, None, None]
        images = torch.where(flip, images.flip(-1), images)
    return images


def _budget_spent(epoch, max_iter, elapsed, max_time):
    """Fraction of the training budget spent when an epoch starts: of the epochs, or of the time if larger."""
    spent = epoch / max(max_iter, 1)
    if max_time is not None:
        spent = max(spent, elapsed / max_time)
    return min(spent, 1.0)


def _learning_rate_factor(schedule, spent):
    """Learning-rate multiplier once a fraction ``spent`` of the budget is used."""
    if schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * spent))
    if schedule == "step":  # x0.1 at 1/3 and 2/3 of the run (70/300 epochs-like steps).
        return 0.1 ** math.floor(3 * spent + 1e-9)
    return 1.0


@torch.no_grad()
def accuracy(module, X, y, *, batch_size, device):
    """Accuracy of ``module``'s argmax on ``(X, y)``, in eval mode, batch by batch."""
    was_training = module.training
    module.eval()
    correct = 0
    for start in range(0, X.shape[0], batch_size):
        logits = module(X[start:start + batch_size].to(device))
        correct += (logits.argmax(1).cpu() == y[start:start + batch_size]).sum().item()
    module.train(was_training)
    return correct / X.shape[0]


def train_classifier(module, X, y, *, X_val=None, y_val=None, max_iter=10, batch_size=128,
                     learning_rate=0.01, momentum=0.9, weight_decay=1e-4, schedule="cosine",
                     augmentation=None, n_iter_no_change=None, tol=1e-4, max_time=None,
                     generator=None, device="cpu", optimizer_state=None, progress=None):
    """Train ``module`` with cross-entropy and SGD with momentum, epoch by epoch.

    Parameters
    ----------
    module : torch.nn.Module
        Maps images ``(n, C, H, W)`` to logits; already on ``device``.
    X, y : torch.Tensor
        CPU tensors: float images and int64 labels in ``[0, n_classes)``.
    X_val, y_val : torch.Tensor or None
        Validation split: selects the best epoch and drives early stopping.
    max_iter : int
        Number of epochs.
    batch_size : int
    learning_rate, momentum, weight_decay : float
    schedule : {"cosine", "step", "constant"}
        Learning-rate schedule over ``max_iter`` epochs (or ``max_time``, whichever ends first).
    augmentation : {None, "crop", "crop+flip"}
    n_iter_no_change : int or None
        Stop when the validation score (or the training loss without
        validation) has not improved by ``tol`` for this many epochs.
    tol : float
    max_time : float or None
        Wall-clock budget in seconds: no epoch starts that would end past it (judged by the
        last epoch's duration), and the schedule runs over the budget when the time ends before
        the ``max_iter`` epochs do, so that the learning rate still anneals.
    generator : torch.Generator or None
        CPU generator for shuffling and augmentation.
    device : torch.device
    optimizer_state : dict or None
        Resumes the optimizer (momentum buffers) of an earlier call.
    progress : callable or None
        Wraps the epoch iterator (a tqdm factory).

    Returns
    -------
    TrainingResult
        The module holds the best weights seen when the function returns.
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}.")
    if augmentation not in AUGMENTATIONS:
        raise ValueError(f"augmentation must be one of {AUGMENTATIONS}, got {augmentation!r}.")
    optimizer = torch.optim.SGD(module.parameters(), lr=learning_rate, momentum=momentum,
                                weight_decay=weight_decay)
    if optimizer_state is not None:
        optimizer.load_state_dict(optimizer_state)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate
    result = TrainingResult()
    best_state, best_key, stale = None, None, 0
    n = X.shape[0]
    start = time.perf_counter()
    epochs = range(max_iter) if progress is None else progress(range(max_iter))
    try:
        for epoch in epochs:
            epoch_start = time.perf_counter()
            spent = _budget_spent(epoch, max_iter, epoch_start - start, max_time)
            for group in optimizer.param_groups:
                group["lr"] = learning_rate * _learning_rate_factor(schedule, spent)
            module.train()
            order = torch.randperm(n, generator=generator)
            total, seen = 0.0, 0
            for batch_start in range(0, n, batch_size):
                index = order[batch_start:batch_start + batch_size]
                if index.numel() < 2 and n >= 2:
                    continue  # a batch of one sample has no batch statistics
                images = augment_batch(X[index].to(device), augmentation, generator)
                loss = F.cross_entropy(module(images), y[index].to(device))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += loss.item() * index.numel()
                seen += index.numel()
            epoch_loss = total / max(seen, 1)
            if not torch.isfinite(torch.tensor(epoch_loss)):
                raise FloatingPointError(
                    f"Training diverged at epoch {epoch + 1} (loss {epoch_loss}); lower learning_rate_init."
                )
            result.loss_curve.append(epoch_loss)
            result.n_iter = epoch + 1
            result.best_loss = min(result.best_loss, epoch_loss)
            if X_val is not None:
                score = accuracy(module, X_val, y_val, batch_size=batch_size, device=device)
                result.validation_scores.append(score)
                key = score
            else:
                key = -epoch_loss
            if best_key is None or key > best_key + tol:
                best_key, stale = key, 0
                best_state = copy.deepcopy(module.state_dict())
            else:
                stale += 1
            if X_val is not None:
                result.best_validation_score = max(result.validation_scores)
            if n_iter_no_change is not None and stale >= n_iter_no_change:
                result.stopped_by = "early_stopping"
                break
            now = time.perf_counter()
            if max_time is not None and epoch + 1 < max_iter and (now - start) + (now - epoch_start) > max_time:
                result.stopped_by = "max_time"  # the next epoch would end past the budget
                break
    except KeyboardInterrupt:
        result.stopped_by = "interrupted"
    result.elapsed = time.perf_counter() - start
    # Keep the best weights: always with validation data, and after an interruption
    # (the interrupted epoch left the weights half-updated).
    if best_state is not None and (X_val is not None or result.stopped_by == "interrupted"):
        module.load_state_dict(best_state)
    module.eval()
    result.optimizer_state = optimizer.state_dict()
    return result
