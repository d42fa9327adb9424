import importlib
import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from skphase import PAPER_CONFIGS, ScatteringPhaseCollapse, paper_config
from skphase.nn._phase_collapse_net import count_subsamplings

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_cifar10_configuration_is_the_papers():
    params = paper_config("cifar10")
    assert params["widths"] == (64, 128, 256) + (512,) * 5 and params["L"] == 4 and params["factorized"]
    assert (params["learning_rate_init"], params["momentum"], params["weight_decay"], params["batch_size"]) == (
        0.01, 0.9, 1e-4, 128)
    assert params["schedule"] == "step" and params["schedule_params"] == {"step_size": 70, "gamma": 0.1}
    assert params["max_iter"] == 300 and params["augmentation"] == "crop+flip"
    # 8 factorized blocks subsample 4 times: 32 x 32 -> the paper's 2 x 2 final map.
    assert 32 // 2 ** count_subsamplings(len(params["widths"]), True) == 2


def test_imagenet_configuration_ends_on_a_7x7_map():
    params = paper_config("imagenet")
    assert params["widths"] == (32, 64, 64, 128, 256) + (512,) * 5 + (256,) and params["L"] == 8
    assert 224 // 2 ** count_subsamplings(len(params["widths"]), params["factorized"]) == 7
    assert params["max_iter"] == 150 and params["schedule_params"]["step_size"] == 45


def test_configurations_are_fresh_copies_accepted_by_set_params():
    params = paper_config("cifar10")
    params["schedule_params"]["step_size"] = 1
    assert PAPER_CONFIGS["cifar10"]["schedule_params"]["step_size"] == 70
    model = ScatteringPhaseCollapse().set_params(**paper_config("imagenet"))
    assert model.get_params()["L"] == 8
    with pytest.raises(ValueError, match="Unknown configuration"):
        paper_config("mnist")


def _write_cifar10(folder, n_per_batch, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        labels = rng.integers(0, 10, n_per_batch)
        # Class-dependent mean colour, so that a few epochs can learn something.
        data = rng.integers(0, 64, (n_per_batch, 3072)) + 19 * labels[:, None]
        with open(folder / name, "wb") as handle:
            pickle.dump({b"data": data.astype(np.uint8), b"labels": labels.tolist()}, handle)


def test_resnet_comparison_runs_end_to_end_on_a_tiny_cifar10_copy(tmp_path):
    _write_cifar10(tmp_path / "cifar-10-batches-py", n_per_batch=4)
    results = tmp_path / "results.jsonl"
    run = subprocess.run(
        [sys.executable, str(EXAMPLES / "plot_phase_collapse_vs_resnet.py"), "--dataset", "cifar10", "--data-home",
         str(tmp_path), "--quick", "--epochs", "1", "--models", "LScat+skip", "ResNet-20", "--device", "cpu",
         "--threads", "1", "--results", str(results), "--out", str(tmp_path / "table.png"), "--separation"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "20 training and 4 test images of shape (3, 32, 32)" in run.stdout
    assert "LScat+skip error <= ResNet-20 error (equal epochs: 1 vs 1)" in run.stdout
    assert (tmp_path / "table.png").stat().st_size > 0
    assert len(results.read_text().splitlines()) == 2
    # --separation: a row per representation of the learned network (input, then its blocks) and the verdict.
    separation = [row for row in map(str.split, run.stdout.splitlines())
                  if row[:1] == ["LScat+skip"] and (row[1] == "input" or row[1].startswith("blocks."))]
    assert [row[1] for row in separation] == ["input"] + [f"blocks.{i}" for i in range(len(separation) - 1)]
    assert len(separation) >= 3
    assert "LScat+skip: NCM accuracy rises block after block:" in run.stdout
    assert (tmp_path / "table_separation.png").stat().st_size > 0
    saved = [json.loads(line) for line in results.read_text().splitlines()]
    assert [len(r.get("separation", [])) for r in saved] == [len(separation), 0]
    # --equal-time SECONDS: the ResNet trains for that long, its row beside the equal-epoch runs.
    run = subprocess.run(
        [sys.executable, str(EXAMPLES / "plot_phase_collapse_vs_resnet.py"), "--dataset", "cifar10", "--data-home",
         str(tmp_path), "--quick", "--epochs", "1", "--models", "ResNet-20", "--equal-time", "1.5", "--device", "cpu",
         "--threads", "1", "--results", str(results), "--out", str(tmp_path / "table.png")],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    equal = json.loads(results.read_text().splitlines()[-1])
    assert equal["model"] == "ResNet-20 (equal time)" and 1.5 <= equal["seconds"] < 1.5 + 5 and equal["epochs"] > 1
    assert "LScat+skip error <= ResNet-20 error at equal wall-clock time" in run.stdout


def test_resnet_comparison_compiles_every_network_with_compile(tmp_path, monkeypatch):
    # torch.compile is recorded, not run: the compiled training itself is tested in test_phase_collapse.
    compiled = []

    def record(module, **options):
        compiled.append((type(module).__name__, options))
        return module

    monkeypatch.setattr(torch, "compile", record)
    monkeypatch.syspath_prepend(str(EXAMPLES))
    example = importlib.import_module("plot_phase_collapse_vs_resnet")
    monkeypatch.setattr(example, "retain_freed_memory", lambda: None)
    results = tmp_path / "results.jsonl"
    monkeypatch.setattr(sys, "argv", [
        "plot_phase_collapse_vs_resnet.py", "--quick", "--epochs", "1", "--n-train", "100", "--models", "LScat",
        "ResNet-20", "--compile", "--device", "cpu", "--threads", str(torch.get_num_threads()),
        "--results", str(results), "--out", str(tmp_path / "table.png")])
    example.main()
    assert compiled == [("PhaseCollapseNet", {"dynamic": False}), ("ResNet", {"dynamic": False})]
    assert [json.loads(line)["compile"] for line in results.read_text().splitlines()] == [True, True]


def test_main_example_runs_the_cifar10_configuration_on_a_tiny_copy(tmp_path):
    _write_cifar10(tmp_path / "cifar-10-batches-py", n_per_batch=4)
    run = subprocess.run(
        [sys.executable, str(EXAMPLES / "plot_phase_collapse_vs_thresholding.py"), "--dataset", "cifar10",
         "--data-home", str(tmp_path), "--quick", "--epochs", "1", "--nonlinearities", "modulus", "--no-scat",
         "--device", "cpu", "--threads", "1", "--out", str(tmp_path / "bars.png")],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "cifar10: 20 training and 4 test images" in run.stdout and "'schedule': 'step'" in run.stdout
    assert (tmp_path / "bars.png").stat().st_size > 0
