"""ConvRFM and ConvRFMRegressor: reduction to RFM on flattened data, model selection, filters, deep stacking."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.pipeline import Pipeline

from skphase.datasets import make_star_task
from skphase.estimators import ConvRFM, ConvRFMRegressor


def _reference_rfm(X, Y, n_iter, bandwidth, alpha):
    """Plain RFM on flat vectors (float64): Laplace kernel, ridge on K / max K, M <- trace-normalised AGOP."""
    X = torch.as_tensor(X, dtype=torch.float64).reshape(len(X), -1)
    Y = torch.as_tensor(Y, dtype=torch.float64)
    d = X.shape[1]
    M = torch.eye(d, dtype=torch.float64)
    for it in range(n_iter + 1):
        evals, evecs = torch.linalg.eigh(M)
        T = (evecs * evals.clamp_min(0).sqrt()) @ evecs.T

        def kernel(A, B, T=T):
            return torch.exp(-torch.cdist(A @ T.T, B @ T.T) / bandwidth)

        K = kernel(X, X)
        scale = K.max()
        coef = torch.linalg.solve(K / scale + alpha * torch.eye(len(X), dtype=torch.float64), Y) / scale
        if it == n_iter:
            return M, coef
        # AGOP of f(x) = kernel(x, X) @ coef, self pairs excluded (gradient 0 at distance 0).
        diff = (X[:, None, :] - X[None, :, :]) @ T.T @ T  # M (x - z)
        dist = torch.cdist(X @ T.T, X @ T.T)
        weight = torch.where(dist > 1e-10, -torch.exp(-dist / bandwidth) / (bandwidth * dist.clamp_min(1e-300)),
                             torch.zeros_like(dist))
        grads = torch.einsum("nm,nmd,mc->ncd", weight, diff, coef)
        G = torch.einsum("ncd,nce->de", grads, grads) / len(X)
        evals, evecs = torch.linalg.eigh(G)
        T_new = (evecs * evals.clamp_min(0).sqrt()) @ evecs.T
        T_new = T_new * (d / (T_new * T_new).sum()).sqrt()
        M = T_new.T @ T_new


def test_one_patch_covering_the_image_is_rfm_on_flat_data(digits_images):
    X, y = digits_images
    X, y = X[:60, :, 1:6, 1:6].astype(np.float64), y[:60]  # 5 x 5 images, one 5 x 5 patch
    clf = ConvRFM(patch_size=5, n_iter=2, validation_fraction=0, dtype="float64", bandwidth=5.0, alpha=1e-3,
                  device="cpu").fit(X, y)
    Y = np.eye(10)[y]
    M_ref, coef_ref = _reference_rfm(X, Y, 2, 5.0, 1e-3)
    np.testing.assert_allclose(clf.M_, M_ref.numpy(), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(clf.dual_coef_.numpy(), coef_ref.numpy(), rtol=1e-5, atol=1e-6)
    Xt = X[:10] + 0.01
    K = torch.exp(-torch.cdist(torch.as_tensor(Xt).reshape(10, -1) @ torch.as_tensor(clf.transform_matrix_).T,
                               torch.as_tensor(X).reshape(60, -1) @ torch.as_tensor(clf.transform_matrix_).T)
                  / 5.0)
    np.testing.assert_allclose(clf.decision_function(Xt), (K @ coef_ref).numpy(), rtol=1e-5, atol=1e-7)


def test_model_selection_on_validation_split(digits_images):
    X, y = digits_images
    clf = ConvRFM(n_iter=2, validation_fraction=0.25, device="cpu", random_state=0).fit(X[:200], y[:200])
    assert clf.validation_scores_.shape == (3,)
    assert np.all((clf.validation_scores_ >= 0) & (clf.validation_scores_ <= 1))
    assert clf.best_iteration_ == int(np.argmax(clf.validation_scores_))
    assert clf.n_iter_ == 2 and len(clf.agop_eigenvalues_) == 2
    # The refitted model uses every training sample as a centre.
    assert clf.centers_.shape[0] == 200 and clf.dual_coef_.shape == (200, 10)
    staged = clf.staged_score(X[200:400], y[200:400])
    assert staged.shape == (3,)
    assert clf.score(X[200:600], y[200:600]) > 0.8
    np.testing.assert_allclose(np.trace(clf.M_), 9.0, rtol=1e-4) if clf.best_iteration_ > 0 else None


def test_no_validation_keeps_last_iteration_and_is_reproducible(digits_images):
    X, y = digits_images
    a = ConvRFM(n_iter=1, validation_fraction=0, device="cpu").fit(X[:80], y[:80])
    b = ConvRFM(n_iter=1, validation_fraction=0, device="cpu").fit(X[:80], y[:80])
    assert a.best_iteration_ == 1 and np.isnan(a.validation_scores_).all()
    np.testing.assert_array_equal(a.M_, b.M_)
    # AGOP learning moves M away from the identity, towards the digits_images' edge directions.
    assert np.abs(a.M_ - np.eye(9)).max() > 0.1


def test_agop_on_a_subset_of_the_training_images(digits_images):
    X, y = digits_images
    fit = dict(n_iter=1, validation_fraction=0, device="cpu", dtype="float64", random_state=0)
    every = ConvRFM(agop_max_samples=None, **fit).fit(X[:120], y[:120])
    # A cap above n keeps every image (the default cap, 1000, for small training sets).
    capped = ConvRFM(agop_max_samples=500, **fit).fit(X[:120], y[:120])
    np.testing.assert_allclose(capped.M_, every.M_, rtol=1e-10, atol=1e-12)
    # A subset estimates the same average: close to M from every image, but not equal to it.
    subset = ConvRFM(agop_max_samples=60, **fit).fit(X[:120], y[:120])
    gap = np.linalg.norm(subset.M_ - every.M_) / np.linalg.norm(every.M_)
    assert 1e-6 < gap < 0.1


def test_filters_transform_and_deep_stacking(digits_images):
    X, y = digits_images
    X, y = X[:120], y[:120]
    clf = ConvRFM(n_iter=1, n_filters=4, validation_fraction=0, device="cpu", random_state=0).fit(X, y)
    assert clf.filters_.shape == (4, 1, 3, 3)
    assert clf.output_shape_ == (4, 6, 6)
    features = clf.transform(X[:5])
    assert features.shape == (5, 4 * 36) and features.dtype == np.float32
    expected = torch.nn.functional.conv2d(torch.as_tensor(X[:5]), torch.as_tensor(clf.filters_)).flatten(1)
    np.testing.assert_allclose(features, expected.numpy(), rtol=1e-5, atol=1e-5)
    # Without n_filters the filters are the rows of M^(1/2): their covariance is M.
    full = ConvRFM(n_iter=1, validation_fraction=0, device="cpu").fit(X, y)
    W = full.filters_.reshape(9, 9).astype(np.float64)
    np.testing.assert_allclose(W.T @ W, full.M_, rtol=1e-4, atol=1e-5)
    deep = Pipeline([("layer1", ConvRFM(n_iter=1, n_filters=4, validation_fraction=0, device="cpu",
                                        random_state=0)),
                     ("layer2", ConvRFM(n_iter=1, image_shape=(4, 6, 6), validation_fraction=0, device="cpu"))])
    deep.fit(X, y)
    assert deep.named_steps["layer2"].M_.shape == (36, 36)
    assert deep.score(X, y) > 0.9


def test_errors_and_pickling(digits_images):
    X, y = digits_images
    with pytest.raises(ValueError, match="at least 2 classes"):
        ConvRFM(device="cpu").fit(X[:10], np.zeros(10))
    with pytest.raises(ValueError, match="smaller than one"):
        ConvRFM(patch_size=9, device="cpu").fit(X[:20], y[:20])
    clf = ConvRFM(n_iter=1, device="cpu", random_state=0).fit(X[:60], y[:60])
    with pytest.raises(ValueError, match="channel"):
        clf.predict(np.zeros((2, 3, 8, 8)))
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(restored.predict(X[60:90]), clf.predict(X[60:90]))


def test_fit_copies_the_images_once_into_the_computation_dtype(digits_images):
    X, y = digits_images
    X = X[:40].astype(np.float64) + np.random.default_rng(0).random((40, 1, 8, 8)) * 1e-9
    clf = ConvRFM(n_iter=1, dtype="float64", device="cpu", random_state=0).fit(X, y[:40])
    # The centres hold the float64 images exactly (not rounded through float32) ...
    assert clf.centers_.dtype == torch.float64
    np.testing.assert_array_equal(clf.centers_.numpy(), X)
    # ... in a copy of their own: changing the input after fit changes nothing.
    X_tensor = torch.from_numpy(X.astype(np.float32))
    single = ConvRFM(n_iter=1, device="cpu", random_state=0).fit(X_tensor, y[:40])
    before = single.decision_function(X[:5])
    X_tensor.zero_()
    np.testing.assert_array_equal(single.decision_function(X[:5]), before)
    # The staged models of the training split use those centres too.
    assert len(list(clf.staged_decision_function(X[:5]))) == 2


def test_ntk_kernel_fits(digits_images):
    X, y = digits_images
    clf = ConvRFM(kernel="ntk", ntk_depth=2, n_iter=1, validation_fraction=0, device="cpu").fit(X[:40], y[:40])
    assert np.isfinite(clf.M_).all()
    assert clf.score(X[40:140], y[40:140]) > 0.6


def test_valid_ntk_fits_and_refuses_too_small_images(digits_images):
    X, y = digits_images  # 8 x 8 digits_images: a 6 x 6 patch grid leaves room for 3 'valid' 3 x 3 layers, not 4
    clf = ConvRFM(kernel="ntk", ntk_depth=3, ntk_padding="valid", n_iter=1, validation_fraction=0,
                  device="cpu").fit(X[:40], y[:40])
    assert np.isfinite(clf.M_).all()
    assert clf.score(X[40:140], y[40:140]) > 0.6
    with pytest.raises(ValueError, match="too small for 4 NTK layers"):
        clf.set_params(ntk_depth=4).fit(X[:40], y[:40])


def test_one_agop_step_learns_the_star_task():
    # The paper's star task with the authors' settings: NTK of a one-layer ReLU
    # conv net on 11 x 11 patches, 50 training images, AGOP on 20 of them.
    X, y = make_star_task(250, random_state=0)
    clf = ConvRFM(kernel="ntk", ntk_depth=1, patch_size=11, n_iter=1, agop_max_samples=20, validation_fraction=0,
                  device="cpu", random_state=0).fit(X[:50], y[:50])
    fixed, learned = clf.staged_score(X[50:], y[50:])
    assert learned > max(fixed + 0.05, 0.85)
    # The AGOP weighs the two channels that carry the star above the noise-only channel.
    share = np.diag(clf.M_).reshape(3, -1).sum(1) / np.trace(clf.M_)
    assert share[2] < 0.3 < share[:2].min()


def _hidden_filter_task(n, seed):
    """Mean over 3 x 3 patches of ``(w . patch)^2`` for a hidden unit filter ``w``, on 6 x 6 noise images."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 1, 6, 6))
    w = rng.standard_normal(9)
    w /= np.linalg.norm(w)
    patches = np.lib.stride_tricks.sliding_window_view(X[:, 0], (3, 3), axis=(1, 2)).reshape(n, 16, 9)
    return X, ((patches @ w) ** 2).mean(1), w


def test_regressor_with_one_patch_covering_the_image_is_rfm_on_flat_data(digits_images):
    X, y = digits_images
    X = X[:60, :, 1:6, 1:6].astype(np.float64)
    Y = np.stack([X.mean((1, 2, 3)), y[:60] / 9.0], axis=1)  # two real targets
    reg = ConvRFMRegressor(patch_size=5, n_iter=2, validation_fraction=0, dtype="float64", bandwidth=5.0,
                           alpha=1e-3, device="cpu").fit(X, Y)
    M_ref, coef_ref = _reference_rfm(X, Y, 2, 5.0, 1e-3)
    np.testing.assert_allclose(reg.M_, M_ref.numpy(), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(reg.dual_coef_.numpy(), coef_ref.numpy(), rtol=1e-5, atol=1e-6)
    T = torch.as_tensor(reg.transform_matrix_)
    K = torch.exp(-torch.cdist(torch.as_tensor(X[:10] + 0.01).reshape(10, -1) @ T.T,
                               torch.as_tensor(X).reshape(60, -1) @ T.T) / 5.0)
    prediction = reg.predict(X[:10] + 0.01)
    assert prediction.shape == (10, 2) and reg.n_outputs_ == 2
    np.testing.assert_allclose(prediction, (K @ coef_ref).numpy(), rtol=1e-5, atol=1e-7)


def test_classifier_is_the_regressor_on_one_hot_targets(digits_images):
    X, y = digits_images
    fit = dict(n_iter=2, validation_fraction=0, dtype="float64", device="cpu", random_state=0)
    clf = ConvRFM(**fit).fit(X[:100], y[:100])
    reg = ConvRFMRegressor(**fit).fit(X[:100], np.eye(10)[y[:100]])
    np.testing.assert_allclose(reg.M_, clf.M_, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(reg.predict(X[100:150]), clf.decision_function(X[100:150]), rtol=1e-10, atol=1e-12)


def test_regressor_learns_a_hidden_filter_and_selects_on_validation():
    X, y, w = _hidden_filter_task(500, seed=1)
    reg = ConvRFMRegressor(n_iter=3, validation_fraction=0.2, device="cpu", random_state=0).fit(X[:400], y[:400])
    scores = reg.validation_scores_
    assert scores.shape == (4,) and np.all(scores <= 1)
    assert reg.best_iteration_ == int(np.argmax(scores)) > 0
    top = np.linalg.eigh(reg.M_)[1][:, -1]
    assert abs(top @ w) > 0.9
    staged = reg.staged_score(X[400:], y[400:])
    assert staged[-1] > staged[0] + 0.1
    # The refitted model (every training image a centre) predicts as well as the selected stage.
    assert reg.score(X[400:], y[400:]) > staged[0] + 0.1
    assert [p.shape for p in reg.staged_predict(X[400:410])] == [(10,)] * 4


def test_regressor_targets_shapes_errors_and_pickling(digits_images):
    X, y = digits_images
    X, target = X[:60], y[:60].astype(float)
    column = ConvRFMRegressor(n_iter=1, device="cpu", random_state=0).fit(X, target[:, None])
    assert column.predict(X[:5]).shape == (5, 1) and column.n_outputs_ == 1
    flat = ConvRFMRegressor(n_iter=1, device="cpu", random_state=0).fit(X, target)
    np.testing.assert_allclose(flat.predict(X[:5]), column.predict(X[:5])[:, 0])
    with pytest.raises(ValueError, match="NaN"):
        ConvRFMRegressor(device="cpu").fit(X, np.where(np.arange(60) == 3, np.nan, target))
    with pytest.raises(ValueError, match="n_outputs"):
        ConvRFMRegressor(device="cpu").fit(X, np.zeros((60, 2, 2)))
    with pytest.raises(ValueError, match="59 targets for 60 images"):
        ConvRFMRegressor(device="cpu").fit(X, target[:59])
    with pytest.raises(ValueError, match="channel"):
        flat.predict(np.zeros((2, 3, 8, 8)))
    assert not hasattr(flat, "decision_function")
    restored = pickle.loads(pickle.dumps(flat))
    np.testing.assert_array_equal(restored.predict(X[:30]), flat.predict(X[:30]))


def test_weighted_kernel_ridge_solves_the_weighted_system():
    from skphase.nn._rfm import kernel_ridge

    g = torch.Generator().manual_seed(0)
    X = torch.randn(12, 4, dtype=torch.float64, generator=g)
    K = torch.exp(-torch.cdist(X, X))
    Y = torch.randn(12, 2, dtype=torch.float64, generator=g)
    w = torch.rand(12, dtype=torch.float64, generator=g) + 0.1
    coef = kernel_ridge(K, Y, 1e-2, w)
    # (K + lambda W^-1) coef = Y with lambda = alpha max K.
    torch.testing.assert_close((K + 1e-2 * K.max() * torch.diag(1 / w)) @ coef, Y, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(kernel_ridge(K, Y, 1e-2, torch.ones(12)), kernel_ridge(K, Y, 1e-2), rtol=0, atol=0)
    # A weight of 0 leaves its sample out exactly: coefficient 0, the others those of the rest.
    w[3] = 0.0
    coef = kernel_ridge(K, Y, 1e-2, w)
    rest = torch.arange(12) != 3
    assert float(coef[3].abs().max()) == 0.0
    torch.testing.assert_close(coef[rest], kernel_ridge(K[rest][:, rest], Y[rest], 1e-2, w[rest]), rtol=1e-12,
                               atol=1e-12)


def test_estimator_is_fit_rfm_on_the_patches(digits_images):
    from skphase.nn._patch_kernels import PatchKernel
    from skphase.nn._rfm import fit_rfm

    X, y = digits_images
    clf = ConvRFM(n_iter=2, validation_fraction=0, bandwidth=4.0, dtype="float64", device="cpu").fit(X[:60], y[:60])
    kernel = PatchKernel("laplace", 4.0, patch_size=3, grid=(6, 6))
    result = fit_rfm(kernel, kernel.patches(torch.as_tensor(X[:60], dtype=torch.float64)),
                     torch.as_tensor(np.eye(10)[y[:60]]), n_iter=2)
    assert len(result.transforms) == 3 and len(result.agop_eigenvalues) == 2 and np.isnan(result.scores).all()
    np.testing.assert_array_equal(clf.transform_matrix_, result.transforms[-1].numpy())
    np.testing.assert_array_equal(clf.dual_coef_.numpy(), result.dual_coefs[-1].numpy())


@pytest.mark.gpu
@pytest.mark.parametrize("estimator", [ConvRFM, ConvRFMRegressor])
def test_cuda_fit_matches_cpu(digits_images, estimator):
    X, y = digits_images
    target = y[:80] if estimator is ConvRFM else y[:80] / 9.0
    cpu = estimator(n_iter=1, dtype="float64", device="cpu", random_state=0).fit(X[:80], target)
    gpu = estimator(n_iter=1, dtype="float64", device="cuda", random_state=0).fit(X[:80], target)
    np.testing.assert_allclose(gpu.M_, cpu.M_, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(gpu.predict(X[80:100]), cpu.predict(X[80:100]), rtol=1e-6, atol=1e-8)


def test_median_patch_distance_matches_all_patches_reference():
    from skphase.nn import extract_patches, median_patch_distance

    X = torch.randn(20, 3, 9, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    value = median_patch_distance(X, 3, stride=2, padding=1, n_pairs=500, generator=torch.Generator().manual_seed(1))
    g = torch.Generator().manual_seed(1)  # the same draws, read from every patch of every image
    first = torch.randint(0, 20, (500,), generator=g)
    second = torch.randint(0, 19, (500,), generator=g)
    second = second + (second >= first)
    patches = extract_patches(X, 3, stride=2, padding=1)
    position = torch.randint(0, patches.shape[1], (500,), generator=g)
    expected = (patches[first, position] - patches[second, position]).norm(dim=1).median().item()
    assert value == pytest.approx(expected, rel=1e-12)


def test_auto_bandwidth_follows_the_scale_of_the_images(digits_images):
    X, y = digits_images
    X, y = X[:200], y[:200]
    small = ConvRFM(n_iter=1, dtype="float64", device="cpu", random_state=0).fit(X, y)
    large = ConvRFM(n_iter=1, dtype="float64", device="cpu", random_state=0).fit(255 * X, y)
    assert large.bandwidth_ == pytest.approx(255 * small.bandwidth_, rel=1e-9)
    np.testing.assert_array_equal(small.predict(X[:50]), large.predict(255 * X[:50]))
    fixed = ConvRFM(n_iter=1, bandwidth=3.0, device="cpu").fit(X, y)
    assert fixed.bandwidth_ == 3.0 and ConvRFM(kernel="ntk", n_iter=0, device="cpu").fit(X[:20], y[:20]).bandwidth_ is None


def test_auto_bandwidth_learns_the_star_task():
    X, y = make_star_task(50 + 400, random_state=2)
    model = ConvRFM(patch_size=11, n_iter=2, device="cpu", random_state=0).fit(X[:50], y[:50])
    scores = model.staged_score(X[50:], y[50:])
    assert scores[0] < 0.9 and max(scores[1:]) >= 0.85


def test_fixed_bandwidth_on_huge_values_names_the_cause(digits_images):
    X, y = digits_images
    with pytest.raises(ValueError, match="bandwidth='auto' or rescale the images"):
        ConvRFM(n_iter=1, bandwidth=10.0, device="cpu", random_state=0).fit(X[:100] * 1e4, y[:100])


def test_staged_score_weighs_images_like_score(digits_images):
    X, y = digits_images
    clf = ConvRFM(n_iter=1, validation_fraction=0, device="cpu").fit(X[:60], y[:60])
    weights = np.linspace(0.1, 1.0, 40)
    staged = clf.staged_score(X[60:100], y[60:100], sample_weight=weights)
    assert staged[-1] == pytest.approx(clf.score(X[60:100], y[60:100], sample_weight=weights))
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        clf.staged_score(X[60:100], y[60:100], sample_weight=np.ones(5))
