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
    "float32 matrix products (BLAS, oneDNN) round a row differently depending on its place in the batch "
    "and on the batch's size: outputs differ by about 1e-6 relative, beyond the check's rtol of 1e-7; "
    "test_phase_collapse.py checks subsets agree to float32 round-off"
)
_KYMATIO_SIZE = (
    "kymatio's 2-D scattering needs images of at least 2**J x 2**J pixels, while these checks pass "
    "flat rows of 1 to 5 values (read as 1 x d images); behaviour is tested in test_scattering.py"
)
EXPECTED_FAILURES = {
    "ScatteringPhaseCollapse": {
        "check_methods_sample_order_invariance": _ROW_ORDER,
        "check_methods_subset_invariance": _ROW_ORDER,
    },
    "ScatteringTransform": {
        name: _KYMATIO_SIZE
        for name in [
            "check_fit_score_takes_y", "check_estimators_overwrite_params", "check_dont_overwrite_parameters",
            "check_estimators_fit_returns_self", "check_readonly_memmap_input", "check_estimators_dtypes",
            "check_dtype_object", "check_pipeline_consistency", "check_estimators_nan_inf",
            "check_estimators_pickle", "check_f_contiguous_array_estimator",
            "check_transformer_data_not_an_array", "check_transformer_general",
            "check_transformer_preserve_dtypes", "check_methods_sample_order_invariance",
            "check_methods_subset_invariance", "check_dict_unchanged", "check_fit_idempotent",
            "check_fit_check_is_fitted", "check_n_features_in", "check_fit2d_predict1d",
            "check_fit2d_1sample", "check_fit2d_1feature",
        ]
    },
}


def _expected_failed_checks(estimator):
    return EXPECTED_FAILURES.get(type(estimator).__name__, {})


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failed_checks)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
