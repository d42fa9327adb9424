import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import skphase

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    if not (ROOT / "pyproject.toml").exists():
        pytest.skip("not a source checkout")
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out),
                    str(ROOT)], check=True, capture_output=True, timeout=300)
    (path,) = out.glob("skphase-*.whl")
    return path


def test_wheel_carries_every_subpackage_the_licence_and_the_typing_marker(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    for package in ("skphase", "skphase/datasets", "skphase/estimators", "skphase/filters", "skphase/metrics",
                    "skphase/nn", "skphase/utils"):
        assert f"{package}/__init__.py" in names
    assert "skphase/py.typed" in names
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)
    assert not any(name.startswith("tests/") for name in names)
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert f"Version: {skphase.__version__}" in metadata
    assert "License-Expression: BSD-3-Clause" in metadata


def test_installed_wheel_works_outside_the_source_tree(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    code = ("import skphase, numpy as np; from skphase import DTCWPTFeatures; "
            "X = np.random.default_rng(0).random((2, 1, 8, 8)); "
            "print(skphase.__file__); print(DTCWPTFeatures(J=1, device='cpu').fit_transform(X).shape)")
    env = {**os.environ, "PYTHONPATH": str(target)}
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    location, shape = run.stdout.split()[0], run.stdout.split("\n")[1]
    assert location.startswith(str(target)) and shape.startswith("(2, ")
