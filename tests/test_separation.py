import numpy as np
import pytest
import torch
from sklearn.linear_model import RidgeClassifier
from sklearn.metrics import calinski_harabasz_score
from sklearn.neighbors import NearestCentroid
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from skphase.metrics._separation import class_separation, layerwise_class_separation, separation_scores


def _blobs(n=150, d=12, k=3, seed=0, spread=1.5):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    centres = rng.normal(scale=spread, size=(k, d))
    return centres[y] + rng.normal(size=(n, d)), y


def _fisher_closed_form(F, y):
    mu = F.mean(axis=0)
    between = within = 0.0
    for c in np.unique(y):
        Fc = F[y == c]
        between += len(Fc) * np.sum((Fc.mean(axis=0) - mu) ** 2)
        within += np.sum((Fc - Fc.mean(axis=0)) ** 2)
    return between / within


def test_scores_match_sklearn_and_closed_forms():
    F, y = _blobs()
    F = F + 100.0  # a large offset: the streaming sums must not cancel
    scores = separation_scores(F, y, batch_size=17)
    assert scores["calinski_harabasz"] == pytest.approx(calinski_harabasz_score(F, y), rel=1e-9)
    assert scores["fisher_ratio"] == pytest.approx(_fisher_closed_form(F, y), rel=1e-9)
    ncm = NearestCentroid().fit(F, y)
    assert scores["ncm_accuracy"] == pytest.approx(ncm.score(F, y))
    for alpha in (1e-3, 1.0, 100.0):
        ridge = RidgeClassifier(alpha=alpha).fit(F, y)
        assert separation_scores(F, y, probe_alpha=alpha)["probe_accuracy"] == pytest.approx(ridge.score(F, y))
    assert scores["n_features"] == F.shape[1]


def test_binary_labels_strings_and_probe_weights():
    F, y = _blobs(k=2, spread=0.7, seed=3)
    labels = np.array(["cat", "dog"])[y]
    scores = separation_scores(F, labels)
    assert scores["probe_accuracy"] == pytest.approx(RidgeClassifier().fit(F, labels).score(F, labels))
    assert scores["calinski_harabasz"] == pytest.approx(calinski_harabasz_score(F, labels), rel=1e-9)
    assert 0.5 < scores["probe_accuracy"] < 1.0  # an overlapping problem: the check is not trivial


def test_streaming_is_independent_of_batch_size():
    F, y = _blobs(n=90)
    X = torch.as_tensor(F, dtype=torch.float32).reshape(90, 3, 2, 2)
    a = class_separation(torch.nn.Flatten(), X, y, batch_size=7)
    b = class_separation(torch.nn.Flatten(), X, y, batch_size=1000)
    for key in ("fisher_ratio", "calinski_harabasz"):
        assert a[key] == pytest.approx(b[key], rel=1e-9)
    assert a["ncm_accuracy"] == b["ncm_accuracy"] and a["probe_accuracy"] == b["probe_accuracy"]


def test_held_out_accuracies_match_sklearn():
    F, y = _blobs(n=200, spread=0.6, seed=1)
    Ft, yt = F[:120], y[:120]
    Fv, yv = F[120:], y[120:]
    flat = lambda x: x.flatten(1)  # noqa: E731
    row = class_separation(flat, Ft.reshape(120, 1, 3, 4), yt, X_test=Fv.reshape(80, 1, 3, 4), y_test=yv)
    Ft32, Fv32 = (np.float32(a).astype(np.float64) for a in (Ft, Fv))
    assert row["ncm_accuracy"] == pytest.approx(NearestCentroid().fit(Ft32, yt).score(Fv32, yv))
    assert row["probe_accuracy"] == pytest.approx(RidgeClassifier().fit(Ft32, yt).score(Fv32, yv))
    assert row["n_images"] == 120


def test_layerwise_rows_match_truncated_networks():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Conv2d(4, 6, 3, stride=2))
    F, y = _blobs(n=64, d=100, seed=2)
    X = torch.as_tensor(F, dtype=torch.float32).reshape(64, 1, 10, 10)
    rows = layerwise_class_separation(net, X, y, include_output=True, batch_size=20)
    assert [r["layer"] for r in rows] == ["input", "0", "2", "output"]
    alone = class_separation(net[:1], X, y, batch_size=20)
    for key in ("fisher_ratio", "calinski_harabasz", "ncm_accuracy", "probe_accuracy"):
        assert rows[1][key] == pytest.approx(alone[key], rel=1e-9)
    flat = X.flatten(1).double().numpy()
    assert rows[0]["calinski_harabasz"] == pytest.approx(calinski_harabasz_score(flat, y), rel=1e-6)
    assert rows[2]["n_features"] == 6 * 3 * 3


def test_count_sketch_probe_for_wide_layers():
    F, y = _blobs(n=200, d=400, spread=0.3, seed=4)
    X = torch.as_tensor(F, dtype=torch.float32).reshape(200, 1, 20, 20)
    full = class_separation(torch.nn.Flatten(), X, y, probe_features=400)
    sketched = class_separation(torch.nn.Flatten(), X, y, probe_features=64, random_state=0)
    assert sketched["fisher_ratio"] == pytest.approx(full["fisher_ratio"], rel=1e-9)  # not sketched
    assert sketched["ncm_accuracy"] == full["ncm_accuracy"]
    assert sketched["probe_accuracy"] != full["probe_accuracy"] or sketched["probe_accuracy"] == 1.0
    assert sketched["probe_accuracy"] > 0.8 * full["probe_accuracy"]


def test_pipeline_prefix_and_flat_input():
    F, y = _blobs(n=80, d=16)
    pipe = Pipeline([("scale", StandardScaler()), ("id", FunctionTransformer()), ("clf", RidgeClassifier())])
    pipe.fit(F, y)
    row = class_separation(pipe[:-1], F, y, image_shape=(1, 4, 4))
    Z = pipe[:-1].transform(np.float32(F).astype(np.float64))
    assert row["calinski_harabasz"] == pytest.approx(calinski_harabasz_score(Z, y), rel=1e-5)
    rows = layerwise_class_separation(pipe[:-1], F, y, image_shape=(1, 4, 4))
    assert [r["layer"] for r in rows] == ["input", "output"]


def test_collapsed_classes_and_bad_input():
    X = torch.zeros(20, 1, 2, 2)
    y = np.arange(20) % 2
    X[y == 1] = 1.0
    with pytest.warns(RuntimeWarning, match="no within-class variance"):
        row = class_separation(torch.nn.Flatten(), X, y)
    assert row["fisher_ratio"] == np.inf and row["ncm_accuracy"] == 1.0
    with pytest.raises(ValueError, match="at least 2 classes"):
        class_separation(torch.nn.Flatten(), X, np.zeros(20))
    with pytest.raises(ValueError, match="one per image"):
        class_separation(torch.nn.Flatten(), X, y[:-1])
    with pytest.raises(ValueError, match="labels \\[7\\]"):
        class_separation(torch.nn.Flatten(), X, y, X_test=X[:4], y_test=[0, 1, 7, 0])
    with pytest.raises(ValueError, match="y_test"):
        class_separation(torch.nn.Flatten(), X, y, X_test=X[:4])
    with pytest.raises(TypeError, match="layer-wise measurements"):
        layerwise_class_separation(lambda x: x, X, y, layers=["0"])


@pytest.mark.gpu
def test_cuda_module_matches_cpu():
    F, y = _blobs(n=64, d=100)
    X = torch.as_tensor(F, dtype=torch.float32).reshape(64, 1, 10, 10)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Conv2d(4, 6, 3))
    cpu = layerwise_class_separation(net, X, y)
    gpu = layerwise_class_separation(net.cuda(), X, y)
    assert [r["calinski_harabasz"] for r in gpu] == pytest.approx([r["calinski_harabasz"] for r in cpu], rel=1e-4)


def test_non_finite_model_outputs_raise():
    from skphase.datasets import load_digits_images

    X, y = load_digits_images()
    with pytest.raises(ValueError, match="NaN or infinite"):
        class_separation(lambda b: torch.full((b.shape[0], 4), float("nan")), X[:40], y[:40])


@pytest.mark.parametrize("labels, match", [
    (np.where(np.arange(40) < 20, 0.0, np.nan), "NaN or infinite labels"),
    (np.array([0, "a"] * 20, dtype=object), "mixes string and non-string"),
    (np.array([0, None] * 20, dtype=object), "missing labels"),
])
def test_bad_labels_raise(labels, match):
    with pytest.raises(ValueError, match=match):
        separation_scores(np.random.default_rng(0).normal(size=(40, 3)), labels)


def test_nan_probe_alpha_raises():
    with pytest.raises(ValueError, match="finite probe_alpha"):
        separation_scores(np.random.default_rng(0).normal(size=(40, 3)), np.arange(40) % 2, probe_alpha=float("nan"))


@pytest.mark.parametrize("features", [np.array([["a", "b"]] * 40, dtype=object), np.zeros((0, 3)),
                                      np.zeros((40, 0))])
def test_separation_scores_rejects_non_numeric_or_empty_features(features):
    with pytest.raises(ValueError, match="features must"):
        separation_scores(features, np.arange(len(features)) % 2)
