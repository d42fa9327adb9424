"""DTCWPTFeatures: the scikit-learn contract and what each pooling computes."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

from skphase.estimators._dtcwpt import DTCWPTFeatures
from skphase.nn._dtcwpt import dtcwpt2d, dtcwpt_pool


def _images(n=4, c=1, h=16, w=16, seed=0):
    return np.random.default_rng(seed).random((n, c, h, w)).astype(np.float32)


@parametrize_with_checks(
    [
        DTCWPTFeatures(J=1, device="cpu", batch_size=7),
        DTCWPTFeatures(J=2, pooling="max", channels="no_lowpass", device="cpu"),
        DTCWPTFeatures(J=1, pooling="none", device="cpu"),
    ]
)
def test_sklearn_contract(estimator, check):
    check(estimator)


@pytest.mark.parametrize("pooling", ["modulus", "max", "real", "none"])
def test_transform_matches_the_torch_paths(pooling):
    X = _images(c=2)
    est = DTCWPTFeatures(J=2, pooling=pooling, channels="bandpass", device="cpu").fit(X)
    out = est.transform(X)
    assert out.dtype == np.float32
    assert out.shape == (4, int(np.prod(est.output_shape_)))
    assert est.output_shape_[0] == 2 * 8
    ref = dtcwpt_pool(torch.from_numpy(X), 2, pooling)[:, :, est.channel_indices_]
    if pooling == "none":
        ref = torch.view_as_real(ref).movedim(-1, -3)
    np.testing.assert_allclose(out, ref.reshape(4, -1).numpy(), atol=1e-6)
    assert len(est.get_feature_names_out()) == out.shape[1]


def test_max_pool_path_is_close_to_modulus_for_a_matched_plane_wave():
    # A plane wave at the centre frequency of a band-pass packet: |x * W| is flat and the
    # max over the 3 x 3 grid of Re(x * W) is close to it when gamma_1(m xi) is small.
    n = 64
    est_mod = DTCWPTFeatures(J=2, pooling="modulus", channels="bandpass", device="cpu")
    est_max = clone(est_mod).set_params(pooling="max")
    xi = (3 * np.pi / 8, 3 * np.pi / 8)  # packet (1, 1)
    yy, xx = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    X = np.cos(xi[0] * xx + xi[1] * yy)[None, None].astype(np.float32)
    channel = int(np.argmin(np.abs(est_mod.fit(X).centre_frequencies_ - xi).sum(axis=1)))
    mod = est_mod.transform(X).reshape(est_mod.output_shape_)[channel]
    mx = est_max.fit(X).transform(X).reshape(est_max.output_shape_)[channel]
    assert mod.std() / mod.mean() < 0.02
    assert np.abs(mx - mod).mean() / mod.mean() < 0.1


def test_inverse_transform_reconstructs_and_pads():
    X = _images(n=3, c=3, h=13, w=10)
    est = DTCWPTFeatures(J=2, pooling="none", device="cpu").fit(X)
    assert est.padded_shape_ == (16, 12)
    back = est.inverse_transform(est.transform(X))
    np.testing.assert_allclose(back, X.reshape(3, -1), atol=1e-5)
    with pytest.raises(ValueError, match="pooling='none'"):
        DTCWPTFeatures(J=2, device="cpu").fit(X).inverse_transform(np.zeros((3, 10)))
    with pytest.raises(ValueError, match="shape"):
        est.inverse_transform(np.zeros((3, 10)))


def test_channel_selection_by_frequency_and_names():
    X = _images()
    est = DTCWPTFeatures(J=2, channels=[(2.0, -1.2), (0.4, 0.4)], device="cpu").fit(X)
    np.testing.assert_allclose(est.centre_frequencies_, [[0.3927, 0.3927], [1.9635, -1.1781]], atol=1e-4)
    names = est.get_feature_names_out()
    assert names[0] == "dtcwptfeatures_c0_xi(+0.393,+0.393)_y0_x0"
    assert "xi(+1.963,-1.178)" in names[-1]
    with pytest.raises(ValueError, match="no channel"):
        DTCWPTFeatures(J=1, channels="bandpass", device="cpu").fit(X)


def test_grey_mixing_and_errors():
    X = _images(c=3)
    lum = DTCWPTFeatures(J=1, grey="luminance", device="cpu").fit(X)
    grey = (X * np.array([0.299, 0.587, 0.114], dtype=np.float32)[None, :, None, None]).sum(1, keepdims=True)
    np.testing.assert_allclose(lum.transform(X), DTCWPTFeatures(J=1, device="cpu").fit(grey).transform(grey), atol=1e-6)
    assert DTCWPTFeatures(J=1, grey="mean", device="cpu").fit(X).output_shape_[0] == 8
    with pytest.raises(ValueError, match="3-channel"):
        DTCWPTFeatures(grey="luminance", device="cpu").fit(_images(c=1))
    with pytest.raises(ValueError, match="padding='error'"):
        DTCWPTFeatures(J=2, padding="error", device="cpu").fit(_images(h=10, w=10))
    est = DTCWPTFeatures(J=2, device="cpu").fit(X)
    with pytest.raises(ValueError, match="channel"):
        est.transform(_images(c=1))
    with pytest.raises(ValueError, match="NaN"):
        est.transform(np.full((1, 3, 16, 16), np.nan))


def test_set_params_refits_cleanly_and_pickles():
    X = _images()
    est = DTCWPTFeatures(J=1, device="cpu").fit(X)
    est.set_params(J=2).fit(X)
    assert est.transform(X).shape[1] == 32 * 4 * 4
    again = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(again.transform(X), est.transform(X))


def test_pipeline_on_flat_rows_and_pandas_output():
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    X = rng.random((20, 64))
    y = np.arange(20) % 2
    pipe = make_pipeline(DTCWPTFeatures(J=1, device="cpu"), LogisticRegression(max_iter=200)).fit(X, y)
    assert pipe.score(X, y) >= 0.5
    frame = DTCWPTFeatures(J=1, device="cpu").set_output(transform="pandas").fit(X).transform(X)
    assert isinstance(frame, pd.DataFrame) and frame.shape == (20, 8 * 4 * 4)


def test_parseval_energy_of_none_features():
    X = _images(n=2, h=16, w=16).astype(np.float64)
    est = DTCWPTFeatures(J=2, pooling="none", device="cpu").fit(X)
    out = est.transform(X)
    np.testing.assert_allclose((out**2).sum(1), (X.reshape(2, -1) ** 2).sum(1), rtol=1e-5)
    z = dtcwpt2d(torch.from_numpy(X), 2)
    assert z.shape[2] == 32


@pytest.mark.gpu
def test_cuda_features_match_cpu_and_pickle_to_cpu():
    X = _images(c=3)
    gpu = DTCWPTFeatures(J=2, pooling="max", device="cuda").fit(X)
    cpu = DTCWPTFeatures(J=2, pooling="max", device="cpu").fit(X)
    np.testing.assert_allclose(gpu.transform(X), cpu.transform(X), atol=1e-5)
    assert pickle.loads(pickle.dumps(gpu)).transform(X).shape == cpu.transform(X).shape


def test_float64_images_stay_float64_through_dtcwpt():
    X = np.random.default_rng(0).standard_normal((3, 2, 16, 12))
    model = DTCWPTFeatures(J=2, pooling="none", device="cpu").fit(X)
    features = model.transform(X)
    assert features.dtype == np.float64
    back = model.inverse_transform(features)
    assert back.dtype == np.float64
    assert np.linalg.norm(back - X.reshape(3, -1)) / np.linalg.norm(X) <= 1e-10
    # float32 output for dtype="float32" or float32 input.
    assert model.transform(X.astype(np.float32)).dtype == np.float32
    single = DTCWPTFeatures(J=2, pooling="none", dtype="float32", device="cpu").fit(X)
    assert single.transform(X).dtype == np.float32
    assert single.inverse_transform(single.transform(X)).dtype == np.float32
    assert DTCWPTFeatures().__sklearn_tags__().transformer_tags.preserves_dtype == ["float64", "float32"]
    assert single.__sklearn_tags__().transformer_tags.preserves_dtype == ["float32"]


def test_float64_images_past_the_float32_range_stay_finite_in_float64():
    X = np.full((2, 1, 8, 8), 3e38)  # low-pass features beyond the largest float32, finite in float64
    out = DTCWPTFeatures(J=1, device="cpu").fit(X).transform(X)
    assert out.dtype == np.float64 and np.isfinite(out).all()
    assert out.max() > np.finfo(np.float32).max
    with pytest.raises(ValueError, match="overflowed the range of float32"):
        DTCWPTFeatures(J=1, device="cpu").fit(X).transform(X.astype(np.float32))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("channels", ["all", "bandpass"])
def test_none_features_are_written_straight_into_the_output(monkeypatch, dtype, channels):
    import skphase.utils._torch as torch_utils

    X = np.random.default_rng(0).standard_normal((7, 2, 16, 16)).astype(np.float32)
    copies = []
    write_rows = torch_utils._write_rows
    monkeypatch.setattr(torch_utils, "_write_rows", lambda *a: copies.append(1) or write_rows(*a))
    est = DTCWPTFeatures(J=2, pooling="none", dtype=dtype, channels=channels, batch_size=3, device="cpu").fit(X)
    features = est.transform(X)
    # Every packet kept: the transform writes the parts into the output; a selection is copied.
    assert len(copies) == (0 if channels == "all" else 3)
    z = dtcwpt2d(torch.from_numpy(X).to(getattr(torch, dtype)), 2)[:, :, torch.as_tensor(est.channel_indices_)]
    expected = torch.stack((z.real, z.imag), dim=3).reshape(len(X), -1).float().numpy()
    np.testing.assert_array_equal(features, expected)
