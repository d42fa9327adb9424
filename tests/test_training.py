"""The training loop: learning-rate schedules over epochs or a time budget."""

import itertools
import math

import pytest
import torch

from skphase.nn import _training
from skphase.nn._training import _budget_spent, _learning_rate_factor, train_classifier


def test_budget_spent_is_the_larger_of_epochs_and_time():
    assert _budget_spent(5, 10, 0.0, None) == 0.5
    assert _budget_spent(2, 10, 50.0, 100.0) == 0.5
    assert _budget_spent(8, 10, 50.0, 100.0) == 0.8
    assert _budget_spent(3, 10, 500.0, 100.0) == 1.0


@pytest.mark.parametrize("schedule, spent, factor", [
    ("cosine", 0.0, 1.0), ("cosine", 0.5, 0.5), ("cosine", 1.0, 0.0),
    ("step", 0.0, 1.0), ("step", 1 / 3, 0.1), ("step", 0.99, 0.01), ("constant", 0.7, 1.0),
])
def test_learning_rate_factor(schedule, spent, factor):
    assert math.isclose(_learning_rate_factor(schedule, spent), factor, abs_tol=1e-12)


def test_time_budget_stretches_the_schedule_and_stops_before_overrunning(monkeypatch):
    # A clock on which every call advances by one second: epochs of two batches take a few
    # "seconds" each, so a budget of 20 s ends long before the 50 epochs.
    ticks = itertools.count()
    monkeypatch.setattr(_training.time, "perf_counter", lambda: float(next(ticks)))
    rates = []
    module = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
    original_step = torch.optim.SGD.step

    def recording_step(self, *args, **kwargs):
        rates.append(self.param_groups[0]["lr"])
        return original_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.SGD, "step", recording_step)
    X, y = torch.randn(8, 1, 2, 2), torch.arange(8) % 2
    result = train_classifier(module, X, y, max_iter=50, batch_size=4, learning_rate=1.0, max_time=20.0,
                              generator=torch.Generator().manual_seed(0))
    assert result.stopped_by == "max_time" and 1 < result.n_iter < 50
    assert result.elapsed <= 20.0 + 2  # the last epoch ended within the budget (plus the final clock reads)
    per_epoch = rates[::2]
    assert per_epoch[0] > 0.99 and all(b < a for a, b in zip(per_epoch, per_epoch[1:]))
    assert per_epoch[-1] < 0.25  # annealed over the time budget, not over 50 epochs
