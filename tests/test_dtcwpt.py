"""The 2-D DT-CWPT: filters, perfect reconstruction, Hilbert pairs, agreement with the cascade, gradients."""

import math

import numpy as np
import pytest
import torch

from _dtcwpt_reference import cascade_dtcwpt2d
from skphase.filters._packets import dtcwpt_packet_info, select_packets
from skphase.filters._qshift import QSHIFT_A_H0, packet_filters_1d, packet_paths, qshift_filters
from skphase.nn._dtcwpt import DTCWPT2d, IDTCWPT2d, dtcwpt2d, dtcwpt2d_parts, dtcwpt_pool, idtcwpt2d


def test_qshift_banks_are_orthonormal():
    for h0, h1 in qshift_filters().values():
        for f, g in ((h0, h0), (h1, h1), (h0, h1)):
            for shift in range(0, 10, 2):
                expected = float(f is g and shift == 0)
                assert np.dot(f[shift:], g[: g.size - shift]) == pytest.approx(expected, abs=1e-12)
    assert QSHIFT_A_H0.sum() == pytest.approx(math.sqrt(2), abs=1e-12)


def _one_sided(J):
    bank = packet_filters_1d(J)
    spectrum = np.abs(np.fft.fft(bank[0] + 1j * bank[1], 4096)) ** 2
    return spectrum[:, 1:2048].sum(axis=1) / spectrum.sum(axis=1)


@pytest.mark.parametrize("J", [2, 3, 4])
def test_1d_packet_pairs_are_hilbert_pairs(J):
    quality = _one_sided(J)
    assert np.all(quality[1:-1] >= (0.997 if J <= 3 else 0.995)), quality  # band-pass packets
    assert np.all(quality[[0, -1]] < 0.9)  # low-pass and Nyquist packets are not analytic


@pytest.mark.parametrize("J", [2, 3])
def test_1d_packets_are_in_frequency_order(J):
    bank = packet_filters_1d(J)
    spectrum = np.abs(np.fft.rfft(bank[0], 4096)) ** 2
    peaks = spectrum.argmax(axis=1) / 2048 * np.pi
    centres = (np.arange(2**J) + 0.5) * np.pi / 2**J
    assert np.all(np.abs(peaks - centres) < np.pi / 2**J), (peaks, centres)
    assert len(set(packet_paths(J))) == 2**J


def _impulse_responses(J, size):
    """Complex 2-D filter of every channel (circular, size x size), read off the transform of deltas."""
    s = 2**J
    deltas = torch.zeros(s * s, size, size, dtype=torch.float64)
    for i in range(s):
        for j in range(s):
            deltas[i * s + j, i, j] = 1.0
    z = dtcwpt2d(deltas, J)  # z[(i,j), c, n, m] = w_c[s n - i, s m - j]
    filters = torch.zeros(z.shape[1], size, size, dtype=torch.complex128)
    for i in range(s):
        for j in range(s):
            rows = (s * torch.arange(size // s)[:, None] - i) % size
            cols = (s * torch.arange(size // s)[None, :] - j) % size
            filters[:, rows, cols] = z[i * s + j]
    return filters.numpy()


def test_2d_bandpass_packets_fill_one_half_plane_at_J2():
    J, size = 2, 64
    info = dtcwpt_packet_info(J)
    spectra = np.abs(np.fft.fft2(_impulse_responses(J, size))) ** 2
    w = 2 * np.pi * np.fft.fftfreq(size)
    wy, wx = np.meshgrid(w, w, indexing="ij")  # axis 0 = height (y), axis 1 = width (x)
    # The transform is a convolution sum_m x[m] w[sn - m]: its frequency response is the DFT of w.
    inner = wx[None] * info["xi_x"][:, None, None] + wy[None] * info["xi_y"][:, None, None]
    fraction = (spectra * (inner > 0)).sum(axis=(1, 2)) / spectra.sum(axis=(1, 2))
    bandpass = info["is_bandpass"]
    assert bandpass.sum() == 8
    assert fraction[bandpass].min() >= 0.995, fraction[bandpass]
    assert fraction[~bandpass].min() < 0.95  # the flags are not vacuous
    # each band-pass channel peaks inside its nominal band
    peak = spectra.reshape(spectra.shape[0], -1).argmax(axis=1)
    px, py = wx.ravel()[peak], wy.ravel()[peak]
    half = info["bandwidth"] / 2
    assert np.all(np.abs(px - info["xi_x"])[bandpass] <= half[bandpass] + 2 * np.pi / size)
    assert np.all(np.abs(py - info["xi_y"])[bandpass] <= half[bandpass] + 2 * np.pi / size)


@pytest.mark.parametrize("J", [1, 2, 3, 4])
@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
def test_perfect_reconstruction(J, dtype, tol):
    size = 2**J
    x = torch.randn(2, 3, 2 * size, 3 * size, dtype=dtype, generator=torch.Generator().manual_seed(J))
    z = dtcwpt2d(x, J)
    assert z.shape == (2, 3, 2 * 4**J, 2, 3)
    assert z.dtype == (torch.complex128 if dtype == torch.float64 else torch.complex64)
    back = idtcwpt2d(z, J)
    assert back.dtype == dtype
    assert float((back - x).norm() / x.norm()) <= tol
    assert float(z.abs().pow(2).sum() / x.pow(2).sum()) == pytest.approx(1.0, abs=tol * 10)


def test_odd_or_indivisible_sizes_are_refused_clearly():
    with pytest.raises(ValueError, match=r"divisible by 2\*\*J = 4.*\(15, 16\).*Pad the images to \(16, 16\)"):
        dtcwpt2d(torch.zeros(1, 15, 16), 2)
    with pytest.raises(ValueError, match="J"):
        dtcwpt2d(torch.zeros(1, 16, 16), 0)
    with pytest.raises(TypeError, match="float32 or float64"):
        dtcwpt2d(torch.zeros(1, 16, 16, dtype=torch.int64), 2)
    with pytest.raises(ValueError, match="128"):
        idtcwpt2d(torch.zeros(1, 32, 4, 4, dtype=torch.complex64), 3)


@pytest.mark.parametrize("J", [1, 2, 3])
def test_fast_path_agrees_with_cascade(J):
    x = torch.randn(3, 16, 24, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    reference = cascade_dtcwpt2d(x, J)
    fast = dtcwpt2d(x, J)
    assert torch.allclose(fast, reference, atol=1e-12, rtol=0)
    fast32 = dtcwpt2d(x.float(), J)
    assert torch.allclose(fast32, reference.to(torch.complex64), atol=1e-5, rtol=0)


def test_oversampled_output_contains_the_decimated_one():
    x = torch.randn(2, 32, 32, dtype=torch.float64)
    dense = dtcwpt2d(x, 3, oversample=True)
    assert dense.shape[-2:] == (8, 8)
    assert torch.allclose(dense[..., ::2, ::2], dtcwpt2d(x, 3), atol=1e-12)


def test_circular_shift_by_the_stride_shifts_the_coefficients():
    x = torch.randn(1, 32, 32, dtype=torch.float64)
    z = dtcwpt2d(x, 2)
    shifted = dtcwpt2d(torch.roll(x, shifts=(4, 8), dims=(-2, -1)), 2)
    assert torch.allclose(shifted, torch.roll(z, shifts=(1, 2), dims=(-2, -1)), atol=1e-12)


def test_gradcheck_forward_and_inverse():
    x = torch.randn(1, 8, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: dtcwpt2d(t, 2), (x,))
    assert torch.autograd.gradcheck(lambda t: dtcwpt_pool(t, 1, "max"), (x,))
    z = dtcwpt2d(x.detach(), 2).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: idtcwpt2d(t, 2), (z,))


def test_modules_and_pooled_paths():
    x = torch.randn(2, 3, 16, 16)
    z = DTCWPT2d(J=2)(x)
    assert z.shape == (2, 96, 4, 4) and z.is_complex()
    assert torch.allclose(IDTCWPT2d(J=2, n_channels=3)(z), x, atol=1e-5)
    modulus = dtcwpt_pool(x, 2, "modulus")
    assert torch.allclose(modulus, dtcwpt2d(x, 2).abs())
    assert torch.allclose(dtcwpt_pool(x, 2, "real"), dtcwpt2d(x, 2).real)
    pooled = dtcwpt_pool(x, 2, "max")
    real = dtcwpt2d(x, 2, oversample=True).real
    # output (i, j) is the max over the 3 x 3 grid centred at (2i, 2j) of the stride-m real map
    i, j = 2, 1
    block = real[..., 2 * i - 1 : 2 * i + 2, 2 * j - 1 : 2 * j + 2].amax(dim=(-2, -1))
    assert torch.equal(pooled[..., i, j], block)
    with pytest.raises(ValueError, match="pooling"):
        dtcwpt_pool(x, 2, "avg")


def test_packet_info_and_selection():
    info = dtcwpt_packet_info(3)
    assert info["xi_x"].shape == (128,)
    assert info["is_lowpass"].sum() == 2
    assert (info["is_lowpass"] | info["is_boundary"] | info["is_bandpass"]).all()
    assert info["is_bandpass"].sum() == 2 * 6 * 6
    assert np.all(np.abs(info["orientation"]) < np.pi / 2)
    assert select_packets(3, "no_lowpass").size == 126
    assert select_packets(2, [3, 1, 3]).tolist() == [1, 3]
    with pytest.raises(ValueError, match="no channel"):
        select_packets(1, "bandpass")
    with pytest.raises(ValueError, match=r"\[0, 32\)"):
        select_packets(2, [40])


@pytest.mark.gpu
def test_cuda_matches_cpu():
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    z = dtcwpt2d(x.cuda(), 3)
    assert torch.allclose(z.cpu(), dtcwpt2d(x, 3), atol=1e-10)
    assert torch.allclose(idtcwpt2d(z, 3).cpu(), x, atol=1e-10)
    assert torch.allclose(dtcwpt_pool(x.cuda(), 3, "max").cpu(), dtcwpt_pool(x, 3, "max"), atol=1e-10)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_parts_are_the_real_and_imaginary_parts_written_where_asked(dtype):
    x = torch.randn(2, 3, 16, 16, dtype=dtype)
    z = dtcwpt2d(x, 2)
    parts = dtcwpt2d_parts(x, 2)
    assert parts.shape == (2, 3, 32, 2, 4, 4) and parts.is_contiguous()
    assert torch.equal(parts[:, :, :, 0], z.real) and torch.equal(parts[:, :, :, 1], z.imag)
    rows = torch.empty(2, 3 * 32 * 2 * 16, dtype=torch.float32)  # e.g. rows of an output array
    written = dtcwpt2d_parts(x, 2, out=rows)
    assert written.data_ptr() == rows.data_ptr()
    torch.testing.assert_close(rows.view_as(parts), parts.float(), rtol=0, atol=0)
    with pytest.raises(ValueError, match="contiguous tensor of 6144 elements"):
        dtcwpt2d_parts(x, 2, out=rows[:, :-1])
    with pytest.raises(ValueError, match="contiguous"):
        dtcwpt2d_parts(x, 2, out=torch.empty(16, 2 * 3 * 32 * 2).T)


def test_parts_are_differentiable_without_out():
    x = torch.randn(1, 8, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: dtcwpt2d_parts(t, 1), (x,))
    with pytest.raises(RuntimeError, match="not differentiable"):
        dtcwpt2d_parts(x, 1, out=torch.empty(1, 8, 2, 4, 4, dtype=torch.float64))
