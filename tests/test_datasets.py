import gzip

import numpy as np
import pytest

from skphase.datasets import get_data_home, load_cifar10, load_digits_images, load_fashion_mnist
from skphase.datasets._fashion_mnist import SYSTEM_FASHION_MNIST_DIR


def _write_idx(path, array):
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


def test_fashion_mnist_from_a_data_home(tmp_path):
    folder = tmp_path / "fashion-mnist"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 6), ("t10k", 4)):
        _write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        _write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n) % 10)
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
