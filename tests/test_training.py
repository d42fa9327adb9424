"""The training engine: schedules, optimizers, the epoch runner, budgets, interrupts, precision."""

import itertools
import math

import numpy as np
import pytest
import torch

from skphase.nn import TrainingInterrupted, evaluate_accuracy, train_classifier
from skphase.nn import _training
from skphase.nn._optimizers import make_optimizer
from skphase.nn._schedules import budget_spent, make_schedule
from skphase.nn._training import BestState, run_epoch
from skphase.utils._sources import as_image_source


def tiny_module(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))


def tiny_data(n=8, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 2, 2, generator=generator), torch.arange(n) % 2


def test_budget_spent_is_the_larger_of_epochs_and_time():
    assert budget_spent(5, 10, 0.0, None) == 0.5
    assert budget_spent(2, 10, 50.0, 100.0) == 0.5
    assert budget_spent(8, 10, 50.0, 100.0) == 0.8
    assert budget_spent(3, 10, 500.0, 100.0) == 1.0


@pytest.mark.parametrize("schedule, spent, factor", [
    ("cosine", 0.0, 1.0), ("cosine", 0.5, 0.5), ("cosine", 1.0, 0.0),
    ("step", 0.0, 1.0), ("step", 1 / 3, 0.1), ("step", 0.99, 0.01), ("constant", 0.7, 1.0),
])
def test_learning_rate_factor(schedule, spent, factor):
    assert math.isclose(make_schedule(schedule, 30)(spent), factor, abs_tol=1e-12)


def test_step_schedule_every_70_of_300_epochs():
    factor = make_schedule("step", 300, {"step_size": 70})
    per_epoch = [factor(e / 300) for e in range(300)]
    assert per_epoch[69] == 1.0 and math.isclose(per_epoch[70], 0.1) and math.isclose(per_epoch[139], 0.1)
    assert math.isclose(per_epoch[140], 0.01) and math.isclose(per_epoch[210], 1e-3)
    assert math.isclose(per_epoch[299], 1e-4)
    half = make_schedule("step", 10, {"step_size": 5, "gamma": 0.5})
    assert [half(e / 10) for e in (0, 4, 5, 9)] == [1.0, 1.0, 0.5, 0.5]


@pytest.mark.parametrize("schedule, params, match", [
    ("step", {"step": 3}, "does not take"), ("cosine", {"gamma": 0.1}, "does not take"),
    ("step", {"step_size": 0}, "step_size"), ("step", {"gamma": -1}, "gamma"), ("linear", None, "one of"),
])
def test_schedule_errors(schedule, params, match):
    with pytest.raises(ValueError, match=match):
        make_schedule(schedule, 10, params)


def tick_clock_and_record_rates(monkeypatch):
    """A clock on which every read advances by one second; the learning rate of every SGD step."""
    ticks = itertools.count()
    monkeypatch.setattr(_training.time, "perf_counter", lambda: float(next(ticks)))
    rates = []
    original_step = torch.optim.SGD.step

    def recording_step(self, *args, **kwargs):
        rates.append(self.param_groups[0]["lr"])
        return original_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.SGD, "step", recording_step)
    return rates


def test_time_budget_stretches_the_schedule_and_stops_before_overrunning(monkeypatch):
    # Epochs of two batches take a few "seconds" each: a budget of 20 s ends long before the 50 epochs.
    rates = tick_clock_and_record_rates(monkeypatch)
    X, y = tiny_data()
    result = train_classifier(tiny_module(), X, y, max_iter=50, batch_size=4, learning_rate=1.0, max_time=20.0,
                              generator=torch.Generator().manual_seed(0), recalibrate=False)
    assert result.stopped_by == "max_time" and 1 < result.n_iter < 50
    assert result.elapsed <= 20.0 + 2  # the last epoch ended within the budget (plus the final clock reads)
    per_epoch = rates[::2]
    assert per_epoch[0] > 0.99 and all(b < a for a, b in zip(per_epoch, per_epoch[1:]))
    assert per_epoch[-1] < 0.25  # annealed over the time budget, not over 50 epochs


def test_per_batch_schedule_spends_the_time_budget_to_the_batch(monkeypatch):
    # Epochs of four batches; a 30 s budget ends inside an epoch.
    rates = tick_clock_and_record_rates(monkeypatch)
    X, y = tiny_data(n=16)
    result = train_classifier(tiny_module(), X, y, max_iter=50, batch_size=4, learning_rate=1.0, max_time=30.0,
                              schedule_every="batch", generator=torch.Generator().manual_seed(0), recalibrate=False)
    assert result.stopped_by == "max_time" and len(result.loss_curve) == result.n_iter
    assert len(rates) % 4 != 0  # the budget ended mid-epoch: the last epoch was cut short
    assert result.n_batches == len(rates) and result.n_iter == -(-len(rates) // 4) and result.batches_per_epoch == 4
    assert result.elapsed <= 30.0 + 5  # no batch started past the budget (plus the last clock reads)
    assert rates[0] > 0.97 and all(b < a for a, b in zip(rates, rates[1:]))
    assert rates[-1] < 0.05  # the cosine ran its course within the budget
    # Per-epoch schedules keep stopping at epoch ends.
    rates = tick_clock_and_record_rates(monkeypatch)
    result = train_classifier(tiny_module(), X, y, max_iter=50, batch_size=4, learning_rate=1.0, max_time=30.0,
                              generator=torch.Generator().manual_seed(0), recalibrate=False)
    assert result.stopped_by == "max_time" and len(rates) % 4 == 0 and result.n_batches == 4 * result.n_iter


def test_the_final_statistics_pass_is_timed_apart_from_the_training_loop(monkeypatch):
    rates = tick_clock_and_record_rates(monkeypatch)
    recalibrations = []
    monkeypatch.setattr(_training, "recalibrate_running_statistics", lambda *a, **k: recalibrations.append(
        [_training.time.perf_counter() for _ in range(5)]))  # a pass that takes five clock reads
    X, y = tiny_data()
    result = train_classifier(tiny_module(), X, y, max_iter=2, batch_size=4, learning_rate=0.1)
    assert len(recalibrations) == 1 and len(rates) == 4
    assert result.recalibration_time == 6.0  # the five reads, and the one that ends the pass
    assert result.elapsed > result.recalibration_time
    result = train_classifier(tiny_module(), X, y, max_iter=2, batch_size=4, learning_rate=0.1, recalibrate=False)
    assert result.recalibration_time == 0.0 and len(recalibrations) == 1


def test_optimizer_gets_only_the_arguments_it_takes():
    params = list(tiny_module().parameters())
    sgd, lr = make_optimizer(params, "sgd", learning_rate=0.1, momentum=0.8, weight_decay=1e-3)
    assert isinstance(sgd, torch.optim.SGD) and lr == 0.1
    assert sgd.defaults["momentum"] == 0.8 and sgd.defaults["weight_decay"] == 1e-3
    adam, _ = make_optimizer(params, "adam", learning_rate=0.01, momentum=0.8, weight_decay=0.0)
    assert isinstance(adam, torch.optim.Adam) and "momentum" not in adam.defaults
    adamw, lr = make_optimizer(params, torch.optim.AdamW, learning_rate=0.01, weight_decay=0.5,
                               optimizer_params={"betas": (0.8, 0.9), "lr": 0.02})
    assert adamw.defaults["betas"] == (0.8, 0.9) and adamw.defaults["weight_decay"] == 0.5 and lr == 0.02
    with pytest.raises(ValueError, match="nesterov"):
        make_optimizer(params, "adam", learning_rate=0.01, optimizer_params={"nesterov": True})
    with pytest.raises(ValueError, match="optimizer must be"):
        make_optimizer(params, "lbfgs-ish", learning_rate=0.01)
    with pytest.raises(ValueError, match="not an instance"):
        make_optimizer(params, sgd, learning_rate=0.01)


def test_resumed_optimizer_keeps_its_buffers_and_takes_the_new_hyperparameters():
    module = tiny_module()
    X, y = tiny_data()
    first = train_classifier(module, X, y, max_iter=1, batch_size=4, optimizer="adam", learning_rate=0.01,
                             weight_decay=0.0, schedule="constant")
    assert first.optimizer_state["state"][0]["step"] == 2
    opt, _ = make_optimizer(module.parameters(), "adam", learning_rate=0.5, weight_decay=0.25,
                            state=first.optimizer_state)
    assert opt.state_dict()["state"][0]["step"] == 2
    assert opt.param_groups[0]["lr"] == 0.5 and opt.param_groups[0]["weight_decay"] == 0.25


def test_only_a_final_batch_of_one_is_dropped():
    sizes = []
    module = tiny_module()
    module.register_forward_pre_hook(lambda m, args: sizes.append(args[0].shape[0]))
    X, y = tiny_data(9)
    optimizer = torch.optim.SGD(module.parameters(), lr=0.1)
    run_epoch(module, optimizer, as_image_source(X), y, torch.randperm(9), batch_size=4)
    assert sizes == [4, 4]  # 9 = 4 + 4 + 1: the lone last image is left out
    sizes.clear()
    run_epoch(module, optimizer, as_image_source(X), y, torch.randperm(9), batch_size=1)
    assert sizes == [1] * 9  # batches of one throughout are the caller's choice: every one runs
    sizes.clear()
    run_epoch(module, optimizer, as_image_source(X), y, torch.randperm(9), batch_size=5)
    assert sizes == [5, 4]


def test_tensor_and_image_source_train_alike():
    X, y = tiny_data(12)
    a, b = tiny_module(), tiny_module()
    ra = train_classifier(a, X, y, max_iter=3, batch_size=4, generator=torch.Generator().manual_seed(1))
    rb = train_classifier(b, as_image_source(X.numpy()), y.numpy(), max_iter=3, batch_size=4,
                          generator=torch.Generator().manual_seed(1))
    assert ra.loss_curve == rb.loss_curve
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb, rtol=0, atol=0)


def test_best_state_tracks_improvements_beyond_tol():
    module = tiny_module()
    best = BestState(module, tol=0.1, n_iter_no_change=2)
    assert best.update(module, 1.0) is True
    with torch.no_grad():
        module[1].weight.add_(1.0)
    assert best.update(module, 0.95) is False  # better, but not by more than tol
    assert not best.should_stop and best.update(module, 0.99) is False and best.should_stop
    best.restore(module)
    torch.testing.assert_close(module[1].weight, tiny_module()[1].weight)
    # With validation scores, higher is better.
    scored = BestState(module, tol=0.0)
    assert scored.update(module, 5.0, 0.5) and scored.update(module, 9.0, 0.6) and not scored.update(module, 0.1, 0.55)


def test_interrupt_restores_the_best_weights_and_carries_the_result():
    X, y = tiny_data(16)
    snapshots = []

    def interrupt_at_third_epoch(owner, info):
        snapshots.append({k: v.clone() for k, v in info.module.state_dict().items()})
        if info.epoch == 3:
            raise KeyboardInterrupt

    module = tiny_module()
    with pytest.raises(TrainingInterrupted) as caught:
        train_classifier(module, X, y, max_iter=10, batch_size=4, learning_rate=0.5,
                         callbacks=[interrupt_at_third_epoch], generator=torch.Generator().manual_seed(0))
    result = caught.value.result
    assert isinstance(caught.value, KeyboardInterrupt)
    assert result.stopped_by == "interrupted" and result.n_iter == 3 and len(result.loss_curve) == 3
    best_epoch = int(np.argmin(result.loss_curve))
    for name, value in module.state_dict().items():
        torch.testing.assert_close(value, snapshots[best_epoch][name], rtol=0, atol=0)


def test_interrupt_in_the_first_epoch_leaves_the_initial_weights(monkeypatch):
    def interrupted_step(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(torch.optim.SGD, "step", interrupted_step)
    module = tiny_module()
    X, y = tiny_data()
    with pytest.raises(TrainingInterrupted) as caught:
        train_classifier(module, X, y, max_iter=3, batch_size=4)
    assert caught.value.result.n_iter == 0
    torch.testing.assert_close(module[1].weight, tiny_module()[1].weight, rtol=0, atol=0)


def test_bfloat16_training_on_cpu_and_float16_refused():
    X, y = tiny_data(16)
    result = train_classifier(tiny_module(), X, y, max_iter=2, batch_size=8, precision="bfloat16",
                              validation=(X, y))
    assert np.isfinite(result.loss_curve).all() and len(result.validation_scores) == 2
    with pytest.raises(ValueError, match="float16.*CUDA"):
        train_classifier(tiny_module(), X, y, max_iter=1, precision="float16", device="cpu")


def test_progress_bar_per_epoch_gets_its_batches_and_final_postfix():
    class Bar:
        def __init__(self, epoch, n_batches):
            self.epoch, self.total, self.n, self.postfix, self.closed = epoch, n_batches, 0, None, False
            bars.append(self)

        def update(self, n):
            self.n += n

        def set_postfix(self, refresh=True, **values):
            self.postfix = values

        def close(self):
            self.closed = True

    bars = []
    X, y = tiny_data(10)
    train_classifier(tiny_module(), X, y, max_iter=2, batch_size=4, validation=(X, y), progress=Bar, epochs_done=5)
    assert [b.epoch for b in bars] == [6, 7] and all(b.n == b.total == 3 for b in bars)
    assert all(b.closed and set(b.postfix) == {"loss", "val_acc"} for b in bars)


def test_diverging_training_raises():
    X, y = tiny_data()
    with pytest.raises(FloatingPointError, match="diverged"):
        train_classifier(tiny_module(), X * 1e30, y, max_iter=2, batch_size=4, learning_rate=1e10)


def test_training_interrupted_pickles_with_its_result():
    import pickle

    result = _training.TrainingResult(loss_curve=[1.0, 0.5], n_iter=2, stopped_by="interrupted")
    restored = pickle.loads(pickle.dumps(TrainingInterrupted(result)))
    assert isinstance(restored, KeyboardInterrupt) and restored.result.loss_curve == [1.0, 0.5]
    assert "2 complete epoch" in str(restored)


def test_schedule_every_batch_matches_torch_cosine_annealing(monkeypatch):
    # torch's CosineAnnealingLR over 3 epochs of 3 batches, stepped after each batch.
    reference_opt = torch.optim.Adam(tiny_module().parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(reference_opt, T_max=9)
    expected = []
    for _ in range(9):
        expected.append(reference_opt.param_groups[0]["lr"])
        reference_opt.step()
        scheduler.step()
    rates = []
    original_step = torch.optim.Adam.step

    def recording_step(self, *args, **kwargs):
        rates.append(self.param_groups[0]["lr"])
        return original_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", recording_step)
    X, y = tiny_data(12)
    train_classifier(tiny_module(), X, y, max_iter=3, batch_size=4, optimizer="adam", learning_rate=0.1,
                     schedule_every="batch")
    np.testing.assert_allclose(rates, expected, rtol=1e-12, atol=1e-15)
    with pytest.raises(ValueError, match="schedule_every"):
        train_classifier(tiny_module(), X, y, max_iter=1, schedule_every="step")


def test_evaluate_accuracy_reads_any_label_sequence_and_checks_its_length():
    module = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
    images = torch.randn(10, 1, 2, 2)
    source = as_image_source(images)
    with torch.no_grad():
        predicted = module(images).argmax(1)
    expected = float((predicted == 0).float().mean())
    for labels in ([0] * 10, np.zeros(10, dtype=np.int64), torch.zeros(10, dtype=torch.int64)):
        assert evaluate_accuracy(module, source, labels, batch_size=4) == pytest.approx(expected)
    for n_labels in (7, 12):  # too few, or too many to be noticed by slicing
        with pytest.raises(ValueError, match=f"10 images but {n_labels} labels"):
            evaluate_accuracy(module, source, np.zeros(n_labels, dtype=np.int64), batch_size=4)
