"""scikit-learn's estimator checks over every skphase estimator."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from skphase import ConvRFM, ConvRFMRegressor, DTCWPTFeatures, ScatteringPhaseCollapse, ScatteringTransform

# Small configurations: the checks fit many times on tiny data (flat rows of d
# values are read as sqrt(d) x sqrt(d) images, or 1 x d signals).
ESTIMATORS = [
    ScatteringPhaseCollapse(widths=(4,), max_iter=30, batch_size=64, learning_rate_init=0.1,
                            device="cpu", random_state=0),
    ScatteringTransform(J=1, L=2, max_order=1, device="cpu"),
    DTCWPTFeatures(J=1, device="cpu"),
    # float64: in float32 kernel sums differ by ~1e-6 between batch compositions (subset invariance).
    ConvRFM(patch_size=1, n_iter=1, dtype="float64", batch_size=64, device="cpu", random_state=0),
    ConvRFMRegressor(patch_size=1, n_iter=1, dtype="float64", batch_size=64, device="cpu", random_state=0),
]

_ROW_ORDER = (
    "float32 matrix products (BLAS, oneDNN) round a row differently depending on its place in the batch: "
    "reordered samples give outputs that differ by about 1e-6 relative, beyond the check's rtol of 1e-7; "
    "test_phase_collapse.py checks they agree to float32 round-off"
)
_AUTO_BANDWIDTH = (
    "bandwidth='auto' is the median patch distance over randomly drawn pairs of distinct images: repeating "
    "an image changes the pairs drawn and adds pairs at distance 0, so the kernel and the model differ (the "
    "validation split is drawn from the samples too); test_sample_weight.py checks that integer weights equal "
    "repetitions with a fixed bandwidth and no validation split"
)
EXPECTED_FAILURES = {
    "ScatteringPhaseCollapse": {
        "check_methods_sample_order_invariance": _ROW_ORDER,
        "check_sample_weight_equivalence_on_dense_data": (
            "mini-batch SGD with batch statistics: repeating an image changes the batches, their "
            "statistics and the number of steps, so a weight of 2 cannot equal a repetition exactly; "
            "test_sample_weight.py checks the loss is the weighted mean"
        ),
    },
    "ConvRFM": {"check_sample_weight_equivalence_on_dense_data": _AUTO_BANDWIDTH},
    "ConvRFMRegressor": {"check_sample_weight_equivalence_on_dense_data": _AUTO_BANDWIDTH},
}


def _expected_failed_checks(estimator):
    return EXPECTED_FAILURES.get(type(estimator).__name__, {})


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failed_checks)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
