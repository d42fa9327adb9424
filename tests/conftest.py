import os

# Two cores and noisy neighbours: one torch thread keeps tests fast and stable.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest
import torch

from skphase.datasets import load_digits_images
from skphase.utils._kymatio import patch_scipy_for_kymatio

# Tests compare with kymatio directly; let it import on SciPy releases without sph_harm.
patch_scipy_for_kymatio()

torch.set_num_threads(int(os.environ.get("SKPHASE_TEST_THREADS", "1")))


@pytest.fixture(scope="session")
def digits_images():
    """scikit-learn's digits as images: ``(X, y)``, X of shape (1797, 1, 8, 8) in [0, 1]."""
    return load_digits_images()


@pytest.fixture(scope="session")
def digits_split(digits_images):
    """``(X_train, y_train, X_test, y_test)``: the first 400 digits to train, the last 397 to test."""
    X, y = digits_images
    return X[:400], y[:400], X[1400:], y[1400:]


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)
