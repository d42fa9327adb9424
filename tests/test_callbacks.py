"""Callbacks of the training loop: callables, Checkpoint, EpochLogger, StopAfter."""

import logging

import pytest
import torch

from skphase.nn import Callback, Checkpoint, EpochInfo, EpochLogger, StopAfter, load_checkpoint, train_classifier


def tiny_module(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))


@pytest.fixture
def data():
    generator = torch.Generator().manual_seed(0)
    return torch.randn(16, 1, 2, 2, generator=generator), torch.arange(16) % 2


def fit(module, data, **params):
    X, y = data
    params = {"max_iter": 4, "batch_size": 4, "learning_rate": 0.5, "generator": torch.Generator().manual_seed(0),
              **params}
    return train_classifier(module, X, y, **params)


def test_a_callable_receives_increasing_epochs_and_the_epoch_facts(data):
    seen = []
    owner = object()
    result = fit(tiny_module(), data, callbacks=[lambda est, info: seen.append((est, info))], owner=owner,
                 epochs_done=2, schedule="constant")
    assert [info.epoch for _, info in seen] == [3, 4, 5, 6]
    assert all(est is owner for est, _ in seen)
    info = seen[-1][1]
    assert isinstance(info, EpochInfo) and info.validation_score is None and info.learning_rate == 0.5
    assert [i.loss for _, i in seen] == result.loss_curve
    assert isinstance(info.optimizer, torch.optim.SGD) and isinstance(info.module, torch.nn.Module)
    assert 0 <= info.epoch_time <= info.elapsed and seen[0][1].is_best


def test_callback_object_hooks_are_called_in_order(data):
    calls = []

    class Recorder(Callback):
        def on_train_begin(self, owner):
            calls.append("begin")

        def on_epoch_end(self, owner, info):
            calls.append(info.epoch)

        def on_train_end(self, owner, result):
            calls.append(("end", result.n_iter))

    fit(tiny_module(), data, max_iter=2, callbacks=[Recorder()])
    assert calls == ["begin", 1, 2, ("end", 2)]
    with pytest.raises(TypeError, match="callbacks must be"):
        fit(tiny_module(), data, callbacks=[42])


def test_stop_after_ends_at_the_right_epoch(data):
    result = fit(tiny_module(), data, max_iter=10, callbacks=[StopAfter(3)])
    assert result.n_iter == 3 and result.stopped_by == "callback"
    # Returning True from a plain callable stops too.
    result = fit(tiny_module(), data, max_iter=10, callbacks=[lambda est, info: info.epoch == 2])
    assert result.n_iter == 2 and result.stopped_by == "callback"
    X, y = data
    target = fit(tiny_module(), data, max_iter=10, validation=(X, y), callbacks=[StopAfter(validation_score=0.0)])
    assert target.n_iter == 1
    by_loss = fit(tiny_module(), data, max_iter=10, callbacks=[StopAfter(loss=float("inf"))])
    assert by_loss.n_iter == 1


def test_checkpoint_written_reloaded_equal_state(data, tmp_path):
    path = tmp_path / "best.pt"
    states = {}

    def snapshot(owner, info):
        states[info.epoch] = {k: v.clone() for k, v in info.module.state_dict().items()}

    checkpoint = Checkpoint(path, monitor="loss")
    module = tiny_module()
    result = fit(module, data, max_iter=5, callbacks=[snapshot, checkpoint])
    best_epoch = 1 + min(range(5), key=lambda i: result.loss_curve[i])
    saved = torch.load(path, weights_only=True)
    assert saved["epoch"] == best_epoch == checkpoint.saved_epochs_[-1]
    assert saved["value"] == min(result.loss_curve) and saved["monitor"] == "loss"
    assert [h["loss"] for h in saved["history"]] == result.loss_curve[:best_epoch]
    for name, value in saved["module"].items():
        torch.testing.assert_close(value, states[best_epoch][name], rtol=0, atol=0)
    assert saved["optimizer"]["state"][0]["momentum_buffer"].shape == (2, 4)
    # load_checkpoint puts the weights back into a module (or an estimator's module_).
    fresh = tiny_module(seed=5)
    loaded = load_checkpoint(path, fresh)
    assert loaded["epoch"] == best_epoch
    for name, value in fresh.state_dict().items():
        torch.testing.assert_close(value, states[best_epoch][name], rtol=0, atol=0)


def constant_module():
    """A module whose every loss is log 2 exactly, whatever the batch order: no epoch improves."""
    module = tiny_module()
    with torch.no_grad():
        for p in module.parameters():
            p.zero_()
    return module


def test_checkpoint_every_epochs_with_formatted_paths(data, tmp_path):
    checkpoint = Checkpoint(tmp_path / "epoch{epoch}.pt", monitor="loss", every=2, save_best_only=True)
    fit(constant_module(), data, max_iter=4, learning_rate=0.0, callbacks=[checkpoint])
    assert checkpoint.saved_epochs_ == [1, 2, 4]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch1.pt", "epoch2.pt", "epoch4.pt"]
    every_epoch = Checkpoint(tmp_path / "last.pt", monitor="loss", save_best_only=False)
    fit(constant_module(), data, max_iter=3, learning_rate=0.0, callbacks=[every_epoch])
    assert every_epoch.saved_epochs_ == [1, 2, 3] and torch.load(tmp_path / "last.pt")["epoch"] == 3


def test_checkpoint_on_validation_needs_validation_data(data, tmp_path):
    with pytest.raises(ValueError, match="needs validation data"):
        fit(tiny_module(), data, callbacks=[Checkpoint(tmp_path / "x.pt")])
    with pytest.raises(ValueError, match="monitor"):
        Checkpoint(tmp_path / "x.pt", monitor="accuracy")


def test_epoch_logger_writes_one_line_per_epoch(data, caplog):
    X, y = data
    with caplog.at_level(logging.INFO, logger="skphase"):
        fit(tiny_module(), data, max_iter=3, validation=(X, y), callbacks=[EpochLogger()])
    lines = [r.getMessage() for r in caplog.records if r.name == "skphase"]
    assert len(lines) == 3
    assert lines[0].startswith("epoch 1: loss ") and "validation accuracy" in lines[0] and "lr 0.5" in lines[0]
