"""The spatial Morlet bank against kymatio's filter formulas."""

import numpy as np
import pytest
from kymatio.scattering2d.filter_bank import gabor_2d as kymatio_gabor
from kymatio.scattering2d.filter_bank import morlet_2d as kymatio_morlet

from skphase.filters import BLOCK_KINDS, block_filter_bank, gabor_2d, kernel_radius, morlet_2d

GRID = 64


def _centre_crop(filter_at_origin, radius):
    centred = np.fft.fftshift(filter_at_origin)
    mid = GRID // 2
    return centred[mid - radius: mid + radius + 1, mid - radius: mid + radius + 1]


@pytest.mark.parametrize("L", [4, 8])
def test_standard_bank_matches_kymatio(L):
    filters, subsample = block_filter_bank(L, "standard")
    assert subsample
    radius = filters.shape[-1] // 2
    slant = 4.0 / L
    for l in range(L):
        theta = (int(L - L / 2 - 1) - l) * np.pi / L
        reference = kymatio_morlet(GRID, GRID, 0.8, theta, 3 * np.pi / 4, slant=slant)
        crop = _centre_crop(reference, radius)
        # The truncated support holds almost all of kymatio's filter...
        assert np.abs(crop).sum() / np.abs(reference).sum() > 0.999
        # ...and the two agree to the truncation error.
        np.testing.assert_allclose(filters[1 + l], crop, atol=2e-3 * np.abs(crop).max())
    reference_phi = kymatio_gabor(GRID, GRID, 0.8, 0, 0)
    # kymatio normalises with 2 * 3.1415 instead of 2 * pi: a 3e-5 relative difference.
    np.testing.assert_allclose(filters[0], _centre_crop(reference_phi, radius), rtol=1e-4, atol=1e-9)


def test_gabor_formula_matches_kymatio_exactly_away_from_truncation():
    ours = gabor_2d(10, sigma=1.3, theta=0.7, xi=1.1, slant=0.6)
    theirs = _centre_crop(kymatio_gabor(GRID, GRID, 1.3, 0.7, 1.1, slant=0.6), 10)
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-9)  # 3.1415 vs pi in kymatio


@pytest.mark.parametrize("kind", BLOCK_KINDS)
@pytest.mark.parametrize("L", [2, 4, 8])
def test_wavelets_have_zero_mean_and_lowpass_is_real(kind, L):
    if kind == "factorized_second" and L == 2:
        with pytest.raises(ValueError, match="L >= 3"):
            block_filter_bank(L, kind)
        return
    filters, _ = block_filter_bank(L, kind)
    assert filters.shape[0] == 1 + L
    np.testing.assert_allclose(filters[1:].sum(axis=(1, 2)), 0, atol=1e-12)
    assert np.abs(filters[0].imag).max() == 0
    assert filters[0].real.sum() == pytest.approx(1, abs=0.01)


def test_wavelet_orientations_point_where_expected():
    L = 4
    filters, _ = block_filter_bank(L, "standard")
    size = 64
    for l in range(L):
        theta = (int(L - L / 2 - 1) - l) * np.pi / L
        padded = np.zeros((size, size), complex)
        k = filters.shape[-1]
        padded[:k, :k] = filters[1 + l]
        spectrum = np.abs(np.fft.fft2(padded))
        peak = np.unravel_index(spectrum.argmax(), spectrum.shape)
        freqs = np.fft.fftfreq(size) * 2 * np.pi
        peak_angle = np.arctan2(freqs[peak[1]], freqs[peak[0]])
        # Peak frequency at +/- xi along theta (mod pi).
        assert np.isclose(np.cos(peak_angle - theta) ** 2, 1, atol=0.05)


def test_factorized_blocks_subsample_every_other():
    assert block_filter_bank(4, "factorized_first")[1] is False
    assert block_filter_bank(4, "factorized_second")[1] is True
    with pytest.raises(ValueError, match="kind must be one of"):
        block_filter_bank(4, "octave")


def test_kernel_radius_covers_the_envelope():
    radius = kernel_radius(0.8, 1.0, tol=1e-3)
    assert np.exp(-(radius**2) / (2 * 0.8**2)) <= 1e-3
    assert np.exp(-((radius - 1) ** 2) / (2 * 0.8**2)) > 1e-3
    assert kernel_radius(0.8, 0.5) > kernel_radius(0.8, 1.0)
    morlet = morlet_2d(radius, 0.8, 0.0, 3 * np.pi / 4, slant=1.0)
    assert morlet.shape == (2 * radius + 1,) * 2
