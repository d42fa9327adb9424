"""Behaviour of ScatteringPhaseCollapse: learning, errors, reproducibility, persistence."""

import logging
import os
import pickle
import shutil

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

from skphase import PhaseCollapse, ScatteringPhaseCollapse
from skphase.metrics import resolve_layers
from skphase.nn import Callback, Checkpoint, StopAfter, TrainingInterrupted, load_checkpoint


def small(**params):
    defaults = dict(widths=(8, 16), max_iter=3, batch_size=64, device="cpu", random_state=0)
    defaults.update(params)
    return ScatteringPhaseCollapse(**defaults)


def test_alias():
    assert PhaseCollapse is ScatteringPhaseCollapse


def test_learns_digits(digits_split):
    X, y, X_test, y_test = digits_split
    model = small(max_iter=6).fit(X, y)
    assert model.score(X_test, y_test) > 0.85
    assert model.loss_curve_[-1] < model.loss_curve_[0]
    assert model.n_iter_ == 6 and model.stopped_by_ == "max_iter"


def test_transform_and_blocks_agree(digits_split):
    X, y, X_test, _ = digits_split
    model = small().fit(X, y)
    features = model.transform(X_test[:7])
    blocks = model.transform_blocks(X_test[:7])
    assert features.dtype == np.float32
    assert [b.shape[1] for b in blocks] == [int(np.prod(s)) for s in model.block_shapes_]
    np.testing.assert_allclose(blocks[-1], features, rtol=1e-5, atol=1e-6)
    assert model.block_shapes_ == [(4, 4, 16), (2, 2, 32)]
    assert len(model.get_feature_names_out()) == features.shape[1]
    # Every pixel of every block has unit norm over channels (the normalisation N).
    last = features.reshape(7, 2, 2, 32)
    np.testing.assert_allclose((last**2).sum(-1), 1, rtol=1e-4)
    proba = model.predict_proba(X_test[:7])
    np.testing.assert_allclose(proba.sum(1), 1, rtol=1e-5)
    assert set(model.predict(X_test)) <= set(model.classes_)
    # A subset's features do not depend on the rest of the batch, up to float32 round-off.
    np.testing.assert_allclose(model.transform(X_test[2:5]), model.transform(X_test)[2:5], rtol=1e-4, atol=1e-5)


def test_blocks_are_hookable_layers(digits_split):
    X, y, _, _ = digits_split
    model = small(max_iter=1).fit(X, y)
    # Each block, then the linear head (the output), in forward order.
    assert list(resolve_layers(model.module_)) == ["blocks.0", "blocks.1", "head"]


def test_same_seed_same_model_and_different_seed_differs(digits_split):
    X, y, X_test, _ = digits_split
    a = small(random_state=3).fit(X, y).transform(X_test[:20])
    b = small(random_state=3).fit(X, y).transform(X_test[:20])
    c = small(random_state=4).fit(X, y).transform(X_test[:20])
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-3


def test_layouts_and_string_labels(digits_split):
    X, y, X_test, _ = digits_split
    labels = np.array(["class%d" % v for v in y])
    flat = small(image_shape=(8, 8)).fit(X.reshape(len(X), -1), labels)
    square = small().fit(X.reshape(len(X), 8, 8), labels)
    np.testing.assert_allclose(flat.transform(X_test[:5].reshape(5, -1)), square.transform(X_test[:5, 0]), atol=1e-5)
    assert flat.predict(X_test[:3]).dtype.kind == "U"
    assert torch.is_tensor(torch.as_tensor(X)) and small().fit(torch.as_tensor(X), y).transform(X_test[:2]).shape[0] == 2


@pytest.mark.parametrize(
    "X_bad, match",
    [
        (np.zeros((4, 2, 2, 8, 8)), "must have shape"),
        (np.full((4, 1, 8, 8), np.nan), "NaN or infinity"),
        (np.zeros((0, 1, 8, 8)), "0 sample"),
    ],
)
def test_bad_training_input(X_bad, match):
    with pytest.raises(ValueError, match=match):
        small().fit(X_bad, np.arange(len(X_bad)) % 2)


def test_images_too_small_for_the_blocks():
    X = np.random.default_rng(0).normal(size=(6, 1, 6, 6))
    with pytest.raises(ValueError, match=r"too small for 3 block\(s\)"):
        small(widths=(4, 4, 4)).fit(X, [0, 1] * 3)


def test_single_class_and_missing_y(digits_split):
    X, _, _, _ = digits_split
    with pytest.raises(ValueError, match="at least 2 classes"):
        small().fit(X[:10], np.zeros(10))
    with pytest.raises(ValueError, match="requires y"):
        small().fit(X[:10], None)


def test_transform_checks_channels_and_size(digits_split):
    X, y, _, _ = digits_split
    model = small(max_iter=1).fit(X, y)
    with pytest.raises(ValueError, match="2 channel"):
        model.transform(np.zeros((2, 2, 8, 8)))
    with pytest.raises(ValueError, match=r"size \(9, 9\)"):
        model.transform(np.zeros((2, 1, 9, 9)))
    with pytest.raises(ValueError, match="NaN or infinity"):
        model.transform(np.full((2, 1, 8, 8), np.inf))


def test_parameter_errors(digits_split):
    X, y, _, _ = digits_split
    with pytest.raises(ValueError, match="n_blocks=3 but widths has 2"):
        small(n_blocks=3).fit(X, y)
    with pytest.raises(ValueError, match="nonlinearity"):
        small(nonlinearity="softplus").fit(X, y)
    assert small(widths=4, n_blocks=2, max_iter=1).fit(X, y).block_shapes_[-1] == (2, 2, 8)


def test_pickle_round_trip(digits_split):
    X, y, X_test, _ = digits_split
    model = small().fit(X, y)
    loaded = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(loaded.transform(X_test[:10]), model.transform(X_test[:10]))
    assert loaded.device_ == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="simulates a machine without CUDA")
def test_gpu_fitted_model_loads_on_cpu_only_machine(digits_split):
    X, y, X_test, _ = digits_split
    model = small(max_iter=1).fit(X, y)
    expected = model.transform(X_test[:4])
    state = model.__getstate__()
    state["device_"] = torch.device("cuda", 0)  # as pickled on a GPU machine
    restored = ScatteringPhaseCollapse.__new__(ScatteringPhaseCollapse)
    with pytest.warns(UserWarning, match="not available here"):
        restored.__setstate__(state)
    assert restored.device_ == torch.device("cpu")
    np.testing.assert_array_equal(restored.transform(X_test[:4]), expected)


@pytest.mark.parametrize("variant", ["lscat", "lscat+skip"])
def test_memory_efficient_training_gives_the_same_model(digits_split, variant):
    # The backward filters each block's input again instead of keeping the filtering's output:
    # the same values, so the same training, to the bit, on the CPU.
    X, y, X_test, _ = digits_split
    kept = small(variant=variant, max_iter=2).fit(X, y)
    rebuilt = small(variant=variant, max_iter=2, memory_efficient=True).fit(X, y)
    assert rebuilt.module_.memory_efficient and not kept.module_.memory_efficient
    assert rebuilt.loss_curve_ == kept.loss_curve_
    np.testing.assert_array_equal(rebuilt.transform(X_test[:20]), kept.transform(X_test[:20]))


def test_warm_start_follows_memory_efficient(digits_split):
    X, y, _, _ = digits_split
    model = small(max_iter=1, warm_start=True).fit(X, y)
    model.set_params(memory_efficient=True).fit(X, y)
    assert model.n_iter_ == 2
    assert all(block.memory_efficient for block in model.module_.blocks)


def _cpp_compiler():
    return shutil.which(os.environ.get("CXX", "g++")) or shutil.which("c++") or shutil.which("clang++")


@pytest.mark.skipif(not _cpp_compiler(), reason="torch.compile on the CPU needs a C++ compiler")
def test_compiled_training_matches_eager_training(digits_split):
    # 384 images in batches of 64: one compilation (a smaller last batch would compile again).
    X, y, X_test, _ = digits_split
    X, y = X[:384], y[:384]
    eager = small(max_iter=1).fit(X, y)
    compiled = small(max_iter=1, compile=True).fit(X, y)
    assert type(compiled.module_) is type(eager.module_)  # the fitted module itself is not compiled
    np.testing.assert_allclose(compiled.loss_curve_, eager.loss_curve_, rtol=1e-5)
    np.testing.assert_allclose(compiled.transform(X_test[:50]), eager.transform(X_test[:50]), atol=1e-4)


def test_warm_start_continues(digits_split):
    X, y, _, _ = digits_split
    model = small(max_iter=2, warm_start=True).fit(X, y)
    first = model.loss_curve_[:]
    model.fit(X, y)
    assert model.n_iter_ == 4 and model.loss_curve_[:2] == first
    cold = small(max_iter=2).fit(X, y)
    cold.fit(X, y)
    assert cold.n_iter_ == 2


def test_interruption_keeps_the_best_model_then_reraises(digits_split):
    X, y, X_test, y_test = digits_split

    def interrupt_at_third_epoch(estimator, info):
        if info.epoch == 3:
            raise KeyboardInterrupt

    model = small(max_iter=10, callbacks=[interrupt_at_third_epoch])
    with pytest.raises(TrainingInterrupted) as caught:
        model.fit(X, y)
    assert isinstance(caught.value, KeyboardInterrupt)
    assert model.stopped_by_ == "interrupted" and model.n_iter_ == 3 and len(model.loss_curve_) == 3
    assert caught.value.result.loss_curve == model.loss_curve_
    assert model.score(X_test, y_test) > 0.3 and model.transform(X_test[:2]).shape[1] == model._n_features_out


def test_interruption_before_the_first_epoch_warns_untrained(digits_split):
    X, y, _, _ = digits_split

    class InterruptAtStart(Callback):
        def on_train_begin(self, estimator):
            raise KeyboardInterrupt

    model = small(callbacks=[InterruptAtStart()])
    with pytest.warns(UserWarning, match="untrained"), pytest.raises(KeyboardInterrupt):
        model.fit(X, y)
    assert model.n_iter_ == 0 and model.stopped_by_ == "interrupted"
    assert model.predict(X[:3]).shape == (3,)  # usable, though untrained


def test_early_stopping_and_time_budget(digits_split):
    X, y, _, _ = digits_split
    model = small(max_iter=50, early_stopping=True, n_iter_no_change=2, learning_rate_init=1e-6).fit(X, y)
    assert model.stopped_by_ == "early_stopping"
    assert len(model.validation_scores_) == model.n_iter_ < 50
    assert model.best_validation_score_ == max(model.validation_scores_)
    timed = small(max_iter=50, max_time=1e-3).fit(X, y)
    assert timed.stopped_by_ == "max_time" and timed.n_iter_ == 1


@pytest.mark.parametrize("nonlinearity", ["soft_threshold", "modulus_collapse", "sigmoid", "tanh", "relu", "identity"])
@pytest.mark.parametrize("variant", ["lscat", "lscat+skip"])
def test_every_nonlinearity_and_variant_trains(digits_split, nonlinearity, variant):
    X, y, _, _ = digits_split
    model = small(nonlinearity=nonlinearity, variant=variant, max_iter=1).fit(X[:128], y[:128])
    assert np.isfinite(model.loss_curve_).all()


def test_augmentation_and_factorized_cifar_shapes():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(16, 3, 32, 32)).astype(np.float32)
    y = np.arange(16) % 2
    model = ScatteringPhaseCollapse(widths=(4,) * 8, factorized=True, max_iter=1, augmentation="crop+flip",
                                    batch_size=8, device="cpu", random_state=0).fit(X, y)
    assert [s[:2] for s in model.block_shapes_] == [(32, 32), (16, 16), (16, 16), (8, 8), (8, 8), (4, 4), (4, 4), (2, 2)]


def test_grid_search_over_nonlinearity_in_a_pipeline(digits_split):
    X, y, _, _ = digits_split
    pipe = Pipeline([("pc", small(max_iter=1)), ("clf", LogisticRegression(max_iter=200))])
    search = GridSearchCV(pipe, {"pc__nonlinearity": ["modulus", "soft_threshold"]}, cv=2)
    search.fit(X[:200], y[:200])
    assert set(search.cv_results_["param_pc__nonlinearity"]) == {"modulus", "soft_threshold"}
    assert 0 <= search.best_score_ <= 1
    # clone + set_params rebuilds the network in fit with the new parameters.
    model = clone(small(max_iter=1)).set_params(widths=(4, 6)).fit(X[:100], y[:100])
    assert model.block_shapes_[-1][-1] == 12


@pytest.mark.gpu
def test_fits_on_gpu_and_pickles_to_cpu(digits_split):
    X, y, X_test, _ = digits_split
    model = small(device="cuda").fit(X, y)
    assert model.device_.type == "cuda"
    cpu = small(device="cpu").fit(X, y)
    np.testing.assert_allclose(model.transform(X_test[:5]), cpu.transform(X_test[:5]), atol=1e-2)
    assert pickle.loads(pickle.dumps(model)).transform(X_test[:5]).shape == (5, cpu.transform(X_test[:5]).shape[1])


def test_pandas_output(digits_split):
    pd = pytest.importorskip("pandas")
    X, y, X_test, _ = digits_split
    model = small(max_iter=1).fit(X, y).set_output(transform="pandas")
    frame = model.transform(X_test[:3])
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == list(model.get_feature_names_out())


# ------------------------------------------------------------------ training engine parameters
def record_epochs(store):
    return lambda estimator, info: store.append(info)


def test_batch_size_one_is_refused_with_advice(digits_split):
    X, y, _, _ = digits_split
    with pytest.raises(ValueError, match="batch_size >= 2"):
        small(batch_size=1).fit(X[:20], y[:20])


def test_a_lone_last_image_is_dropped_not_every_batch(digits_split):
    X, y, _, _ = digits_split

    class BatchSizes(Callback):
        def __init__(self):
            self.sizes = []

        def on_train_begin(self, estimator):
            estimator.module_.register_forward_pre_hook(
                lambda m, args: self.sizes.append(args[0].shape[0]) if torch.is_grad_enabled() else None)

        def on_epoch_end(self, estimator, info):
            pass

    for n, expected in ((65, [64]), (66, [64, 2]), (64, [64])):
        recorder = BatchSizes()
        small(max_iter=1, callbacks=[recorder]).fit(X[:n], y[:n])
        assert recorder.sizes == expected


@pytest.mark.parametrize("param, value", [("widths", (8, 12)), ("n_blocks", 3), ("L", 2),
                                          ("nonlinearity", "relu"), ("variant", "lscat"), ("factorized", True)])
def test_warm_start_refuses_a_changed_architecture(digits_split, param, value):
    X, y, _, _ = digits_split
    model = small(max_iter=1, warm_start=True, widths=8, n_blocks=2).fit(X[:64], y[:64])
    model.set_params(**{param: value})
    with pytest.raises(ValueError, match=f"{param} changed"):
        model.fit(X[:64], y[:64])


def test_non_integer_widths_raise(digits_split):
    X, y, _, _ = digits_split
    with pytest.raises(ValueError, match="positive integers"):
        small(widths=(4.5, 8)).fit(X[:20], y[:20])
    assert small(widths=(4.0, 8), max_iter=1).fit(X[:20], y[:20]).block_shapes_[0][-1] == 8


@pytest.mark.parametrize("optimizer, expected", [("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW),
                                                 (torch.optim.RMSprop, torch.optim.RMSprop)])
def test_optimizer_choice_and_params(digits_split, optimizer, expected):
    X, y, X_test, y_test = digits_split
    infos = []
    model = small(optimizer=optimizer, learning_rate_init=3e-3, weight_decay=0.0, max_iter=2,
                  optimizer_params={"eps": 1e-6}, callbacks=[record_epochs(infos)]).fit(X, y)
    opt = infos[0].optimizer
    assert type(opt) is expected and opt.defaults["eps"] == 1e-6
    assert infos[0].learning_rate == 3e-3 and opt.defaults["weight_decay"] == 0.0
    assert ("momentum" in opt.defaults) == (expected is torch.optim.RMSprop)  # RMSprop takes momentum, Adam not
    assert model.score(X_test, y_test) > 0.5


def test_warm_start_resumes_the_optimizer_state(digits_split):
    X, y, _, _ = digits_split
    model = small(optimizer="adam", learning_rate_init=1e-3, max_iter=1, warm_start=True).fit(X[:128], y[:128])
    assert model._optimizer_state["state"][0]["step"] == 2  # two batches of 64
    model.fit(X[:128], y[:128])
    assert model._optimizer_state["state"][0]["step"] == 4 and model.n_iter_ == 2
    model.set_params(optimizer="sgd").fit(X[:128], y[:128])  # another optimizer starts afresh
    assert "momentum_buffer" in model._optimizer_state["state"][0]


def test_step_schedule_params_and_stopping_callback(digits_split):
    X, y, _, _ = digits_split
    infos = []
    small(max_iter=6, schedule="step", schedule_params={"step_size": 2, "gamma": 0.5},
                  learning_rate_init=0.04, callbacks=[record_epochs(infos)]).fit(X[:128], y[:128])
    np.testing.assert_allclose([i.learning_rate for i in infos], [0.04, 0.04, 0.02, 0.02, 0.01, 0.01])
    assert [i.epoch for i in infos] == list(range(1, 7))
    stopped = small(max_iter=6, callbacks=[StopAfter(2)]).fit(X[:128], y[:128])
    assert stopped.n_iter_ == 2 and stopped.stopped_by_ == "callback"
    with pytest.raises(ValueError, match="does not take"):
        small(schedule="cosine", schedule_params={"step_size": 2}).fit(X[:128], y[:128])


def test_verbose_bars_per_epoch_and_log_lines(digits_split, capsys, caplog):
    X, y, _, _ = digits_split
    small(max_iter=2, verbose=1).fit(X[:128], y[:128])
    err = capsys.readouterr().err
    assert "epoch 1/2" in err and "epoch 2/2" in err and "loss=" in err
    with caplog.at_level(logging.INFO, logger="skphase"):
        small(max_iter=2, verbose=2, early_stopping=True).fit(X[:128], y[:128])
    lines = [r.getMessage() for r in caplog.records if r.name == "skphase"]
    assert len(lines) == 2 and "validation accuracy" in lines[0]
    assert "val_acc=" in capsys.readouterr().err


def test_checkpoint_restores_into_a_fitted_estimator(digits_split, tmp_path):
    X, y, X_test, _ = digits_split
    path = tmp_path / "best.pt"
    model = small(max_iter=3, early_stopping=True, callbacks=[Checkpoint(path)]).fit(X, y)
    # With early stopping the estimator ends on its best validation epoch: the one the checkpoint saved.
    saved = torch.load(path)
    assert saved["value"] == model.best_validation_score_
    other = small(max_iter=1, random_state=7).fit(X, y)
    load_checkpoint(path, other)
    loaded = other.module_.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in saved["module"].items())
    # The weights are the model's; its running statistics were recomputed after training.
    for name, weight in model.module_.named_parameters():
        torch.testing.assert_close(loaded[name], weight, rtol=0, atol=0)


def test_bfloat16_matches_float32_and_float16_needs_cuda(digits_split):
    X, y, X_test, _ = digits_split
    model = small(precision="bfloat16").fit(X, y)
    assert np.isfinite(model.loss_curve_).all()
    low = model.transform(X_test[:50])
    proba = model.predict_proba(X_test[:50])
    assert low.dtype == np.float32 and proba.dtype == np.float32
    assert model.predict(X_test[:5]).shape == (5,) and model.decision_function(X_test[:5]).dtype == np.float32
    blocks = model.transform_blocks(X_test[:5])
    assert all(b.dtype == np.float32 for b in blocks)
    full = model.set_params(precision="float32").transform(X_test[:50])
    assert np.linalg.norm(low - full) / np.linalg.norm(full) < 5e-2
    assert np.abs(low - full).max() > 0  # bfloat16 really ran
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="float16.*CUDA"):
            small(precision="float16").fit(X[:20], y[:20])


class PairDataset(torch.utils.data.Dataset):
    """(image tensor, int label) pairs, as a torchvision dataset yields them."""

    def __init__(self, X, y):
        self.X, self.y = X, y

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):
        return torch.as_tensor(self.X[i]), int(self.y[i])


def test_fit_on_a_dataset_equals_fit_on_the_array(digits_split):
    X, y, X_test, y_test = digits_split
    from_array = small(max_iter=2).fit(X, y)
    from_dataset = small(max_iter=2).fit(PairDataset(X, y))
    assert from_dataset.loss_curve_ == from_array.loss_curve_
    np.testing.assert_array_equal(from_dataset.predict(PairDataset(X_test, y_test)), from_array.predict(X_test))
    np.testing.assert_array_equal(from_dataset.transform(torch.as_tensor(X_test[:4])),
                                  from_array.transform(X_test[:4]))
    # The early-stopping split reads a subset of the Dataset.
    early = small(max_iter=2, early_stopping=True).fit(PairDataset(X, y))
    same = small(max_iter=2, early_stopping=True).fit(X, y)
    assert early.validation_scores_ == same.validation_scores_


@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["float16", "bfloat16"])
def test_mixed_precision_on_gpu(digits_split, precision):
    X, y, X_test, y_test = digits_split
    model = small(device="cuda", precision=precision, max_iter=4).fit(X, y)
    assert np.isfinite(model.loss_curve_).all() and model.score(X_test, y_test) > 0.8
    low = model.transform(X_test[:50])
    full = model.set_params(precision="float32").transform(X_test[:50])
    assert low.dtype == np.float32 and np.linalg.norm(low - full) / np.linalg.norm(full) < 5e-2
