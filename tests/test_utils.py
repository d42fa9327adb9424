"""Utilities: image validation, devices, batching, memory settings."""

import subprocess
import sys

import numpy as np
import pytest
import torch

from skphase.utils import as_image_source, resolve_device
from skphase.utils._images import check_images, infer_image_shape
from skphase.utils._torch import iter_batches, map_batches


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
    assert isinstance(out, np.ndarray)
    np.testing.assert_array_equal(out, 2 * np.arange(10.0)[:, None])
    with pytest.raises(ValueError):
        list(iter_batches(3, 0))


def test_map_batches_fills_one_array_per_output_with_the_batch_outputs():
    X = torch.arange(24.0).reshape(12, 2)
    calls = []

    def fn(batch):
        calls.append(batch.shape[0])
        return batch.sum(1).to(torch.float64), (batch[:, :1] > 5)

    sums, flags = map_batches(fn, X, batch_size=5, device=torch.device("cpu"))
    assert calls == [5, 5, 2]
    assert sums.dtype == np.float64 and sums.shape == (12,) and flags.dtype == np.bool_ and flags.shape == (12, 1)
    np.testing.assert_array_equal(sums, np.concatenate([fn(X[s])[0].numpy() for s in iter_batches(12, 5)]))
    np.testing.assert_array_equal(flags[:, 0], X[:, 0].numpy() > 5)
    with pytest.raises(ValueError, match="at least one sample"):
        map_batches(fn, X[:0], batch_size=5, device=torch.device("cpu"))


def test_map_batches_reads_an_image_source_and_stores_bfloat16_as_float32():
    source = as_image_source(np.arange(48, dtype=np.uint8).reshape(3, 1, 4, 4))
    out = map_batches(lambda b: b.flatten(1).to(torch.bfloat16), source, batch_size=2, device=torch.device("cpu"))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, np.arange(48.0).reshape(3, 16))


def test_map_batches_names_the_estimator_when_outputs_overflow():
    X = torch.tensor([[1.0], [3e38]])
    with pytest.raises(ValueError, match=r"Scat produced NaN or infinite values .* index 1, .* 3e\+38"):
        map_batches(lambda b: b * 10, X, batch_size=1, device=torch.device("cpu"), check_finite="Scat")
    # Without check_finite the overflow is returned as it is.
    assert np.isinf(map_batches(lambda b: b * 10, X, batch_size=1, device=torch.device("cpu"))[1, 0])


@pytest.mark.parametrize("shape", [(2, 8, 8, 3), (2, 28, 28, 1), (2, 32, 32, 4)])
def test_channels_last_images_are_refused_with_the_transpose_to_use(shape):
    with pytest.raises(ValueError, match=r"channels-last .*X\.transpose\(0, 3, 1, 2\)"):
        check_images(np.zeros(shape))
    # Saying the layout is (C, H, W) with image_shape accepts it.
    assert check_images(np.zeros(shape), image_shape=shape[1:]).shape == shape


@pytest.mark.parametrize("shape", [(2, 3, 8, 8), (2, 64, 4, 4), (2, 4, 8, 3), (2, 1, 28, 28)])
def test_channels_first_images_with_small_sizes_are_accepted(shape):
    assert check_images(np.zeros(shape)).shape == shape


def test_flat_rows_of_three_squares_need_an_image_shape():
    with pytest.raises(ValueError, match=r"image_shape=\(3, 32, 32\)"):
        infer_image_shape(3072)
    with pytest.raises(ValueError, match=r"image_shape=\(3, 4, 4\)"):
        check_images(np.zeros((2, 48)))
    assert infer_image_shape(3072, (3, 32, 32)) == (3, 32, 32)
    assert infer_image_shape(3072, (1, 1, 3072)) == (1, 1, 3072)
    # Small widths stay 1 x d signals (3 x 1 x 1, 3 x 2 x 2 and 3 x 3 x 3 are not colour images).
    assert [infer_image_shape(d) for d in (3, 12, 27)] == [(1, 1, 3), (1, 1, 12), (1, 1, 27)]


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


@pytest.mark.parametrize("shape", [(3, 1, 0, 4), (3, 0, 4, 4), (3, 1, 4, 0)])
def test_images_without_pixels_raise(shape):
    with pytest.raises(ValueError, match="hold no pixel"):
        check_images(np.zeros(shape))


def test_map_batches_copies_strided_views_once_and_casts_to_dtype():
    X = torch.arange(24.0, dtype=torch.float64).reshape(4, 3, 2)
    out = map_batches(lambda b: b.transpose(1, 2), X, batch_size=3, device=torch.device("cpu"), dtype=np.float32)
    assert out.dtype == np.float32 and out.flags.c_contiguous
    np.testing.assert_array_equal(out, X.transpose(1, 2).numpy().astype(np.float32))


def test_map_batches_checks_finiteness_after_the_cast_to_dtype():
    # Finite in float64, infinite once stored in the float32 output: an overflow, not a silent inf.
    X = torch.tensor([[1.0], [1e39]], dtype=torch.float64)
    with pytest.raises(ValueError, match=r"DT produced NaN or infinite values .* index 1, .* overflowed the range of float32"):
        map_batches(lambda b: b, X, batch_size=1, device=torch.device("cpu"), check_finite="DT", dtype=np.float32)
    kept = map_batches(lambda b: b, X, batch_size=1, device=torch.device("cpu"), check_finite="DT")
    assert kept.dtype == np.float64 and kept[1, 0] == 1e39


def test_map_batches_lets_fn_write_into_the_output_rows(monkeypatch):
    import skphase.utils._torch as torch_utils

    X = torch.arange(24.0).reshape(12, 2)
    given, copies = [], []
    write_rows = torch_utils._write_rows
    monkeypatch.setattr(torch_utils, "_write_rows", lambda *a: copies.append(1) or write_rows(*a))

    def writes_in_place(batch, out=None):
        given.append(out)
        return torch.mul(batch, 3, out=out)  # cast to the rows' float32 as it is written

    out = map_batches(writes_in_place, X.double(), batch_size=5, device=torch.device("cpu"), dtype=np.float32,
                      sample_shape=(2,))
    assert out.dtype == np.float32 and copies == []  # no copy: every batch wrote its rows
    assert [tuple(rows.shape) for rows in given] == [(5, 2), (5, 2), (2, 2)]
    np.testing.assert_array_equal(out, 3 * X.numpy())
    # An fn that returns something else (here a new tensor) is copied into the rows.
    out = map_batches(lambda batch, out=None: batch + 1, X, batch_size=5, device=torch.device("cpu"),
                      dtype=np.float64, sample_shape=(2,))
    assert len(copies) == 3 and out.dtype == np.float64
    np.testing.assert_array_equal(out, X.numpy() + 1)
    with pytest.raises(ValueError, match="dtype"):
        map_batches(writes_in_place, X, batch_size=5, device=torch.device("cpu"), sample_shape=(2,))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_all_finite_finds_one_bad_value_in_tensors_and_arrays(bad):
    from skphase.utils._images import all_finite

    for make in (torch.zeros, lambda n: np.zeros(n)):
        data = make(1000)
        assert all_finite(data)
        data[417] = bad
        assert not all_finite(data)
    values = torch.randn(64, 3, dtype=torch.float64)[:, 1]  # a strided view
    assert all_finite(values) and all_finite(values.to(torch.bfloat16))
    values[5] = bad
    assert not all_finite(values) and not all_finite(values.to(torch.bfloat16))
    z = torch.zeros(8, dtype=torch.complex64)
    z[3] = complex(0.0, bad)
    assert not all_finite(z) and not all_finite(z.numpy())
    assert all_finite(torch.arange(5)) and all_finite(np.array([], dtype=np.float32)) and all_finite(torch.ones(0))
