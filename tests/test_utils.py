"""Utilities: image validation, devices, batching, memory settings."""

import subprocess
import sys

import numpy as np
import pytest
import torch

from skphase.utils import check_images, infer_image_shape, iter_batches, map_batches, resolve_device


def test_check_images_accepts_the_three_layouts():
    assert check_images(np.zeros((2, 3, 4, 5))).shape == (2, 3, 4, 5)
    assert check_images(np.zeros((2, 4, 5))).shape == (2, 1, 4, 5)
    assert check_images(np.zeros((2, 60)), image_shape=(3, 4, 5)).shape == (2, 3, 4, 5)
    assert check_images(torch.zeros(2, 16)).shape == (2, 1, 4, 4)


def test_infer_image_shape_rules():
    assert infer_image_shape(49) == (1, 7, 7)
    assert infer_image_shape(10) == (1, 1, 10)
    assert infer_image_shape(12, (3, 4)) == (1, 3, 4)
    with pytest.raises(ValueError, match="holds 20 values"):
        infer_image_shape(12, (4, 5))


@pytest.mark.parametrize(
    "X, match",
    [
        (np.zeros((2, 2, 2, 2, 2)), "5 dimension"),
        (np.zeros(5), "1 dimension"),
        (np.array([[np.nan, 1.0]]), "NaN or infinity"),
        (np.array([[np.inf, 1.0]]), "NaN or infinity"),
        (np.zeros((0, 4)), "0 sample"),
        (np.array([["a", "b"]]), "must hold numbers"),
    ],
)
def test_check_images_rejects_bad_input(X, match):
    with pytest.raises(ValueError, match=match):
        check_images(X)


def test_check_images_rejects_sparse():
    from scipy.sparse import csr_matrix

    with pytest.raises(TypeError, match="sparse"):
        check_images(csr_matrix(np.eye(4)))


def test_image_shape_must_agree_with_image_input():
    with pytest.raises(ValueError, match="image_shape"):
        check_images(np.zeros((2, 1, 4, 4)), image_shape=(5, 5))


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda")
    with pytest.raises(ValueError, match="not a valid device"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            resolve_device("cuda")


def test_batches_cover_everything_once():
    slices = list(iter_batches(10, 3))
    assert [s.stop - s.start for s in slices] == [3, 3, 3, 1]
    X = torch.arange(10.0)[:, None]
    out = map_batches(lambda b: b * 2, X, batch_size=4, device=torch.device("cpu"))
    assert torch.equal(out, X * 2)
    with pytest.raises(ValueError):
        list(iter_batches(3, 0))


RETAIN_SCRIPT = """
import resource, sys
import torch
from skphase.utils import retain_freed_memory
if sys.argv[1] == "retain":
    assert retain_freed_memory()
def faults_of_a_large_tensor():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    torch.ones(16 * 2**20)  # 64 MiB, freed at once
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
faults_of_a_large_tensor()
print(min(faults_of_a_large_tensor() for _ in range(3)))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc settings")
def test_retain_freed_memory_stops_large_tensors_from_faulting_again():
    def faults(mode):
        out = subprocess.run([sys.executable, "-c", RETAIN_SCRIPT, mode], capture_output=True, text=True, check=True)
        return int(out.stdout.split()[-1])

    # 64 MiB are 16,384 pages of 4 KiB: faulted in at every allocation by default, reused once retained.
    assert faults("default") > 10_000
    assert faults("retain") < 1_000
