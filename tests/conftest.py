import os

# Two cores and noisy neighbours: one torch thread keeps tests fast and stable.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest
import torch

from skphase.utils._kymatio import patch_scipy_for_kymatio

# Tests compare with kymatio directly; let it import on SciPy releases without sph_harm.
patch_scipy_for_kymatio()

torch.set_num_threads(int(os.environ.get("SKPHASE_TEST_THREADS", "1")))


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)
