import warnings

import numpy as np
import pytest
import torch
from scipy import ndimage
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from skphase.metrics._sensitivity import (
    diffeo_sensitivity,
    layerwise_sensitivity,
    noise_sensitivity,
    relative_stability,
)


def _smooth_images(n=96, size=16, channels=1, seed=0):
    rng = np.random.default_rng(seed)
    x = ndimage.gaussian_filter(rng.standard_normal((n, channels, size, size)), sigma=(0, 0, 2, 2))
    # smooth texture plus a brightness that varies from image to image, like crops of natural images
    x = x / x.std() + rng.standard_normal((n, 1, 1, 1))
    return torch.as_tensor(x, dtype=torch.float32)


def _net(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(8, 8, 3, padding=1, stride=2), torch.nn.ReLU(),
        torch.nn.Flatten(), torch.nn.Linear(8 * 8 * 8, 5),
    )


KW = dict(random_state=0, n_bootstraps=200, batch_size=32)


def test_identity_has_g_equal_d():
    row = relative_stability(torch.nn.Identity(), _smooth_images(), **KW)
    assert row["G"] == pytest.approx(row["D"], rel=1e-6)
    assert row["R"] == pytest.approx(1.0, rel=1e-6)
    assert row["D_low"] < row["D"] < row["D_high"]
    assert 0 < row["D"] < 1 and row["n_images"] == 96
    assert diffeo_sensitivity(torch.nn.Identity(), _smooth_images(), **KW) == row["D"]
    assert noise_sensitivity(torch.nn.Identity(), _smooth_images(), **KW) == row["G"]


def test_constant_map_is_refused_not_zero_over_zero():
    X = _smooth_images(32)
    with pytest.raises(ValueError, match="constant over the inputs"):
        relative_stability(lambda x: torch.ones(x.shape[0], 3), X, **KW)
    zero = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3, bias=False), torch.nn.Conv2d(2, 2, 1))
    torch.nn.init.zeros_(zero[0].weight)
    with pytest.warns(RuntimeWarning, match="constant over the inputs"):
        rows = layerwise_sensitivity(zero, X, **KW)
    assert np.isnan(rows[1]["D"]) and np.isnan(rows[1]["R"]) and np.isnan(rows[2]["G"])
    assert rows[0]["R"] == pytest.approx(1.0)


def test_global_average_pooling_is_far_less_sensitive_than_identity():
    X = _smooth_images(channels=3, size=32)
    d_id = relative_stability(torch.nn.Identity(), X, **KW)["D"]
    gap = relative_stability(lambda x: x.mean(dim=(2, 3)), X, **KW)
    assert gap["D"] < 0.1 * d_id
    assert gap["G"] < gap["D"]  # noise averages out even more than smooth deformations


def test_circular_shift_seen_by_identity_not_by_invariant_map():
    X = _smooth_images()

    def shift(x, generator):
        return torch.roll(x, shifts=(3, 5), dims=(2, 3))

    def fourier_modulus(x):  # exactly invariant to circular shifts
        return torch.fft.fft2(x.double()).abs()

    seen = relative_stability(torch.nn.Identity(), X, perturbation=shift, **KW)
    assert seen["D"] > 0.2
    unseen = relative_stability(fourier_modulus, X, perturbation=shift, **KW)
    assert unseen["D"] < 1e-10 and unseen["G"] > 0.1


def test_sklearn_transformer_and_pipeline_prefix():
    X = _smooth_images(80, size=8)
    flat = X.flatten(1).numpy()
    ref = relative_stability(torch.nn.Identity(), flat, image_shape=(1, 8, 8), **KW)
    # a full PCA is an isometry up to centring: same D and G as the identity
    pca = PCA(n_components=64).fit(flat)
    row = relative_stability(pca, flat, image_shape=(1, 8, 8), **KW)
    assert row["D"] == pytest.approx(ref["D"], rel=1e-4)
    assert row["G"] == pytest.approx(ref["G"], rel=1e-4)
    y = (flat[:, 0] > np.median(flat[:, 0])).astype(int)
    pipe = Pipeline([("id", FunctionTransformer()), ("pca", PCA(n_components=5)), ("clf", LogisticRegression())])
    pipe.fit(flat, y)
    prefix = relative_stability(pipe[:-1], flat, image_shape=(1, 8, 8), **KW)
    assert 0 < prefix["D"] < row["D"] * 3 and np.isfinite(prefix["R"])
    rows = layerwise_sensitivity(pipe[:-1], flat, image_shape=(1, 8, 8), **KW)
    assert [r["layer"] for r in rows] == ["input", "output"]
    assert rows[1]["D"] == pytest.approx(prefix["D"])
    with pytest.raises(TypeError, match="layer-wise measurements need a torch"):
        layerwise_sensitivity(pipe[:-1], flat, image_shape=(1, 8, 8), layers=["pca"], **KW)


def test_layerwise_matches_truncated_models_and_restores_mode():
    X = _smooth_images(64)
    net = _net()
    net.train()
    rows = layerwise_sensitivity(net, X, include_output=True, **KW)
    assert net.training
    assert [r["layer"] for r in rows] == ["input", "0", "2", "5", "output"]
    for row, depth in zip(rows[1:4], (1, 3, 6)):
        alone = relative_stability(net[:depth], X, **KW)
        assert row["D"] == pytest.approx(alone["D"], rel=1e-6)
        assert row["G"] == pytest.approx(alone["G"], rel=1e-6)
    assert rows[-1]["D"] == pytest.approx(rows[-2]["D"])
    assert rows[0]["R"] == pytest.approx(1.0, rel=1e-6)
    named = layerwise_sensitivity(net, X, layers=["3"], include_input=False, **KW)
    assert [r["layer"] for r in named] == ["3"]


def test_reproducible_and_streaming_memory_bounded_by_batch():
    X = _smooth_images(50)
    seen = []

    class Recorder(torch.nn.Module):
        def forward(self, x):
            seen.append(x.shape[0])
            return x.mean(dim=1)

    a = relative_stability(Recorder(), X, random_state=3, n_bootstraps=50, batch_size=16)
    b = relative_stability(Recorder(), X, random_state=3, n_bootstraps=50, batch_size=16)
    assert a == b
    assert max(seen) <= 16 and sum(seen) == 3 * 2 * 50  # clean, deformed, noisy for every image
    c = relative_stability(Recorder(), X, random_state=4, n_bootstraps=50, batch_size=16)
    assert c["D"] != a["D"]


class _Block(torch.nn.Module):
    is_representation_layer = True

    def __init__(self, cin, cout):
        super().__init__()
        self.conv = torch.nn.Conv2d(cin, cout, 3, padding=1, stride=2)

    def forward(self, x):
        return self.conv(x).abs()


class _FittedNetwork:
    """Stands for a fitted skphase estimator: a torch model in module_, numpy transform in batches."""

    def __init__(self, batch_size):
        torch.manual_seed(0)
        self.module_ = torch.nn.Module()
        self.module_.blocks = torch.nn.ModuleList([_Block(1, 4), _Block(4, 8)])
        self.module_.forward = self._forward
        self.batch_size = batch_size

    def _forward(self, x):
        for block in self.module_.blocks:
            x = block(x)
        return x

    def transform(self, X):
        X = torch.as_tensor(X)
        with torch.no_grad():
            return torch.cat([self.module_(X[i:i + self.batch_size]).flatten(1)
                              for i in range(0, len(X), self.batch_size)]).numpy()


def test_estimator_blocks_through_module_hooks():
    X = _smooth_images(48)
    est = _FittedNetwork(batch_size=10)
    rows = layerwise_sensitivity(est, X, include_output=True, **KW)  # batch_size is capped at 10
    assert [r["layer"] for r in rows] == ["input", "blocks.0", "blocks.1", "output"]
    assert rows[2]["D"] == pytest.approx(rows[3]["D"], rel=1e-5)
    direct = layerwise_sensitivity(est.module_, X, random_state=0, n_bootstraps=200, batch_size=10)
    assert [r["D"] for r in direct] == pytest.approx([r["D"] for r in rows[:3]], rel=1e-5)


def test_complex_representations():
    X = _smooth_images(32)
    fft = relative_stability(lambda x: torch.fft.fft2(x), X, **KW)
    real = relative_stability(lambda x: torch.view_as_real(torch.fft.fft2(x)), X, **KW)
    assert fft["D"] == pytest.approx(real["D"], rel=1e-6)
    # Parseval: the (unnormalised) FFT is a scaled isometry, so D matches the identity's
    assert fft["D"] == pytest.approx(relative_stability(torch.nn.Identity(), X, **KW)["D"], rel=1e-4)


def test_bad_input_errors():
    X = _smooth_images(8)
    with pytest.raises(ValueError, match="batch_size >= 2"):
        relative_stability(torch.nn.Identity(), X, batch_size=1)
    with pytest.raises(ValueError, match="at least 2|min"):
        relative_stability(torch.nn.Identity(), X[:1])
    with pytest.raises(ValueError, match="confidence"):
        relative_stability(torch.nn.Identity(), X, confidence=1.5)
    with pytest.raises(ValueError, match="cut-off"):
        relative_stability(torch.nn.Identity(), X, cutoff=1)
    with pytest.raises(ValueError, match="NaN|nan|finite"):
        relative_stability(torch.nn.Identity(), torch.full((4, 1, 8, 8), float("nan")))


def test_untrained_cnn_has_relative_stability_of_order_one():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rows = layerwise_sensitivity(_net(), _smooth_images(64), **KW)
    for row in rows:
        assert 0.2 < row["R"] < 5
        assert row["R_low"] <= row["R"] <= row["R_high"]


@pytest.mark.gpu
def test_cuda_module():
    X = _smooth_images(32)
    cpu = layerwise_sensitivity(_net(), X, **KW)
    gpu = layerwise_sensitivity(_net().cuda(), X, **KW)
    assert [r["D"] for r in gpu] == pytest.approx([r["D"] for r in cpu], rel=1e-3)


def test_non_finite_layer_outputs_raise_and_name_the_layer():
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 4))
    with torch.no_grad():
        net[1].weight.fill_(float("inf"))
    X = np.random.default_rng(0).normal(size=(8, 1, 8, 8)).astype(np.float32)
    with pytest.raises(ValueError, match="layer '1' holds NaN or infinite"):
        layerwise_sensitivity(net, X, layers=["1"], random_state=0)


def test_huge_displacement_warns_of_folding():
    X = np.random.default_rng(0).normal(size=(8, 1, 8, 8)).astype(np.float32)
    with pytest.warns(UserWarning, match="fold"):
        relative_stability(lambda b: b.flatten(1), X, displacement=1e6, random_state=0)
