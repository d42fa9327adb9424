"""W: the wavelet filtering and subsampling of a block, each of its paths against a complex
convolution, gradient checks, padding of tiny maps."""

import pickle

import pytest
import torch

from _scattering_helpers import FILTER_PATHS, force_path
from skphase.filters import block_filter_bank
from skphase.nn import WaveletFilter


@pytest.mark.parametrize("path", FILTER_PATHS)
@pytest.mark.parametrize("kind, size", [("standard", 12), ("standard", 11), ("factorized_first", 10)])
@pytest.mark.parametrize("complex_input", [False, True])
def test_wavelet_filter_equals_complex_convolution(complex_input, kind, size, path):
    torch.manual_seed(0)
    L = 4
    layer = force_path(WaveletFilter(L, kind, complex_input).double(), path)
    channels = 2 if complex_input else 1
    x = torch.randn(2, size, size + 1, 2 * channels if complex_input else channels, dtype=torch.float64)
    re, im = layer(x)
    filters, _ = block_filter_bank(L, kind)
    radius = filters.shape[-1] // 2
    signal = torch.complex(x[..., :channels], x[..., channels:]) if complex_input else x.to(torch.complex128)
    signal = signal.permute(0, 3, 1, 2)
    padded = torch.nn.functional.pad(signal.real, (radius,) * 4, mode="reflect") + 1j * \
        torch.nn.functional.pad(signal.imag, (radius,) * 4, mode="reflect")
    kernel = torch.tensor(filters, dtype=torch.complex128)
    # Direct complex correlation, the same convention as conv2d.
    windows = padded.unfold(2, 2 * radius + 1, layer.stride).unfold(3, 2 * radius + 1, layer.stride)
    expected = torch.einsum("ncijab,fab->nijfc", windows, kernel)
    assert re.shape[1:3] == (layer.output_size(size), layer.output_size(size + 1))
    torch.testing.assert_close(re, expected.real)
    torch.testing.assert_close(im, expected.imag)


@pytest.mark.parametrize("path", FILTER_PATHS)
def test_wavelet_filter_gradcheck(path):
    layer = force_path(WaveletFilter(2, "standard", True).double(), path)
    x = torch.randn(1, 5, 6, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: layer(t), (x,))


def test_wavelet_filter_picks_dense_matrices_for_small_maps():
    layer = WaveletFilter(4, "standard", True)
    assert layer._path(8, 8, 64) == "dense" and layer._path(64, 64, 64) != "dense"
    x = torch.randn(2, 8, 8, 6)
    layer(x)
    assert len(layer._matrix_cache) == 1
    clone = pickle.loads(pickle.dumps(layer))  # derived matrices are not pickled
    assert clone._matrix_cache == {}
    torch.testing.assert_close(clone(x)[0], layer(x)[0])


def test_tiny_maps_use_replicate_padding():
    layer = WaveletFilter(4, "standard", False)
    re, im = layer(torch.randn(3, 1, 2, 1))
    assert re.shape == (3, 1, 1, 5, 1) and torch.isfinite(re).all()


def test_bank_columns_have_the_low_joint_rank_the_separable_path_relies_on():
    # Few orientations: the real and imaginary filters share fewer column profiles than taps.
    for kind, k, rank in [("standard", 7, 5), ("factorized_first", 7, 6), ("factorized_second", 9, 6)]:
        layer = WaveletFilter(4, kind)
        assert layer.bank.shape[-1] == k and layer._column_basis.shape == (k, rank)
    assert WaveletFilter(8)._column_basis.shape[1] == WaveletFilter(8).bank.shape[-1]  # full rank


@pytest.mark.parametrize("size, channels, path", [(32, 64, "separable"), (16, 128, "separable"), (8, 512, "dense"),
                                                  (32, 3, "toeplitz")])
def test_cifar_block_shapes_take_the_cheapest_path(size, channels, path):
    layer = WaveletFilter(4, "factorized_second" if size == 32 else "factorized_first")
    assert layer._path(size, size, channels) == path
    chosen = layer.multiply_adds(size, size, channels)
    assert chosen == layer.multiply_adds(size, size, channels, path=path)
    if path == "separable":  # fewer multiply-adds than either one-product path
        assert chosen < min(layer.multiply_adds(size, size, path=p) for p in ("dense", "toeplitz"))


def test_separable_path_keeps_no_intermediate_for_the_backward():
    layer = force_path(WaveletFilter(4, "factorized_first"), "separable")
    x = torch.randn(2, 16, 16, 2 * 8, requires_grad=True)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.untyped_storage()) or t, lambda t: t):
        re, im = layer(x)
    # Only (broadcast views of) the two fixed matrices are kept: the column profiles are freed.
    along_columns, along_rows = layer._separable_matrices(16, 16, x.dtype, x.device)
    kept = {storage.data_ptr() for storage in saved}
    assert kept == {along_columns.data_ptr(), along_rows.data_ptr()}
    (re.square().sum() + im.sum()).backward()
    reference = x.detach().clone().requires_grad_()
    re2, im2 = force_path(WaveletFilter(4, "factorized_first"), "dense")(reference)
    (re2.square().sum() + im2.sum()).backward()
    torch.testing.assert_close(x.grad, reference.grad, rtol=1e-4, atol=1e-4)
