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
def digits():
    X, y = load_digits_images()
    return X[:300], y[:300]


def small(**params):
    return ScatteringPhaseCollapse(widths=(8,), L=2, max_iter=2, batch_size=50, device="cpu", random_state=0,
                                   **params)


def test_unit_weights_change_nothing(digits):
    X, y = digits
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


def test_balanced_class_weight_helps_a_rare_class(digits):
    X, y = load_digits_images()
    keep = np.flatnonzero((y != 3) | (np.cumsum(y == 3) <= 12))  # 12 threes among ~1600 digits
    X_train, y_train = X[keep][:900], y[keep][:900]
    test = np.flatnonzero(y == 3)[20:]
    params = dict(widths=(8,), L=2, max_iter=3, batch_size=64, device="cpu", random_state=0)
    plain = ScatteringPhaseCollapse(**params).fit(X_train, y_train)
    balanced = ScatteringPhaseCollapse(class_weight="balanced", **params).fit(X_train, y_train)
    assert np.mean(balanced.predict(X[test]) == 3) > np.mean(plain.predict(X[test]) == 3) + 0.1


def test_sample_weight_is_routed_through_a_pipeline(digits):
    X, y = digits
    w = np.where(y < 5, 2.0, 0.5)
    direct = small().fit(X, y, sample_weight=w)
    with sklearn.config_context(enable_metadata_routing=True):
        pipe = Pipeline([("pc", small().set_fit_request(sample_weight=True)),
                         ("clf", LogisticRegression(max_iter=200).set_fit_request(sample_weight=False))])
        pipe.fit(X, y, sample_weight=w)
    np.testing.assert_allclose(pipe["pc"].loss_curve_, direct.loss_curve_, rtol=1e-6)
    assert not np.allclose(small().fit(X, y).loss_curve_, direct.loss_curve_, rtol=1e-3)


def test_bad_weights_raise(digits):
    X, y = digits
    with pytest.raises(ValueError, match="sample_weight"):
        small().fit(X, y, sample_weight=np.ones(5))
    with pytest.raises(ValueError, match="[Nn]egative"):
        small().fit(X, y, sample_weight=-np.ones(len(y)))
    with pytest.raises(ValueError, match="non-zero"):
        small().fit(X, y, sample_weight=np.zeros(len(y)))
