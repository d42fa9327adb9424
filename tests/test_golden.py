"""Outputs of the learned scattering network and of the DT-CWPT against stored references.

``tests/golden/golden.npz`` holds, for seeded networks and fixed inputs, the logits, features,
gradients and running statistics of a training step and the eval-mode logits and input gradient
of :class:`~skphase.nn.PhaseCollapseNet`, and the DT-CWPT of a fixed image. A change of layout, of
initialisation or of any kernel fails here; ``tests/golden/make_golden.py`` regenerates the file when
a change of the numbers is intended.
"""

import importlib.util
import pathlib

import numpy as np
import pytest

_SCRIPT = pathlib.Path(__file__).parent / "golden" / "make_golden.py"
_spec = importlib.util.spec_from_file_location("make_golden", _SCRIPT)
make_golden = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_golden)

#: float32 sums are rounded differently by other BLAS kernels and thread counts: element-wise
#: relative error on large values, and on each array's small elements errors of the order of the
#: rounding of its largest ones. A change of layout or initialisation moves values by their own size.
RTOL, ATOL_OF_MAX = 1e-5, 3e-5


@pytest.fixture(scope="module")
def golden():
    with np.load(make_golden.PATH) as data:
        return dict(data)


def _assert_matches(outputs, golden):
    for key, value in outputs.items():
        expected = golden[key]
        assert value.shape == expected.shape and value.dtype == expected.dtype, key
        np.testing.assert_allclose(value, expected, rtol=RTOL, atol=ATOL_OF_MAX * np.abs(expected).max(), err_msg=key)


def test_golden_file_is_small_and_holds_only_known_outputs(golden):
    assert make_golden.PATH.stat().st_size < 200 * 1024
    prefixes = tuple(f"{name}__" for name in make_golden.NETWORKS) + ("dtcwpt__",)
    assert all(key.startswith(prefixes) for key in golden)


@pytest.mark.parametrize("name", list(make_golden.NETWORKS))
def test_phase_collapse_net_matches_golden(name, golden):
    outputs = make_golden.network_outputs(name, golden[f"{name}__images"])
    assert set(outputs) == {key for key in golden if key.startswith(f"{name}__") and not key.endswith("__images")}
    _assert_matches(outputs, golden)


def test_dtcwpt2d_matches_golden(golden):
    outputs = make_golden.dtcwpt_outputs(golden["dtcwpt__images"])
    assert set(outputs) == {key for key in golden if key.startswith("dtcwpt__") and not key.endswith("__images")}
    _assert_matches(outputs, golden)
