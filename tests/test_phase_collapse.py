"""Behaviour of ScatteringPhaseCollapse: learning, errors, reproducibility, persistence."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

from skphase import PhaseCollapse, ScatteringPhaseCollapse
from skphase.datasets import load_digits_images
from skphase.metrics import resolve_layers


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits_images()
    return X[:400], y[:400], X[1400:], y[1400:]


def small(**params):
    defaults = dict(widths=(8, 16), max_iter=3, batch_size=64, device="cpu", random_state=0)
    defaults.update(params)
    return ScatteringPhaseCollapse(**defaults)


def test_alias():
    assert PhaseCollapse is ScatteringPhaseCollapse


def test_learns_digits(digits):
    X, y, X_test, y_test = digits
    model = small(max_iter=6).fit(X, y)
    assert model.score(X_test, y_test) > 0.85
    assert model.loss_curve_[-1] < model.loss_curve_[0]
    assert model.n_iter_ == 6 and model.stopped_by_ == "max_iter"


def test_transform_and_blocks_agree(digits):
    X, y, X_test, _ = digits
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


def test_blocks_are_hookable_layers(digits):
    X, y, _, _ = digits
    model = small(max_iter=1).fit(X, y)
    # Each block, then the linear head (the output), in forward order.
    assert list(resolve_layers(model.module_)) == ["blocks.0", "blocks.1", "head"]


def test_same_seed_same_model_and_different_seed_differs(digits):
    X, y, X_test, _ = digits
    a = small(random_state=3).fit(X, y).transform(X_test[:20])
    b = small(random_state=3).fit(X, y).transform(X_test[:20])
    c = small(random_state=4).fit(X, y).transform(X_test[:20])
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-3


def test_layouts_and_string_labels(digits):
    X, y, X_test, _ = digits
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


def test_single_class_and_missing_y(digits):
    X, _, _, _ = digits
    with pytest.raises(ValueError, match="at least 2 classes"):
        small().fit(X[:10], np.zeros(10))
    with pytest.raises(ValueError, match="requires y"):
        small().fit(X[:10], None)


def test_transform_checks_channels_and_size(digits):
    X, y, _, _ = digits
    model = small(max_iter=1).fit(X, y)
    with pytest.raises(ValueError, match="2 channel"):
        model.transform(np.zeros((2, 2, 8, 8)))
    with pytest.raises(ValueError, match=r"size \(9, 9\)"):
        model.transform(np.zeros((2, 1, 9, 9)))
    with pytest.raises(ValueError, match="NaN or infinity"):
        model.transform(np.full((2, 1, 8, 8), np.inf))


def test_parameter_errors(digits):
    X, y, _, _ = digits
    with pytest.raises(ValueError, match="n_blocks=3 but widths has 2"):
        small(n_blocks=3).fit(X, y)
    with pytest.raises(ValueError, match="nonlinearity"):
        small(nonlinearity="softplus").fit(X, y)
    assert small(widths=4, n_blocks=2, max_iter=1).fit(X, y).block_shapes_[-1] == (2, 2, 8)


def test_pickle_round_trip(digits):
    X, y, X_test, _ = digits
    model = small().fit(X, y)
    loaded = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(loaded.transform(X_test[:10]), model.transform(X_test[:10]))
    assert loaded.device_ == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="simulates a machine without CUDA")
def test_gpu_fitted_model_loads_on_cpu_only_machine(digits):
    X, y, X_test, _ = digits
    model = small(max_iter=1).fit(X, y)
    expected = model.transform(X_test[:4])
    state = model.__getstate__()
    state["device_"] = torch.device("cuda", 0)  # as pickled on a GPU machine
    restored = ScatteringPhaseCollapse.__new__(ScatteringPhaseCollapse)
    with pytest.warns(UserWarning, match="not available here"):
        restored.__setstate__(state)
    assert restored.device_ == torch.device("cpu")
    np.testing.assert_array_equal(restored.transform(X_test[:4]), expected)


def test_warm_start_continues(digits):
    X, y, _, _ = digits
    model = small(max_iter=2, warm_start=True).fit(X, y)
    first = model.loss_curve_[:]
    model.fit(X, y)
    assert model.n_iter_ == 4 and model.loss_curve_[:2] == first
    cold = small(max_iter=2).fit(X, y)
    cold.fit(X, y)
    assert cold.n_iter_ == 2


def test_interruption_keeps_the_best_model(digits, monkeypatch):
    X, y, X_test, y_test = digits
    import skphase.nn._training as training

    calls = {"n": 0}
    original = training.augment_batch

    def interrupt_after_some_batches(images, augmentation, generator):
        calls["n"] += 1
        if calls["n"] == 16:  # in the third epoch (7 batches per epoch)
            raise KeyboardInterrupt
        return original(images, augmentation, generator)

    monkeypatch.setattr(training, "augment_batch", interrupt_after_some_batches)
    model = small(max_iter=10).fit(X, y)
    assert model.stopped_by_ == "interrupted" and model.n_iter_ == 2
    assert model.score(X_test, y_test) > 0.3


def test_early_stopping_and_time_budget(digits):
    X, y, _, _ = digits
    model = small(max_iter=50, early_stopping=True, n_iter_no_change=2, learning_rate_init=1e-6).fit(X, y)
    assert model.stopped_by_ == "early_stopping"
    assert len(model.validation_scores_) == model.n_iter_ < 50
    assert model.best_validation_score_ == max(model.validation_scores_)
    timed = small(max_iter=50, max_time=1e-3).fit(X, y)
    assert timed.stopped_by_ == "max_time" and timed.n_iter_ == 1


@pytest.mark.parametrize("nonlinearity", ["soft_threshold", "modulus_collapse", "sigmoid", "tanh", "relu", "identity"])
@pytest.mark.parametrize("variant", ["lscat", "lscat+skip"])
def test_every_nonlinearity_and_variant_trains(digits, nonlinearity, variant):
    X, y, _, _ = digits
    model = small(nonlinearity=nonlinearity, variant=variant, max_iter=1).fit(X[:128], y[:128])
    assert np.isfinite(model.loss_curve_).all()


def test_augmentation_and_factorized_cifar_shapes():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(16, 3, 32, 32)).astype(np.float32)
    y = np.arange(16) % 2
    model = ScatteringPhaseCollapse(widths=(4,) * 8, factorized=True, max_iter=1, augmentation="crop+flip",
                                    batch_size=8, device="cpu", random_state=0).fit(X, y)
    assert [s[:2] for s in model.block_shapes_] == [(32, 32), (16, 16), (16, 16), (8, 8), (8, 8), (4, 4), (4, 4), (2, 2)]


def test_grid_search_over_nonlinearity_in_a_pipeline(digits):
    X, y, _, _ = digits
    pipe = Pipeline([("pc", small(max_iter=1)), ("clf", LogisticRegression(max_iter=200))])
    search = GridSearchCV(pipe, {"pc__nonlinearity": ["modulus", "soft_threshold"]}, cv=2)
    search.fit(X[:200], y[:200])
    assert set(search.cv_results_["param_pc__nonlinearity"]) == {"modulus", "soft_threshold"}
    assert 0 <= search.best_score_ <= 1
    # clone + set_params rebuilds the network in fit with the new parameters.
    model = clone(small(max_iter=1)).set_params(widths=(4, 6)).fit(X[:100], y[:100])
    assert model.block_shapes_[-1][-1] == 12


@pytest.mark.gpu
def test_fits_on_gpu_and_pickles_to_cpu(digits):
    X, y, X_test, _ = digits
    model = small(device="cuda").fit(X, y)
    assert model.device_.type == "cuda"
    cpu = small(device="cpu").fit(X, y)
    np.testing.assert_allclose(model.transform(X_test[:5]), cpu.transform(X_test[:5]), atol=1e-2)
    assert pickle.loads(pickle.dumps(model)).transform(X_test[:5]).shape == (5, cpu.transform(X_test[:5]).shape[1])


def test_pandas_output(digits):
    pd = pytest.importorskip("pandas")
    X, y, X_test, _ = digits
    model = small(max_iter=1).fit(X, y).set_output(transform="pandas")
    frame = model.transform(X_test[:3])
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == list(model.get_feature_names_out())
