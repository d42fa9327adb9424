"""The model probe that every metric reads models through: device, dtype, batch shape, layers, mode."""

import pathlib

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import skphase.metrics
from skphase.metrics import (
    LayerCapture,
    class_separation,
    layerwise_class_separation,
    layerwise_sensitivity,
    mean_flip_rate,
    nfa_correlation,
    relative_stability,
    shift_sensitivity,
)
from skphase.metrics._probes import ModelProbe, input_dtype, model_device

KW = dict(random_state=0, n_bootstraps=20, batch_size=16, displacement=0.5)  # no folding on 8 x 8 images


def _flat_task(n=48, side=8, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.random((n, side * side))
    y = np.where(X[:, : side * side // 2].sum(axis=1) > X[:, side * side // 2 :].sum(axis=1), "left", "right")
    return X, y


def _cnn(seed=0, flat_input=False):
    torch.manual_seed(seed)
    layers = [torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 2)]
    if flat_input:
        layers.insert(0, torch.nn.Unflatten(1, (1, 8, 8)))
    return torch.nn.Sequential(*layers)


# ----------------------------------------------------------------------------------------------
# Flat rows: every metric gives a model fitted on (n, d) rows what it was fitted on.
# ----------------------------------------------------------------------------------------------
def test_every_metric_works_on_a_pipeline_fitted_on_flat_rows():
    X, y = _flat_task()
    # StandardScaler refuses anything but 2-D input: a 4-D batch would raise.
    pipe = make_pipeline(StandardScaler(), PCA(n_components=6), LogisticRegression()).fit(X, y)
    features = pipe[:-1]
    assert np.isfinite(relative_stability(features, X, **KW)["R"])
    rows = layerwise_sensitivity(features, X, **KW)
    assert [row["layer"] for row in rows] == ["input", "output"]
    assert 0 <= class_separation(features, X, y)["ncm_accuracy"] <= 1
    rows = layerwise_class_separation(features, X, y, X_test=X[:10], y_test=y[:10])
    assert [row["layer"] for row in rows] == ["input", "output"]
    flip = mean_flip_rate(pipe, X)  # string labels from predict
    assert 0 <= flip <= 1
    # Shifting flat rows is shifting the 8 x 8 images they hold.
    flat = shift_sensitivity(features, X)
    images = shift_sensitivity(lambda b: torch.as_tensor(features.transform(b.flatten(1).numpy())),
                               X.reshape(-1, 1, 8, 8))
    np.testing.assert_allclose(flat["per_shift"], images["per_shift"], rtol=1e-12)


def test_nfa_correlation_on_a_network_taking_flat_rows():
    X, _ = _flat_task()
    flat = nfa_correlation(_cnn(flat_input=True), X, return_agop=True)
    images = nfa_correlation(_cnn(), X.reshape(-1, 1, 8, 8), return_agop=True)
    assert list(flat) == ["1"] and list(images) == ["0"]
    np.testing.assert_allclose(flat["1"]["agop"], images["0"]["agop"], rtol=1e-6)


@pytest.mark.parametrize("shape", [(12, 64), (12, 8, 8), (12, 1, 8, 8), (12, 2, 8, 8)])
def test_every_metric_calls_the_model_on_batches_shaped_like_X(shape):
    X = np.random.default_rng(0).random(shape, dtype=np.float32)
    y = np.arange(shape[0]) % 2
    seen = []

    def model(batch):
        seen.append(tuple(batch.shape[1:]))
        return batch.reshape(batch.shape[0], -1)

    relative_stability(model, X, **KW)
    class_separation(model, X, y)
    shift_sensitivity(model, X)
    mean_flip_rate(model, X)
    assert set(seen) == {shape[1:]}


def test_model_input_restores_the_layout_of_X():
    batch = torch.zeros(3, 1, 4, 4)
    assert ModelProbe(None, np.zeros((2, 16))).model_input(batch).shape == (3, 16)
    assert ModelProbe(None, np.zeros((2, 4, 4))).model_input(batch).shape == (3, 4, 4)
    assert ModelProbe(None, np.zeros((2, 1, 4, 4))).model_input(batch).shape == (3, 1, 4, 4)
    probe = ModelProbe(None, np.zeros((2, 12)), image_shape=(3, 2, 2))
    assert probe.images.shape == (2, 3, 2, 2)
    assert probe.model_input(probe.images).shape == (2, 12)


# ----------------------------------------------------------------------------------------------
# Device and dtype
# ----------------------------------------------------------------------------------------------
def test_device_is_the_given_one_else_the_modules_else_the_cpu():
    assert model_device(torch.nn.Linear(2, 2, device="meta")) == torch.device("meta")  # its first parameter
    buffered = torch.nn.BatchNorm1d(2, affine=False)  # buffers only
    assert model_device(buffered.to("meta")) == torch.device("meta")
    assert model_device(torch.nn.ReLU()) == torch.device("cpu")
    assert model_device(lambda b: b) == torch.device("cpu")
    assert model_device(lambda b: b, "cpu") == torch.device("cpu")
    assert ModelProbe(torch.nn.Linear(16, 2), np.zeros((2, 16))).device == torch.device("cpu")
    with pytest.raises(ValueError, match="not supported by skphase"):
        ModelProbe(torch.nn.Linear(16, 2), np.zeros((2, 16)), device="meta")


def test_dtype_is_the_modules_else_float64_kept_else_float32():
    X32 = np.zeros((2, 1, 4, 4), dtype=np.float32)
    X64 = X32.astype(np.float64)
    assert input_dtype(X32, torch.nn.Linear(2, 2).double()) == torch.float64
    assert input_dtype(X64, torch.nn.Linear(2, 2)) == torch.float32
    assert input_dtype(X64, torch.nn.ReLU()) == torch.float64  # no floats of its own: X decides
    assert input_dtype(torch.as_tensor(X64)) == torch.float64
    assert input_dtype(X32) == input_dtype(X32.astype(np.uint8)) == input_dtype(X64.tolist()) == torch.float32
    probe = ModelProbe(torch.nn.Flatten().double(), X32)
    assert probe.dtype == probe.images.dtype == torch.float32
    assert ModelProbe(_cnn().double(), X32).images.dtype == torch.float64


def test_a_float64_network_is_measured_on_float32_images():
    X = np.random.default_rng(0).random((24, 1, 8, 8), dtype=np.float32)
    y = np.arange(24) % 2
    single, double = _cnn(), _cnn().double()
    # Diffeomorphisms drawn in float64 differ from those drawn in float32: only check it runs.
    assert np.isfinite(layerwise_sensitivity(double, X, **KW)[1]["D"])
    for metric in (lambda m: layerwise_class_separation(m, X, y)[1]["fisher_ratio"],
                   lambda m: shift_sensitivity(m, X)["overall"],
                   lambda m: nfa_correlation(m, X)["0"]["correlation"]):
        assert metric(double) == pytest.approx(metric(single), rel=1e-4)


# ----------------------------------------------------------------------------------------------
# Layers, hooks and modes
# ----------------------------------------------------------------------------------------------
def test_the_layers_type_error_is_raised_from_one_place():
    X = np.zeros((8, 1, 4, 4), dtype=np.float32)
    y = np.arange(8) % 2
    message = "layer-wise measurements need a torch nn.Module"
    with pytest.raises(TypeError, match=message):
        ModelProbe(lambda b: b, X, layers=["0"])
    with pytest.raises(TypeError, match=message):
        layerwise_sensitivity(lambda b: b, X, layers=["0"])
    with pytest.raises(TypeError, match=message):
        layerwise_class_separation(lambda b: b, X, y, layers=lambda name, sub: True)
    source = "".join(path.read_text() for path in pathlib.Path(skphase.metrics.__file__).parent.glob("*.py"))
    assert source.count("layer-wise measurements need") == 1


def test_layers_default_to_flagged_blocks_else_conv_and_linear_else_output():
    class Block(torch.nn.Module):
        is_representation_layer = True

        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 1, 1)

        def forward(self, x):
            return self.conv(x)

    X = np.zeros((2, 1, 4, 4), dtype=np.float32)
    assert list(ModelProbe(torch.nn.Sequential(Block(), Block()), X, layers=None).layers) == ["0", "1"]
    assert list(ModelProbe(_cnn(), X, layers=None).layers) == ["0", "3"]
    assert ModelProbe(_cnn(), X).layers is None  # layers=False: the output only
    assert ModelProbe(lambda b: b, X, layers=None).layers is None
    with pytest.raises(RuntimeError, match="reads no layer"):
        ModelProbe(_cnn(), X).capture()


def test_each_submodule_gets_its_mode_back():
    X = np.random.default_rng(0).random((16, 1, 8, 8), dtype=np.float32)
    y = np.arange(16) % 2
    net = _cnn().train()
    net[3].eval()  # a frozen head inside a training network
    modes = [sub.training for sub in net.modules()]
    probe = ModelProbe(net, X)
    with probe:
        assert not any(sub.training for sub in net.modules())
    assert [sub.training for sub in net.modules()] == modes
    for measure in (lambda: relative_stability(net, X, **KW), lambda: class_separation(net, X, y),
                    lambda: shift_sensitivity(net, X), lambda: mean_flip_rate(net, X),
                    lambda: nfa_correlation(net, X)):
        measure()
        assert [sub.training for sub in net.modules()] == modes


def test_layer_capture_records_what_a_callable_chooses_and_replaces_the_output():
    net = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.ReLU())
    x = torch.randn(2, 3)

    def negate(layer, inputs, output):
        return inputs, -output

    with LayerCapture(net, ["0"], capture=negate) as capture:
        out = net(x)
    assert torch.equal(capture.outputs["0"], x)
    assert torch.equal(out, torch.relu(-net[0](x)))
    assert torch.equal(net(x), torch.relu(net[0](x)))  # hooks removed on exit
    with pytest.raises(ValueError, match="capture must be"):
        LayerCapture(net, capture="gradient")


def test_output_grad_and_predict():
    X = np.random.default_rng(0).random((4, 1, 8, 8), dtype=np.float32)
    with pytest.raises(TypeError, match="gradients need a torch nn.Module"):
        ModelProbe(lambda b: b, X).output(torch.zeros(1, 1, 8, 8), grad=True)
    probe = ModelProbe(_cnn(), X)
    with probe:
        assert probe.output(probe.images, grad=True).requires_grad
        assert not probe.output(probe.images).requires_grad
        labels = probe.predict(probe.images)
    assert isinstance(labels, np.ndarray) and labels.shape == (4,)
    with pytest.raises(TypeError, match="Cannot measure a str"):
        ModelProbe("not a model", X).output(torch.zeros(1, 1, 8, 8))


def test_held_out_images_must_match_the_images():
    X = np.zeros((6, 1, 4, 4), dtype=np.float32)
    probe = ModelProbe(lambda b: b, X)
    assert probe.check_images(X[:2], name="X_test").shape == (2, 1, 4, 4)
    with pytest.raises(ValueError, match=r"X_test images \(1, 5, 5\) differ from X's \(1, 4, 4\)"):
        probe.check_images(np.zeros((2, 1, 5, 5)), name="X_test")


def test_batch_size_is_capped_at_an_estimators_own():
    X = np.zeros((6, 1, 4, 4), dtype=np.float32)

    class Estimator:
        batch_size = 3

        def transform(self, X):
            return X

    assert ModelProbe(Estimator(), X).batch_size(10) == 3
    assert ModelProbe(Estimator(), X).batch_size(1) == 1
    assert ModelProbe(Estimator(), X).batch_size(1, minimum=2) == 2
    assert ModelProbe(torch.nn.Flatten(), X).batch_size(10) == 10
