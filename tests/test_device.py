"""Device choice (one GPU per dask worker, mocked), the device validator, and CPU-safe pickling."""

import pickle
import subprocess
import sys
import types
import zlib

import numpy as np
import pytest
import torch

from skphase import ConvRFM, ScatteringPhaseCollapse, ScatteringTransform
from skphase.metrics import as_batch_function, nfa_correlation, relative_stability
from skphase.utils import _device
from skphase.utils import resolve_device
from skphase.utils._device import carries_torch, match_worker_threads


@pytest.fixture
def gpus(monkeypatch):
    """Pretend this machine has ``k`` CUDA devices, outside any worker and without CUDA_VISIBLE_DEVICES."""

    def set_count(k):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: k > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: k)

    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(_device, "_current_worker", lambda: None)
    return set_count


def in_worker(monkeypatch, name, nthreads=1, address="tcp://127.0.0.1:40000"):
    """Pretend to run in a dask worker laid out as distributed's (thread count on ``worker.state``)."""
    worker = types.SimpleNamespace(name=name, address=address, state=types.SimpleNamespace(nthreads=nthreads))
    monkeypatch.setattr(_device, "_current_worker", lambda: worker)
    return worker


# --------------------------------------------------------------- device choice
def test_auto_outside_a_worker(gpus):
    gpus(0)
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device(None) == torch.device("cpu")
    gpus(4)
    assert resolve_device("auto") == torch.device("cuda")


@pytest.mark.parametrize("name, expected", [(0, 0), (1, 1), (2, 2), (5, 1), ("3", 3), ("SLURMCluster-6", 2)])
def test_auto_in_a_worker_takes_its_rank_modulo_the_gpus(gpus, monkeypatch, name, expected):
    gpus(4)
    in_worker(monkeypatch, name)
    assert resolve_device("auto") == torch.device("cuda", expected)


def test_workers_of_a_local_cluster_get_distinct_gpus(gpus, monkeypatch):
    gpus(2)
    chosen = []
    for name in range(4):
        in_worker(monkeypatch, name)
        chosen.append(resolve_device("auto").index)
    assert chosen == [0, 1, 0, 1]


def test_auto_in_a_worker_pinned_by_cuda_visible_devices(gpus, monkeypatch):
    gpus(1)  # the process sees only its own GPU, numbered 0 by torch
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    in_worker(monkeypatch, 7)
    assert resolve_device("auto") == torch.device("cuda", 0)


def test_auto_in_a_worker_without_cuda(gpus, monkeypatch):
    gpus(0)
    in_worker(monkeypatch, 1)
    assert resolve_device("auto") == torch.device("cpu")


def test_explicit_devices_ignore_the_worker(gpus, monkeypatch):
    gpus(4)
    in_worker(monkeypatch, 3)
    assert resolve_device("cuda:2") == torch.device("cuda", 2)
    assert resolve_device("cpu") == torch.device("cpu")


def test_worker_rank_without_a_number_is_a_stable_hash():
    worker = types.SimpleNamespace(name="alpha", address="tcp://10.0.0.1:4000")
    assert _device._worker_rank(worker) == zlib.crc32(b"alpha")
    assert _device._worker_rank(types.SimpleNamespace(name=None, address="inproc://x/y")) == zlib.crc32(b"inproc://x/y")
    assert _device._worker_rank(types.SimpleNamespace(name=None, address="tcp://10.0.0.1:4003")) == 4003


def test_worker_lookup_is_lazy(monkeypatch):
    monkeypatch.delitem(sys.modules, "distributed", raising=False)
    assert _device._current_worker() is None
    fake = types.ModuleType("distributed")

    def outside():
        raise ValueError("No worker found")

    fake.get_worker = outside
    monkeypatch.setitem(sys.modules, "distributed", fake)
    assert _device._current_worker() is None
    worker = object()
    fake.get_worker = lambda: worker
    assert _device._current_worker() is worker


def test_importing_skphase_does_not_import_dask():
    code = "import sys, skphase; print(sorted(m for m in ('dask', 'distributed') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_torch_threads_follow_the_worker_budget(monkeypatch):
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        in_worker(monkeypatch, 0, nthreads=1)
        model = ScatteringTransform(device="cpu")
        model._resolve_device()
        assert torch.get_num_threads() == 1
        in_worker(monkeypatch, 0, nthreads=4)  # a larger budget never raises torch's threads
        assert match_worker_threads() == 4 and torch.get_num_threads() == 1
        old_layout = types.SimpleNamespace(name=0, address="tcp://127.0.0.1:40000", nthreads=1)
        monkeypatch.setattr(_device, "_current_worker", lambda: old_layout)
        torch.set_num_threads(2)
        assert match_worker_threads() == 1 and torch.get_num_threads() == 1
        monkeypatch.setattr(_device, "_current_worker", lambda: None)
        torch.set_num_threads(2)
        assert match_worker_threads() is None and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


# ------------------------------------------------------------------ validation
def test_rejects_what_skphase_does_not_run_on(gpus, monkeypatch):
    gpus(0)
    monkeypatch.setattr(_device, "_mps_available", lambda: False)
    with pytest.raises(ValueError, match="not a valid device"):
        resolve_device("gpu0")
    for device in ("meta", torch.device("meta"), "xla"):
        with pytest.raises(ValueError, match="not supported by skphase.*'cpu', 'cuda'"):
            resolve_device(device)
    with pytest.raises(ValueError, match="MPS, which is not available"):
        resolve_device("mps")
    with pytest.raises(ValueError, match="no CUDA device"):
        resolve_device("cuda")
    gpus(2)
    with pytest.raises(ValueError, match="has 2 CUDA device"):
        resolve_device("cuda:2")
    monkeypatch.setattr(_device, "_mps_available", lambda: True)
    assert resolve_device("mps") == torch.device("mps")


def test_estimators_and_metrics_share_the_validator(gpus):
    gpus(0)
    X = np.random.default_rng(0).random((6, 1, 8, 8), dtype=np.float32)
    with pytest.raises(ValueError, match="not supported by skphase"):
        ScatteringTransform(device="meta").fit(X)
    conv = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Flatten())
    for call in (lambda d: as_batch_function(conv, device=d),
                 lambda d: nfa_correlation(conv, torch.as_tensor(X), device=d),
                 lambda d: relative_stability(conv, X, device=d)):
        with pytest.raises(ValueError, match="no CUDA device"):
            call("cuda")
        with pytest.raises(ValueError, match="not supported by skphase"):
            call("meta")


# -------------------------------------------------------------------- pickling
def test_carries_torch_finds_nested_tensors():
    assert carries_torch({"state": {0: {"momentum_buffer": torch.zeros(2)}}, "param_groups": [{"lr": 0.1}]})
    assert carries_torch([(torch.eye(2), torch.ones(1))])
    assert carries_torch(torch.nn.Linear(1, 1))
    holder = types.SimpleNamespace(images=torch.zeros(1), n=3)
    assert carries_torch({"sources": [holder]})
    assert not carries_torch({"a": [1.0, 2.0], "b": np.zeros(3), "c": "text", "d": types.SimpleNamespace(n=1)})
    assert not carries_torch(torch.Tensor)  # a class is not searched
    loop = []
    loop.append(loop)
    assert not carries_torch(loop)


@pytest.fixture
def cuda_tagged_saves(monkeypatch):
    """Simulate a GPU machine: every storage torch saves is tagged "cuda:0".

    Loading such bytes on this CPU-only machine fails unless storages are mapped to the CPU,
    as torch would fail with a pickle written on a GPU.
    """
    registry = list(torch.serialization._package_registry)
    monkeypatch.setattr(torch.serialization, "_package_registry", registry)
    torch.serialization.register_package(
        0, lambda storage: "cuda:0" if storage.device.type == "cpu" else None, lambda storage, location: None
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason="simulates a machine without CUDA")
def test_gpu_fitted_phase_collapse_with_optimizer_state_loads_on_cpu(digits_split, cuda_tagged_saves):
    X, y, X_test, _ = digits_split
    model = ScatteringPhaseCollapse(widths=(4, 8), max_iter=1, batch_size=64, device="cpu", random_state=0)
    model.fit(X, y)
    assert carries_torch(model._optimizer_state)  # SGD momentum buffers, nested in a dict
    expected = model.transform(X_test)
    model.device_ = torch.device("cuda", 0)  # as fitted on a GPU
    # The simulation bites: plain pickling of the nested state cannot be loaded here.
    with pytest.raises(RuntimeError, match="CUDA"):
        pickle.loads(pickle.dumps(model._optimizer_state))
    blob = pickle.dumps(model)
    with pytest.warns(UserWarning, match="fitted on cuda:0, which is not available here; it is loaded on cpu"):
        loaded = pickle.loads(blob)
    assert loaded.device_ == torch.device("cpu")
    buffers = [v for s in loaded._optimizer_state["state"].values() for v in s.values() if torch.is_tensor(v)]
    assert buffers and all(b.device.type == "cpu" for b in buffers)
    np.testing.assert_array_equal(loaded.transform(X_test), expected)
    loaded.set_params(warm_start=True, max_iter=1).fit(X, y)  # the restored momentum buffers are usable
    assert loaded.n_iter_ == 2


@pytest.mark.skipif(torch.cuda.is_available(), reason="simulates a machine without CUDA")
def test_gpu_fitted_convrfm_stages_load_on_cpu(digits_split, cuda_tagged_saves):
    X, y, X_test, _ = digits_split
    clf = ConvRFM(n_iter=1, device="cpu", random_state=0).fit(X[:80], y[:80])
    expected = list(clf.staged_decision_function(X_test))
    clf.device_ = torch.device("cuda", 0)
    with pytest.warns(UserWarning, match="not available here"):
        loaded = pickle.loads(pickle.dumps(clf))
    staged = list(loaded.staged_decision_function(X_test))
    assert len(staged) == len(expected) == 2
    for got, want in zip(staged, expected):
        np.testing.assert_array_equal(got, want)
