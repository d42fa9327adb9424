import gzip

import numpy as np
import pytest

from skphase.datasets import get_data_home, load_cifar10, load_digits_images, load_fashion_mnist, load_mnist
from skphase.datasets._fashion_mnist import SYSTEM_FASHION_MNIST_DIR


def _write_idx(path, array):
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in array.shape)
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


def _write_idx_dataset(folder, suffix=".gz", n_test=4):
    """Four IDX files (6 training, ``n_test`` test images of 28 x 28) with labels 0, 1, 2, ..."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 6), ("t10k", n_test)):
        _write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", np.arange(n) % 10)


def test_fashion_mnist_from_a_data_home(tmp_path):
    _write_idx_dataset(tmp_path / "fashion-mnist")
    X, y = load_fashion_mnist("test", data_home=tmp_path)
    assert X.shape == (4, 1, 28, 28) and X.dtype == np.float32 and 0 <= X.min() and X.max() <= 1
    np.testing.assert_array_equal(y, [0, 1, 2, 3])
    X, y = load_fashion_mnist("train", data_home=tmp_path, n_samples=3, random_state=0)
    assert X.shape == (3, 1, 28, 28)


def test_fashion_mnist_missing_says_how_to_install(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_fashion_mnist(data_home=tmp_path)
    with pytest.raises(ValueError, match="subset"):
        load_fashion_mnist("validation")


@pytest.mark.parametrize("suffix", [".gz", ""])
def test_mnist_from_a_data_home_gzipped_or_not(tmp_path, suffix):
    _write_idx_dataset(tmp_path / "mnist", suffix)
    X, y = load_mnist("test", data_home=tmp_path)
    assert X.shape == (4, 1, 28, 28) and X.dtype == np.float32 and 0 <= X.min() and X.max() <= 1
    np.testing.assert_array_equal(y, [0, 1, 2, 3])
    X_sub, y_sub = load_mnist("train", data_home=tmp_path, n_samples=3, random_state=0)
    X_all, y_all = load_mnist("train", data_home=tmp_path)
    assert X_sub.shape == (3, 1, 28, 28) and y_sub.dtype == np.int64
    # the subset keeps file order: its labels are an increasing run of the full split's
    assert np.all(np.diff(y_sub) > 0) and set(y_sub) <= set(y_all)


def test_mnist_missing_or_bad_files_say_what_is_wrong(tmp_path):
    with pytest.raises(FileNotFoundError, match="mnist"):
        load_mnist(data_home=tmp_path)
    with pytest.raises(ValueError, match="subset"):
        load_mnist("validation", data_home=tmp_path)
    with pytest.raises(ValueError, match="n_samples"):
        _write_idx_dataset(tmp_path / "mnist")
        load_mnist("test", data_home=tmp_path, n_samples=5)
    (tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    _write_idx(tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz", np.arange(3))
    with pytest.raises(ValueError, match="4 test images but 3 labels"):
        load_mnist("test", data_home=tmp_path)
    with gzip.open(tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz", "wb") as handle:
        handle.write(b"not an idx file")
    with pytest.raises(ValueError, match="not an IDX file"):
        load_mnist("test", data_home=tmp_path)


@pytest.mark.skipif(not SYSTEM_FASHION_MNIST_DIR.exists(), reason="dataset-fashion-mnist is not installed")
def test_system_fashion_mnist():
    X, y = load_fashion_mnist("test")
    assert X.shape == (10000, 1, 28, 28)
    assert np.bincount(y).tolist() == [1000] * 10


def test_digits_and_data_home(monkeypatch, tmp_path):
    X, y = load_digits_images()
    assert X.shape == (1797, 1, 8, 8) and X.max() == 1.0 and set(y) == set(range(10))
    monkeypatch.setenv("SKPHASE_DATA", str(tmp_path))
    assert get_data_home() == tmp_path


def test_cifar10_missing_says_where(tmp_path):
    with pytest.raises(FileNotFoundError, match="cifar-10-batches-py"):
        load_cifar10(data_home=tmp_path)


def test_cifar10_reads_the_python_batches(tmp_path):
    import pickle

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    batch = {b"data": np.zeros((2, 3072), np.uint8) + 255, b"labels": [3, 5]}
    with open(folder / "test_batch", "wb") as handle:
        pickle.dump(batch, handle)
    X, y = load_cifar10("test", data_home=tmp_path)
    assert X.shape == (2, 3, 32, 32) and X.max() == 1.0 and y.tolist() == [3, 5]


def _write_cifar_batch(folder, name, batch):
    import pickle

    folder.mkdir(exist_ok=True)
    with open(folder / name, "wb") as handle:
        pickle.dump(batch, handle)


@pytest.mark.parametrize("batch, match", [
    ({b"data": np.zeros((20, 3072), np.uint8), b"labels": list(range(10)) + [0] * 5}, "20 images but 15 labels"),
    ({b"data": np.zeros((2, 3072), np.uint8)}, "lacks the key"),
    ({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, "rows of 3072"),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 12]}, "outside 0-9"),
])
def test_cifar10_damaged_batches_name_the_file(tmp_path, batch, match):
    _write_cifar_batch(tmp_path / "cifar-10-batches-py", "test_batch", batch)
    with pytest.raises(ValueError, match=match) as info:
        load_cifar10("test", data_home=tmp_path)
    assert "test_batch" in str(info.value)


def test_cifar10_corrupt_pickle_names_the_file(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    (folder / "test_batch").write_bytes(b"not a pickle at all")
    with pytest.raises(ValueError, match="test_batch.*not a CIFAR-10 python batch"):
        load_cifar10("test", data_home=tmp_path)


def test_loaders_reject_bad_arguments(tmp_path):
    with pytest.raises(TypeError, match="data_home must be a path"):
        load_cifar10(data_home=123)
    with pytest.raises(ValueError, match="n_samples must be an integer"):
        load_mnist(data_home=tmp_path, n_samples=2.5)


def test_corrupt_gzip_idx_names_the_file(tmp_path):
    from skphase.datasets._idx import read_idx

    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.gz could not be read"):
        read_idx(path)
