"""Every estimator on CUDA: fit, transform, predict, agreement with the CPU, pickles that load on a CPU-only machine.

Run on a machine with a CUDA device: ``python -m pytest -m gpu -q`` (skipped elsewhere).
"""

import copy
import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch

from skphase import (ConvRFM, ConvRFMRegressor, DTCWPTFeatures, ScatteringPhaseCollapse,
                     ScatteringTransform)
from skphase.utils import resolve_device

pytestmark = pytest.mark.gpu

CPU = torch.device("cpu")

# Largest relative error ||gpu - cpu|| / ||cpu|| of the network's features, same weights: float32 may run
# cuDNN convolutions in TF32 (10-bit mantissa, like float16); bfloat16 keeps 8 bits.
FEATURE_RTOL = {"float32": 5e-3, "float16": 1e-2, "bfloat16": 3e-2}
# Share of test labels that must agree with the float32 CPU evaluation of the same weights.
LABEL_AGREEMENT = {"float32": 0.99, "float16": 0.97, "bfloat16": 0.97}


def relative_error(a, b):
    return float(np.linalg.norm(np.asarray(a, np.float64) - b) / np.linalg.norm(b))


def small_network(**params):
    defaults = dict(widths=(8, 16), max_iter=3, batch_size=64, random_state=0)
    defaults.update(params)
    return ScatteringPhaseCollapse(**defaults)


def on_cpu(model):
    """A copy of a CUDA-fitted network that runs its weights on the CPU in float32 (the reference)."""
    ref = copy.deepcopy(model).set_params(precision="float32")
    ref.device_ = CPU  # inference moves module_ to device_
    return ref


@pytest.mark.parametrize("precision", ["float32", "bfloat16", "float16"])
def test_phase_collapse_on_cuda(digits_split, precision):
    X, y, X_test, y_test = digits_split
    model = small_network(device="cuda", precision=precision).fit(X, y)
    assert model.device_.type == "cuda"
    assert next(model.module_.parameters()).device.type == "cuda"
    assert np.isfinite(model.loss_curve_).all() and model.loss_curve_[-1] < model.loss_curve_[0]
    features = model.transform(X_test)
    assert features.dtype == np.float32 and np.isfinite(features).all()
    labels = model.predict(X_test)
    proba = model.predict_proba(X_test)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-5)
    assert model.score(X_test, y_test) > 0.6  # 3 epochs on 400 digits_split: 0.8 on the CPU

    ref = on_cpu(model)
    assert relative_error(features, ref.transform(X_test)) < FEATURE_RTOL[precision]
    assert (labels == ref.predict(X_test)).mean() >= LABEL_AGREEMENT[precision]
    if precision == "float32":
        # Trained on the CPU from the same seed: not the same weights (other kernels), the same quality.
        cpu_model = small_network(device="cpu").fit(X, y)
        assert abs(model.score(X_test, y_test) - cpu_model.score(X_test, y_test)) < 0.1


@pytest.mark.parametrize("precision", ["float32", "float16"])
def test_memory_efficient_training_step_on_cuda_holds_less_for_the_same_gradients(precision):
    from skphase.nn import PhaseCollapseNet

    generator = torch.Generator().manual_seed(0)
    images = torch.randn(32, 3, 32, 32, generator=generator).cuda()
    labels = torch.randint(0, 10, (32,), generator=generator).cuda()

    def step(memory_efficient):
        net = PhaseCollapseNet(3, (32, 32), (64, 128, 256, 512), 10, L=4, factorized=True,
                               generator=torch.Generator().manual_seed(0), memory_efficient=memory_efficient).cuda()
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        with torch.autocast("cuda", dtype=torch.float16, enabled=precision == "float16"):
            loss = torch.nn.functional.cross_entropy(net(images), labels)
        loss.backward()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - before, [p.grad.float().cpu() for p in net.parameters()]

    kept_peak, kept = step(False)
    rebuilt_peak, rebuilt = step(True)
    assert rebuilt_peak < 0.85 * kept_peak, (rebuilt_peak, kept_peak)
    for got, expected in zip(rebuilt, kept, strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-3, atol=1e-5)


def test_dtcwpt_features_on_cuda():
    X = np.random.default_rng(0).random((6, 3, 16, 16)).astype(np.float32)
    for dtype, rtol in (("float64", 1e-9), ("float32", 2e-3)):
        for pooling in ("modulus", "max"):
            gpu = DTCWPTFeatures(J=2, pooling=pooling, dtype=dtype, device="cuda").fit(X)
            cpu = DTCWPTFeatures(J=2, pooling=pooling, dtype=dtype, device="cpu").fit(X)
            assert gpu.device_.type == "cuda"
            assert relative_error(gpu.transform(X), cpu.transform(X)) < rtol, (dtype, pooling)
    inverse = DTCWPTFeatures(J=2, pooling="none", device="cuda").fit(X)
    np.testing.assert_allclose(inverse.inverse_transform(inverse.transform(X)), X.reshape(6, -1), atol=1e-5)


def test_scattering_transform_on_cuda(digits_split):
    X = digits_split[0][:64]
    gpu = ScatteringTransform(J=2, L=8, device="cuda").fit(X)
    cpu = ScatteringTransform(J=2, L=8, device="cpu").fit(X)
    assert gpu.device_.type == "cuda" and gpu.output_shape_ == cpu.output_shape_
    out, expected = gpu.transform(X), cpu.transform(X)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5 * np.abs(expected).max())


@pytest.mark.parametrize("estimator", [ConvRFM, ConvRFMRegressor])
def test_convrfm_on_cuda(digits_split, estimator):
    X, y, X_test, y_test = digits_split
    X, y = X[:120], y[:120]
    target = y if estimator is ConvRFM else y / 9.0
    params = dict(n_iter=2, dtype="float64", random_state=0)
    gpu = estimator(device="cuda", **params).fit(X, target)
    cpu = estimator(device="cpu", **params).fit(X, target)
    assert gpu.device_.type == "cuda"
    assert gpu.best_iteration_ == cpu.best_iteration_
    np.testing.assert_allclose(gpu.M_, cpu.M_, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(gpu.transform(X_test), cpu.transform(X_test), rtol=1e-5, atol=1e-6)
    if estimator is ConvRFM:
        np.testing.assert_array_equal(gpu.predict(X_test), cpu.predict(X_test))
        np.testing.assert_allclose(gpu.staged_score(X_test, y_test), cpu.staged_score(X_test, y_test), atol=1e-12)
    else:
        np.testing.assert_allclose(gpu.predict(X_test), cpu.predict(X_test), rtol=1e-6, atol=1e-8)


_LOAD_ON_CPU = """
import json, pickle, sys, warnings
import numpy as np, torch
torch.set_num_threads(1)
assert not torch.cuda.is_available()
models_path, X_path, out_path = sys.argv[1:]
X = np.load(X_path)
with open(models_path, "rb") as handle:
    blobs = pickle.load(handle)
results, messages = {}, {}
for name, blob in blobs.items():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = pickle.loads(blob)
    messages[name] = [str(w.message) for w in caught]
    assert model.device_ == torch.device("cpu"), model.device_
    results[name] = model.predict(X) if hasattr(model, "predict") else model.transform(X)
np.savez(out_path, **results)
print(json.dumps(messages))
"""


def test_cuda_fitted_models_load_and_predict_on_a_cpu_only_machine(digits_split, tmp_path):
    X, y, X_test, _ = digits_split
    models = {
        "phase_collapse": small_network(device="cuda").fit(X, y),
        "convrfm": ConvRFM(n_iter=1, dtype="float64", device="cuda", random_state=0).fit(X[:120], y[:120]),
        "convrfm_regressor": ConvRFMRegressor(n_iter=1, dtype="float64", device="cuda",
                                              random_state=0).fit(X[:120], y[:120] / 9.0),
        "dtcwpt": DTCWPTFeatures(J=2, device="cuda").fit(X),
        "scattering": ScatteringTransform(J=2, L=4, device="cuda").fit(X),
    }
    # What each model gives here: on its GPU, and (network) its weights evaluated on this machine's CPU.
    on_gpu = {name: m.predict(X_test) if hasattr(m, "predict") else m.transform(X_test) for name, m in models.items()}
    cpu_labels = on_cpu(models["phase_collapse"]).predict(X_test)
    with open(tmp_path / "models.pkl", "wb") as handle:
        pickle.dump({name: pickle.dumps(m) for name, m in models.items()}, handle)
    np.save(tmp_path / "X.npy", X_test)
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1")
    done = subprocess.run(
        [sys.executable, "-c", _LOAD_ON_CPU, str(tmp_path / "models.pkl"), str(tmp_path / "X.npy"),
         str(tmp_path / "out.npz")], env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    messages = json.loads(done.stdout.strip().splitlines()[-1])
    loaded = np.load(tmp_path / "out.npz")
    for name in models:
        assert any("not available here" in m for m in messages[name]), (name, messages[name])
    # Same weights, same CPU code: the same labels as this process computes on its CPU.
    np.testing.assert_array_equal(loaded["phase_collapse"], cpu_labels)
    assert (loaded["phase_collapse"] == on_gpu["phase_collapse"]).mean() >= LABEL_AGREEMENT["float32"]
    np.testing.assert_array_equal(loaded["convrfm"], on_gpu["convrfm"])
    np.testing.assert_allclose(loaded["convrfm_regressor"], on_gpu["convrfm_regressor"], rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(loaded["dtcwpt"], on_gpu["dtcwpt"], rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(loaded["scattering"], on_gpu["scattering"], rtol=1e-4,
                               atol=1e-5 * np.abs(on_gpu["scattering"]).max())


def test_auto_picks_cuda(digits_split):
    assert resolve_device("auto").type == "cuda"
    X = digits_split[0][:16]
    assert ScatteringTransform(J=1, L=4, device="auto").fit(X).device_.type == "cuda"
    assert DTCWPTFeatures(J=1, device="auto").fit(X).device_.type == "cuda"
