"""Shift-invariance measures against closed forms and known cases."""

import numpy as np
import pytest
import torch

from skphase.estimators._dtcwpt import DTCWPTFeatures
from skphase.filters._packets import dtcwpt_packet_info
from skphase.metrics._shift_invariance import (
    dtcwpt_gamma,
    gamma_q,
    maxpool_modulus_error,
    mean_flip_rate,
    shift_images,
    shift_sensitivity,
)
from skphase.nn._dtcwpt import DTCWPT2d


def _plane_wave(n, fy, fx, phase=0.0):
    yy, xx = torch.meshgrid(torch.arange(n, dtype=torch.float64), torch.arange(n, dtype=torch.float64),
                            indexing="ij")
    return torch.cos(2 * np.pi * (fy * yy + fx * xx) / n + phase)[None, None]


def test_gamma_q_is_the_expected_squared_error_of_max_over_the_grid():
    rng = np.random.default_rng(0)
    phi = np.linspace(0, 2 * np.pi, 20001)[:-1]
    p = np.stack(np.meshgrid([-1, 0, 1], [-1, 0, 1], indexing="ij"), -1).reshape(-1, 2)
    for w in rng.uniform(-4, 4, size=(6, 2)):
        best = np.cos(phi[:, None] + (p @ w)[None]).max(axis=1)
        assert gamma_q(w) ** 2 == pytest.approx(np.mean((best - 1) ** 2), abs=1e-6)
    assert gamma_q([0.0, 0.0]) ** 2 == pytest.approx(1.5)  # lattice point: worst case
    assert gamma_q([np.pi, 0.0]) ** 2 == pytest.approx(1.5 - 16 / (4 * np.pi))  # two gaps of pi
    assert gamma_q(np.zeros((3, 4, 2))).shape == (3, 4)
    assert gamma_q([0.3, 1.7], q=0) ** 2 == pytest.approx(1.5)  # one point cannot track the phase
    assert gamma_q([0.3, 1.7], q=4) < 0.05  # many points fill the circle


def test_shift_images_integer_subpixel_and_zero_modes():
    x = torch.randn(2, 3, 8, 10, dtype=torch.float64)
    assert torch.equal(shift_images(x, (1, -2)), torch.roll(x, (1, -2), dims=(-2, -1)))
    odd = torch.randn(2, 9, 11, dtype=torch.float64)  # odd sizes: no Nyquist bin, shifts compose exactly
    half = shift_images(shift_images(odd, (0.5, 0.25)), (0.5, 0.75))
    assert torch.allclose(half, torch.roll(odd, (1, 1), dims=(-2, -1)), atol=1e-10)
    zero = shift_images(x, (2, 0), mode="zero")
    assert torch.equal(zero[..., 2:, :], x[..., :-2, :]) and torch.all(zero[..., :2, :] == 0)
    assert torch.allclose(shift_images(x, (1.0, -1.0), mode="zero"), shift_images(x, (1, -1), mode="zero"))
    interpolated = shift_images(x, (0, 0.5), mode="zero")
    assert torch.allclose(interpolated[..., 1:], (x[..., 1:] + x[..., :-1]) / 2, atol=1e-12)
    with pytest.raises(ValueError, match="mode"):
        shift_images(x, (1, 0), mode="reflect")


@pytest.mark.parametrize("shift", [1.0, 0.5, 0.25])
def test_identity_sensitivity_of_a_plane_wave_is_two_sin(shift):
    # ||x(. - u) - x|| / ||x|| = 2 |sin(omega u / 2)| for a sinusoid of frequency omega
    n, f = 32, 3
    x = _plane_wave(n, 0, f)
    result = shift_sensitivity(lambda b: b, x, shifts=[(0, shift)])
    assert result["overall"] == pytest.approx(2 * abs(np.sin(2 * np.pi * f / n * shift / 2)), rel=1e-8)


def test_zero_padded_shift_of_a_delta_and_per_channel_grouping():
    x = torch.zeros(1, 1, 9, 9, dtype=torch.float64)
    x[..., 4, 4] = 1.0
    assert shift_sensitivity(lambda b: b, x, shifts=[(0, 1)], mode="zero")["overall"] == pytest.approx(np.sqrt(2))
    # channel 0 invariant (global mean), channel 1 the image itself
    model = lambda b: torch.cat([b.mean(dim=(2, 3), keepdim=True).expand_as(b), b], dim=1)  # noqa: E731
    images = torch.rand(4, 1, 8, 8, dtype=torch.float64)
    per_channel = shift_sensitivity(model, images, shifts=[(1, 0)])["per_channel"]
    assert per_channel[0] < 1e-12 and per_channel[1] > 0.1
    flat = shift_sensitivity(lambda b: model(b).flatten(1), images, shifts=[(1, 0)], n_channels=2)
    np.testing.assert_allclose(flat["per_channel"], per_channel)
    with pytest.raises(ValueError, match="n_channels"):
        shift_sensitivity(lambda b: b.flatten(1), images, n_channels=3)


def test_modulus_is_more_shift_stable_than_real_and_max_on_a_transformer():
    rng = np.random.default_rng(0)
    X = rng.random((6, 1, 32, 32)).astype(np.float32)
    results = {}
    for pooling in ("modulus", "max", "real"):
        est = DTCWPTFeatures(J=2, pooling=pooling, channels="bandpass", device="cpu").fit(X)
        results[pooling] = shift_sensitivity(est, X)
        assert results[pooling]["per_channel"].shape == (8,)  # read from output_shape_
    assert results["modulus"]["overall"] < results["max"]["overall"] < results["real"]["overall"]
    module = shift_sensitivity(DTCWPT2d(J=2, pooling="modulus"), torch.from_numpy(X))
    assert module["per_channel"].shape == (32,)


def test_maxpool_modulus_error_of_a_plane_wave_matches_gamma():
    # For a plane wave of frequency xi, Re(x * W) is A cos(phase) on the grid and |x * W| = A, so
    # the normalised error of the matched channel is the mean over output positions of
    # (max_p cos(phi + m <xi, p>) - 1)^2, i.e. gamma_1(m xi)^2 for phases spread over the circle.
    n, J = 128, 3
    m = 2 ** (J - 1)
    info = dtcwpt_packet_info(J)
    for fx, fy in ((21, 13), (27, 37)):
        x = _plane_wave(n, fy, fx, phase=0.3)
        xi = 2 * np.pi * np.array([fx, fy]) / n
        channel = int(np.argmin(np.hypot(info["xi_x"] - xi[0], info["xi_y"] - xi[1])))
        error = maxpool_modulus_error(x, J=J)[channel]
        assert error == pytest.approx(gamma_q(m * xi) ** 2, abs=0.02)


def test_mean_flip_rate_by_hand():
    rng = np.random.default_rng(1)
    X = rng.random((50, 1, 6, 6))

    def corner(b):
        return (b[:, 0, 0, 0] > 0.5).long()

    expected = np.mean(
        [(X[:, 0, 0, 0] > 0.5) != (np.roll(X, s, axis=(2, 3))[:, 0, 0, 0] > 0.5) for s in [(0, 1), (1, 0)]]
    )
    assert mean_flip_rate(corner, X, shifts=[(0, 1), (1, 0)]) == pytest.approx(expected)
    assert expected > 0.2

    class Mean:
        def predict(self, images):
            return (images.mean(axis=(1, 2, 3)) > 0.5).astype(int)

    assert mean_flip_rate(Mean(), X) == 0.0
    scores = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(36, 3))
    assert 0.0 <= mean_flip_rate(scores, X) <= 1.0


def test_dtcwpt_gamma_reduces_to_gamma_for_a_plane_wave_spectrum():
    J, n = 3, 128
    info = dtcwpt_packet_info(J)
    x = _plane_wave(n, 13, 21)
    weighted = dtcwpt_gamma(J, X=x, n_freq=n)
    xi = 2 * np.pi * np.array([21, 13]) / n
    channel = int(np.argmin(np.hypot(info["xi_x"] - xi[0], info["xi_y"] - xi[1])))
    assert weighted[channel] == pytest.approx(gamma_q(4 * xi), abs=1e-6)
    white = dtcwpt_gamma(J)
    assert white.shape == (128,) and np.all((white >= 0) & (white <= np.sqrt(1.5) + 1e-9))


@pytest.mark.parametrize("kwargs, match", [
    ({"n_channels": 0}, "n_channels must be a positive integer"),
    ({"shifts": "abc"}, "pairs of numbers"),
    ({"shifts": [(1,)]}, "pairs of numbers"),
    ({"shifts": [(float("nan"), 1)]}, "pairs of numbers"),
    ({"shifts": []}, "empty"),
])
def test_shift_sensitivity_rejects_bad_arguments(kwargs, match):
    X = np.random.default_rng(0).normal(size=(4, 1, 8, 8))
    with pytest.raises(ValueError, match=match):
        shift_sensitivity(lambda b: b.flatten(1), X, **kwargs)
