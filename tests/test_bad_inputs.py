"""Every estimator against the same bad inputs: each gets an error of the right class whose message
names the problem (and, where there is one, the fix)."""

import numpy as np
import pytest
import torch
from scipy.sparse import csr_matrix
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import InvalidParameterError

from skphase import ConvRFM, ConvRFMRegressor, DTCWPTFeatures, ScatteringPhaseCollapse, ScatteringTransform

RNG = np.random.default_rng(0)
X_GOOD = RNG.random((12, 1, 8, 8)).astype(np.float32)
Y_GOOD = np.arange(12) % 2


def _small(name):
    return {
        "ScatteringPhaseCollapse": lambda: ScatteringPhaseCollapse(widths=(4,), L=2, max_iter=1, device="cpu",
                                                                   random_state=0),
        "ScatteringTransform": lambda: ScatteringTransform(J=1, L=2, device="cpu"),
        "DTCWPTFeatures": lambda: DTCWPTFeatures(J=1, device="cpu"),
        "ConvRFM": lambda: ConvRFM(n_iter=1, device="cpu", random_state=0),
        "ConvRFMRegressor": lambda: ConvRFMRegressor(n_iter=1, device="cpu", random_state=0),
    }[name]()


ESTIMATORS = ["ScatteringPhaseCollapse", "ScatteringTransform", "DTCWPTFeatures", "ConvRFM", "ConvRFMRegressor"]
SUPERVISED = {"ScatteringPhaseCollapse", "ConvRFM", "ConvRFMRegressor"}
CLASSIFIERS = {"ScatteringPhaseCollapse", "ConvRFM"}


def _with(values, index=(0, 0, 0, 0)):
    X = X_GOOD.copy()
    X[index] = values
    return X


def _ragged():
    return [[0.0] * 64, [0.0] * 63] * 6


# name -> (X, y or None for the good labels, exception, message pattern)
FIT_CASES = {
    "nan": (_with(np.nan), None, ValueError, "NaN or infinity"),
    "inf": (_with(np.inf), None, ValueError, "NaN or infinity"),
    "nan_tensor": (torch.as_tensor(_with(np.nan)), None, ValueError, "NaN or infinity"),
    "complex": (X_GOOD.astype(np.complex64), None, ValueError, "[Cc]omplex"),
    "strings": (np.full((12, 64), "a"), None, ValueError, "numbers|could not convert"),
    "ragged": (_ragged(), None, ValueError, "could not be read|inhomogeneous.*one shape"),
    "one_dimensional": (np.zeros(64), None, ValueError, "Reshape|2D array|1 dimension"),
    "five_dimensional": (np.zeros((12, 1, 1, 8, 8)), None, ValueError, "Reshape|5 dimension"),
    "no_samples": (np.zeros((0, 1, 8, 8)), None, ValueError, "0 sample"),
    "no_pixels": (np.zeros((12, 1, 0, 8)), None, ValueError, "no pixel"),
    "channels_last": (np.repeat(X_GOOD, 3, 1).transpose(0, 2, 3, 1), None, ValueError, "channels-last|transpose"),
    "flat_colour": (RNG.random((12, 3 * 8 * 8)), None, ValueError, r"image_shape=\(3, 8, 8\)"),
    "image_shape_mismatch": (X_GOOD.reshape(12, 64), None, ValueError, "image_shape"),
    "sparse": (csr_matrix(X_GOOD.reshape(12, 64)), None, TypeError, "sparse"),
    "object_none": (np.array([[None] * 64] * 12, dtype=object), None, ValueError, "NaN or infinity"),
    "y_too_short": (X_GOOD, Y_GOOD[:5], ValueError, "5|samples|targets"),
    "y_nan": (X_GOOD, np.where(Y_GOOD == 0, np.nan, 1.0), ValueError, "NaN"),
    "y_one_class": (X_GOOD, np.zeros(12), ValueError, "one class|2 classes|at least 2"),
    "y_missing": (X_GOOD, "none", ValueError, "requires y"),
}
PARAM_CASES = {
    "batch_size_zero": ({"batch_size": 0}, InvalidParameterError, "batch_size"),
    "device_bogus": ({"device": "bogus"}, ValueError, "not a valid device"),
    "device_meta": ({"device": "meta"}, ValueError, "meta"),
    "device_cuda_missing": ({"device": "cuda"}, ValueError, "CUDA"),
}
AFTER_FIT_CASES = {
    "other_channels": (np.repeat(X_GOOD, 2, 1), ValueError, "channel"),
    "other_size": (RNG.random((4, 1, 16, 16)), ValueError, "size"),
    "nan_after_fit": (_with(np.nan), ValueError, "NaN or infinity"),
}


def _fit_cases(name):
    cases = []
    for case, (X, y, error, match) in FIT_CASES.items():
        if case.startswith("y_") and name not in SUPERVISED:
            continue
        if case in ("y_one_class",) and name not in CLASSIFIERS:
            continue
        if case == "image_shape_mismatch":
            continue  # needs the image_shape parameter, set below
        cases.append(pytest.param(name, case, id=f"{name}-{case}"))
    return cases


@pytest.mark.parametrize("name, case", [c for name in ESTIMATORS for c in _fit_cases(name)])
def test_bad_input_in_fit(name, case):
    X, y, error, match = FIT_CASES[case]
    if y is None:
        y = Y_GOOD if name in CLASSIFIERS else Y_GOOD.astype(float)
    elif isinstance(y, str):
        y = None
    estimator = _small(name)
    with pytest.raises(error, match=match):
        estimator.fit(X, y) if name in SUPERVISED else estimator.fit(X)


@pytest.mark.parametrize("name", ESTIMATORS)
def test_image_shape_that_does_not_match_the_rows(name):
    X, _, error, match = FIT_CASES["image_shape_mismatch"]
    estimator = _small(name).set_params(image_shape=(3, 4, 4))
    with pytest.raises(error, match=match):
        estimator.fit(X, Y_GOOD) if name in SUPERVISED else estimator.fit(X)


@pytest.mark.parametrize("name, case", [(n, c) for n in ESTIMATORS for c in PARAM_CASES])
def test_bad_parameters(name, case):
    params, error, match = PARAM_CASES[case]
    if case == "device_cuda_missing" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    estimator = _small(name).set_params(**params)
    with pytest.raises(error, match=match):
        estimator.fit(X_GOOD, Y_GOOD) if name in SUPERVISED else estimator.fit(X_GOOD)


@pytest.mark.parametrize("name", ESTIMATORS)
def test_transform_before_fit(name):
    estimator = _small(name)
    method = estimator.predict if name in SUPERVISED else estimator.transform
    with pytest.raises(NotFittedError, match="not fitted"):
        method(X_GOOD)


@pytest.fixture(scope="module")
def fitted():
    out = {}
    for name in ESTIMATORS:
        estimator = _small(name)
        out[name] = estimator.fit(X_GOOD, Y_GOOD) if name in SUPERVISED else estimator.fit(X_GOOD)
    return out


@pytest.mark.parametrize("name, case", [(n, c) for n in ESTIMATORS for c in AFTER_FIT_CASES])
def test_bad_input_after_fit(fitted, name, case):
    X, error, match = AFTER_FIT_CASES[case]
    estimator = fitted[name]
    method = estimator.predict if name in SUPERVISED else estimator.transform
    with pytest.raises(error, match=match):
        method(X)


def test_every_estimator_meets_twenty_kinds_of_bad_input():
    for name in ESTIMATORS:
        kinds = len(_fit_cases(name)) + 1 + len(PARAM_CASES) + 1 + len(AFTER_FIT_CASES)
        assert kinds >= 20, (name, kinds)
