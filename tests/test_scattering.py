"""ScatteringTransform against kymatio, and its estimator behaviour."""

import pickle

import numpy as np
import pytest
import torch
from kymatio.torch import Scattering2D
from sklearn.base import clone

from skphase import ScatteringTransform
from skphase.datasets import load_digits_images


@pytest.fixture(scope="module")
def images():
    X, _ = load_digits_images()
    return X[:12]


def test_matches_kymatio(images):
    ours = ScatteringTransform(J=2, L=4, device="cpu").fit_transform(images)
    reference = Scattering2D(J=2, shape=(8, 8), L=4)(torch.as_tensor(images)).flatten(1).numpy()
    np.testing.assert_allclose(ours, reference, rtol=1e-6, atol=1e-7)


def test_filters_follow_set_params(images):
    base = ScatteringTransform(J=1, L=4, device="cpu").fit(images)
    changed = clone(base).set_params(J=2).fit(images)
    assert base.output_shape_ == (1, 5, 4, 4)
    assert changed.output_shape_ == (1, 1 + 2 * 4 + 16, 2, 2)
    assert changed.transform(images).shape == (12, 25 * 4)


def test_errors(images):
    with pytest.raises(ValueError, match="too small for J=4"):
        ScatteringTransform(J=4, padding="error", device="cpu").fit(images)
    model = ScatteringTransform(J=1, L=2, device="cpu").fit(images)
    with pytest.raises(ValueError, match="channel"):
        model.transform(np.zeros((2, 3, 8, 8)))
    with pytest.raises(ValueError, match="NaN"):
        model.transform(np.full((2, 1, 8, 8), np.nan))


def test_pickle_and_colour(images):
    colour = np.repeat(images, 3, axis=1)
    model = ScatteringTransform(J=1, L=2, device="cpu").fit(colour)
    assert model.transform(colour).shape == (12, 3 * 3 * 16)
    loaded = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(loaded.transform(colour), model.transform(colour))


def test_small_images_are_zero_padded_to_two_to_the_j():
    rng = np.random.default_rng(0)
    X = rng.random((3, 1, 3, 6)).astype(np.float32)
    model = ScatteringTransform(J=2, L=4, device="cpu").fit(X)
    assert model.padded_shape_ == (4, 6)
    padded = np.zeros((3, 1, 4, 6), np.float32)
    padded[:, :, :3, :] = X
    expected = Scattering2D(J=2, shape=(4, 6), L=4)(torch.from_numpy(padded)).flatten(1).numpy()
    np.testing.assert_array_equal(model.transform(X), expected)


def test_images_large_enough_are_not_padded(images):
    model = ScatteringTransform(J=2, L=4, device="cpu").fit(images)
    assert model.padded_shape_ == tuple(images.shape[2:])
    expected = Scattering2D(J=2, shape=tuple(images.shape[2:]), L=4)(torch.as_tensor(images, dtype=torch.float32))
    np.testing.assert_array_equal(model.transform(images), expected.flatten(1).numpy())
