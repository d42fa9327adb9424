import numpy as np
import pytest
import sklearn
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from skphase import ScatteringPhaseCollapse
from skphase.datasets import load_digits_images
from skphase.nn import train_classifier


@pytest.fixture(scope="module")
def digits_300():
    X, y = load_digits_images()
    return X[:300], y[:300]


def small(**params):
    return ScatteringPhaseCollapse(widths=(8,), L=2, max_iter=2, batch_size=50, device="cpu", random_state=0,
                                   **params)


def test_unit_weights_change_nothing(digits_300):
    X, y = digits_300
    plain = small().fit(X, y)
    weighted = small().fit(X, y, sample_weight=np.full(len(y), 3.0))  # scaled to mean 1
    np.testing.assert_allclose(weighted.loss_curve_, plain.loss_curve_, rtol=1e-6)


def test_engine_loss_is_the_weighted_mean_of_the_image_losses():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
    X, y = torch.randn(8, 1, 2, 2), torch.arange(8) % 3
    w = torch.tensor([1.0, 0.0, 2.0, 1.0, 0.5, 3.0, 0.0, 0.5])
    with torch.no_grad():
        losses = torch.nn.functional.cross_entropy(net(X), y, reduction="none")
    result = train_classifier(net, X, y, max_iter=1, batch_size=8, learning_rate=0.0, sample_weight=w,
                              recalibrate=False)
    assert result.loss_curve[0] == pytest.approx(float((losses * w).sum() / w.sum()), rel=1e-6)
    with pytest.raises(ValueError, match="one per image"):
        train_classifier(net, X, y, max_iter=1, sample_weight=w[:3])
    with pytest.raises(ValueError, match="non-negative"):
        train_classifier(net, X, y, max_iter=1, sample_weight=-w)


def test_balanced_class_weight_helps_a_rare_class(digits_300):
    X, y = load_digits_images()
    keep = np.flatnonzero((y != 3) | (np.cumsum(y == 3) <= 12))  # 12 threes among ~1600 digits_300
    X_train, y_train = X[keep][:900], y[keep][:900]
    test = np.flatnonzero(y == 3)[20:]
    params = dict(widths=(8,), L=2, max_iter=3, batch_size=64, device="cpu", random_state=0)
    plain = ScatteringPhaseCollapse(**params).fit(X_train, y_train)
    balanced = ScatteringPhaseCollapse(class_weight="balanced", **params).fit(X_train, y_train)
    assert np.mean(balanced.predict(X[test]) == 3) > np.mean(plain.predict(X[test]) == 3) + 0.1


def test_sample_weight_is_routed_through_a_pipeline(digits_300):
    X, y = digits_300
    w = np.where(y < 5, 2.0, 0.5)
    direct = small().fit(X, y, sample_weight=w)
    with sklearn.config_context(enable_metadata_routing=True):
        pipe = Pipeline([("pc", small().set_fit_request(sample_weight=True)),
                         ("clf", LogisticRegression(max_iter=200).set_fit_request(sample_weight=False))])
        pipe.fit(X, y, sample_weight=w)
    np.testing.assert_allclose(pipe["pc"].loss_curve_, direct.loss_curve_, rtol=1e-6)
    assert not np.allclose(small().fit(X, y).loss_curve_, direct.loss_curve_, rtol=1e-3)


def test_bad_weights_raise(digits_300):
    X, y = digits_300
    with pytest.raises(ValueError, match="sample_weight"):
        small().fit(X, y, sample_weight=np.ones(5))
    with pytest.raises(ValueError, match="[Nn]egative"):
        small().fit(X, y, sample_weight=-np.ones(len(y)))
    with pytest.raises(ValueError, match="non-zero"):
        small().fit(X, y, sample_weight=np.zeros(len(y)))


# ----------------------------------------------------------------- ConvRFM
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.utils.class_weight import compute_sample_weight  # noqa: E402

from skphase import ConvRFM, ConvRFMRegressor  # noqa: E402

RFM_ESTIMATORS = [ConvRFM, ConvRFMRegressor]


def _rfm(estimator, **params):
    return estimator(**{**dict(n_iter=2, dtype="float64", device="cpu", random_state=0), **params})


def _targets(estimator, y):
    """Labels for the classifier; two real targets for the regressor."""
    return y if estimator is ConvRFM else np.stack([y / 9.0, (y % 3) - 1.0], axis=1)


def _outputs(model, X):
    return model.decision_function(X) if isinstance(model, ConvRFM) else model.predict(X)


@pytest.mark.parametrize("estimator", RFM_ESTIMATORS)
@pytest.mark.parametrize("kernel", ["laplace", "gaussian"])
def test_convrfm_integer_weights_equal_repeated_images(digits_300, estimator, kernel):
    X, y = digits_300
    X, y = X[:45], y[:45]
    w = np.random.default_rng(0).integers(0, 4, size=len(y))  # zeros included
    assert (w == 0).any() and (w > 1).any()
    # A fixed bandwidth and no validation split: both are drawn from the images otherwise.
    params = dict(kernel=kernel, bandwidth=4.0, validation_fraction=0)
    weighted = _rfm(estimator, **params).fit(X, _targets(estimator, y), sample_weight=w)
    repeated = _rfm(estimator, **params).fit(np.repeat(X, w, axis=0), _targets(estimator, np.repeat(y, w)))
    np.testing.assert_allclose(weighted.M_, repeated.M_, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(_outputs(weighted, digits_300[0][250:290]), _outputs(repeated, digits_300[0][250:290]),
                               rtol=1e-8, atol=1e-10)
    assert weighted.centers_.shape[0] == np.count_nonzero(w)
    assert not np.allclose(weighted.M_, _rfm(estimator, **params).fit(X, _targets(estimator, y)).M_, atol=1e-3)


@pytest.mark.parametrize("estimator", RFM_ESTIMATORS)
def test_convrfm_zero_weight_equals_dropping_the_image(digits_300, estimator):
    X, y = digits_300
    X, y = X[:80], y[:80]
    w = np.ones(len(y))
    w[::7] = 0.0
    keep = w > 0
    # The default settings: the bandwidth, the split and the AGOP subset are drawn after the drop.
    weighted = _rfm(estimator, agop_max_samples=40).fit(X, _targets(estimator, y), sample_weight=w)
    dropped = _rfm(estimator, agop_max_samples=40).fit(X[keep], _targets(estimator, y[keep]))
    assert weighted.bandwidth_ == dropped.bandwidth_
    np.testing.assert_array_equal(weighted.validation_scores_, dropped.validation_scores_)
    np.testing.assert_allclose(weighted.M_, dropped.M_, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(_outputs(weighted, X[:20]), _outputs(dropped, X[:20]), rtol=1e-12, atol=1e-12)
    staged = zip(weighted.staged_score(X[:30], _targets(estimator, y[:30])),
                 dropped.staged_score(X[:30], _targets(estimator, y[:30])))
    assert all(a == pytest.approx(b, rel=1e-12) for a, b in staged)


def test_convrfm_unit_weights_change_nothing(digits_300):
    X, y = digits_300
    plain = _rfm(ConvRFM).fit(X[:80], y[:80])
    ones = _rfm(ConvRFM).fit(X[:80], y[:80], sample_weight=np.ones(80))
    np.testing.assert_array_equal(ones.M_, plain.M_)
    np.testing.assert_array_equal(ones.decision_function(X[80:100]), plain.decision_function(X[80:100]))


def test_convrfm_class_weight_equals_its_sample_weights(digits_300):
    X, y = digits_300
    X, y = X[:80], y[:80]
    balanced = _rfm(ConvRFM, class_weight="balanced").fit(X, y)
    weights = compute_sample_weight("balanced", y)
    explicit = _rfm(ConvRFM).fit(X, y, sample_weight=weights)
    np.testing.assert_array_equal(balanced.validation_scores_, explicit.validation_scores_)
    np.testing.assert_allclose(balanced.M_, explicit.M_, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(balanced.decision_function(X[:20]), explicit.decision_function(X[:20]), rtol=1e-12)
    # A dict multiplies with sample_weight.
    w = np.linspace(0.5, 2.0, len(y))
    by_dict = _rfm(ConvRFM, class_weight={3: 4.0}).fit(X, y, sample_weight=w)
    by_product = _rfm(ConvRFM).fit(X, y, sample_weight=w * np.where(y == 3, 4.0, 1.0))
    np.testing.assert_allclose(by_dict.M_, by_product.M_, rtol=1e-12, atol=1e-14)


def test_convrfm_sample_weight_is_routed_through_pipeline_and_grid_search(digits_300):
    X, y = digits_300
    X, y = X[:90], y[:90]
    w = np.where(y < 5, 2.0, 0.5)
    params = dict(n_iter=1, n_filters=4, validation_fraction=0, device="cpu", random_state=0)
    direct = ConvRFM(**params).fit(X, y, sample_weight=w)
    with sklearn.config_context(enable_metadata_routing=True):
        pipe = Pipeline([("rfm", ConvRFM(**params).set_fit_request(sample_weight=True)),
                         ("clf", LogisticRegression(max_iter=200).set_fit_request(sample_weight=False))])
        pipe.fit(X, y, sample_weight=w)
        search = GridSearchCV(
            ConvRFM(**params).set_fit_request(sample_weight=True).set_score_request(sample_weight=True),
            {"alpha": [1e-3, 1e-1]}, cv=2,
        ).fit(X, y, sample_weight=w)
    np.testing.assert_array_equal(pipe["rfm"].M_, direct.M_)
    assert not np.allclose(ConvRFM(**params).fit(X, y).M_, direct.M_, atol=1e-3)
    refit = ConvRFM(**{**params, **search.best_params_}).fit(X, y, sample_weight=w)
    np.testing.assert_array_equal(search.best_estimator_.M_, refit.M_)


@pytest.mark.parametrize("estimator", RFM_ESTIMATORS)
def test_convrfm_bad_weights_raise(digits_300, estimator):
    X, y = digits_300
    X, target = X[:30], _targets(estimator, y[:30])
    model = _rfm(estimator, n_iter=1)
    with pytest.raises(ValueError, match="sample_weight"):
        model.fit(X, target, sample_weight=np.ones(5))
    with pytest.raises(ValueError, match="1D array"):
        model.fit(X, target, sample_weight=np.ones((30, 2)))
    with pytest.raises(ValueError, match="[Nn]egative"):
        model.fit(X, target, sample_weight=-np.ones(30))
    with pytest.raises(ValueError, match="NaN"):
        model.fit(X, target, sample_weight=np.where(np.arange(30) == 4, np.nan, 1.0))
    with pytest.raises(ValueError, match="non-zero"):
        model.fit(X, target, sample_weight=np.zeros(30))
    with pytest.raises(ValueError, match="at least 2 images of non-zero weight"):
        model.fit(X, target, sample_weight=np.eye(30)[0])


def test_convrfm_weights_leaving_one_class_raise(digits_300):
    X, y = digits_300
    with pytest.raises(ValueError, match="at least 2 classes with non-zero weight"):
        _rfm(ConvRFM, n_iter=1).fit(X[:30], y[:30], sample_weight=(y[:30] == 1).astype(float))
    with pytest.raises(ValueError, match="class_weight must contain at least one non-zero"):
        _rfm(ConvRFM, n_iter=1, class_weight={0: 0.0, 1: 0.0}).fit(X[:30], y[:30] % 2)
