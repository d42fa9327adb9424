"""Learning-rate schedules as a factor of the fraction of the training budget spent.

A schedule here is a function of ``spent`` in [0, 1], the fraction of the budget
used when an epoch starts: of the epochs, or of the wall-clock budget when that
is larger. Networks of different speeds compared at one time budget therefore
all finish annealed, whichever ends the run.
"""

import math
import numbers

__all__ = ["SCHEDULES", "budget_spent", "make_schedule"]

#: The learning-rate schedules of :func:`train_classifier` (its ``schedule``).
SCHEDULES = ("cosine", "step", "constant")

#: Keyword arguments each schedule accepts in ``schedule_params``.
_SCHEDULE_PARAMS = {"cosine": (), "step": ("step_size", "gamma"), "constant": ()}


def budget_spent(epoch, max_iter, elapsed, max_time):
    """Fraction of the training budget spent when epoch ``epoch`` (from 0) starts.

    Parameters
    ----------
    epoch : int
        Epochs completed so far.
    max_iter : int
        Epochs allowed.
    elapsed : float
        Seconds spent so far.
    max_time : float or None
        Wall-clock budget in seconds.

    Returns
    -------
    float
        ``epoch / max_iter``, or ``elapsed / max_time`` when larger, at most 1.
    """
    spent = epoch / max(max_iter, 1)
    if max_time is not None:
        spent = max(spent, elapsed / max_time)
    return min(spent, 1.0)


def make_schedule(schedule, max_iter, params=None):
    """The learning-rate factor as a function of the fraction of the budget spent.

    Parameters
    ----------
    schedule : {"cosine", "step", "constant"}
        ``"cosine"`` anneals from 1 to 0 over the budget; ``"step"`` multiplies
        by ``gamma`` every ``step_size`` epochs (epochs of the budget: with a
        time budget, the same fraction of the time); ``"constant"`` keeps 1.
    max_iter : int
        Epochs of the budget, which ``step_size`` is counted against.
    params : dict or None
        For ``"step"``: ``step_size`` (epochs, default ``max_iter / 3``, so two
        steps in the run) and ``gamma`` (default 0.1). The paper's "x0.1 every
        70 of 300 epochs" is ``{"step_size": 70}`` with ``max_iter=300``. The
        other schedules take none.

    Returns
    -------
    callable
        ``factor(spent) -> float`` for ``spent`` in [0, 1].

    Raises
    ------
    ValueError
        For an unknown schedule, an unknown key in ``params`` or a value out of range.
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}.")
    params = dict(params or {})
    unknown = sorted(set(params) - set(_SCHEDULE_PARAMS[schedule]))
    if unknown:
        allowed = ", ".join(_SCHEDULE_PARAMS[schedule]) or "none"
        raise ValueError(f"schedule_params has {unknown} which schedule={schedule!r} does not take "
                         f"(it takes: {allowed}).")
    if schedule == "cosine":
        return lambda spent: 0.5 * (1 + math.cos(math.pi * spent))
    if schedule == "constant":
        return lambda spent: 1.0
    step_size = params.get("step_size", max(max_iter, 1) / 3)
    gamma = params.get("gamma", 0.1)
    if not isinstance(step_size, numbers.Real) or isinstance(step_size, bool) or not step_size > 0:
        raise ValueError(f"schedule_params['step_size'] must be a positive number of epochs, got {step_size!r}.")
    if not isinstance(gamma, numbers.Real) or isinstance(gamma, bool) or not gamma > 0:
        raise ValueError(f"schedule_params['gamma'] must be a positive number, got {gamma!r}.")
    n_epochs = max(max_iter, 1)
    # The small offset keeps an epoch that lands exactly on a step boundary (in floating point) on its step.
    return lambda spent: gamma ** math.floor(spent * n_epochs / step_size + 1e-9)
