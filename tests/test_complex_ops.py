"""Non-linearities and complex building blocks, with float64 gradient checks."""

import pickle

import pytest
import torch

from skphase.nn import NONLINEARITIES, ComplexNonlinearity, ComplexProjection, ComplexStandardization, safe_modulus
from skphase.nn import WaveletFilter
from skphase.nn._scattering_block import column_moments, standardized_projection
from skphase.filters import block_filter_bank


def _complex_input(shape=(3, 5), seed=0):
    generator = torch.Generator().manual_seed(seed)
    re = torch.randn(shape, generator=generator, dtype=torch.float64, requires_grad=True)
    im = torch.randn(shape, generator=generator, dtype=torch.float64, requires_grad=True)
    return re, im


def test_safe_modulus_gradcheck_and_zero():
    re, im = _complex_input()
    assert torch.autograd.gradcheck(safe_modulus, (re, im))
    zero = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    safe_modulus(zero, zero.clone()).sum().backward()
    assert torch.equal(zero.grad, torch.zeros(2, dtype=torch.float64))


@pytest.mark.parametrize("kind", NONLINEARITIES)
def test_nonlinearity_gradcheck(kind):
    layer = ComplexNonlinearity(kind, 5).double()
    re, im = _complex_input()
    assert torch.autograd.gradcheck(lambda a, b: layer(a, b), (re, im))


@pytest.mark.parametrize("kind", NONLINEARITIES)
def test_nonlinearity_finite_gradient_at_zero(kind):
    layer = ComplexNonlinearity(kind, 2).double()
    re = torch.zeros(1, 2, dtype=torch.float64, requires_grad=True)
    im = torch.zeros(1, 2, dtype=torch.float64, requires_grad=True)
    out = layer(re, im)
    total = out.sum() if torch.is_tensor(out) else out[0].sum() + out[1].sum()
    total.backward()
    assert torch.isfinite(re.grad).all() and torch.isfinite(im.grad).all()


def test_nonlinearities_against_complex_formulas():
    re, im = _complex_input((4, 3), seed=1)
    z = torch.complex(re.detach(), im.detach())
    modulus = z.abs()
    expected = {
        "modulus": modulus,
        "soft_threshold": torch.relu(1 - 0.1 / modulus) * z,
        "modulus_collapse": z / modulus,
        "sigmoid": torch.sigmoid(modulus) * z / modulus,  # gain 1, bias 0 at initialisation
        "tanh": torch.tanh(modulus) * z / modulus,
        "relu": torch.complex(torch.relu(z.real), torch.relu(z.imag)),
        "identity": z,
    }
    for kind, target in expected.items():
        out = ComplexNonlinearity(kind, 3).double()(re.detach(), im.detach())
        if not torch.is_tensor(out):
            out = torch.complex(*out)
        torch.testing.assert_close(out, target, msg=kind)


def test_only_modulus_collapses_to_real():
    assert [k for k in NONLINEARITIES if ComplexNonlinearity(k, 1).real_output] == ["modulus"]
    with pytest.raises(ValueError, match="nonlinearity must be one of"):
        ComplexNonlinearity("softplus", 1)


def test_projection_equals_complex_matrix_product():
    proj = ComplexProjection(3, 2, 4, generator=torch.Generator().manual_seed(0)).double()
    generator = torch.Generator().manual_seed(1)
    cr, ci, real = (torch.randn(6, n, generator=generator, dtype=torch.float64) for n in (3, 3, 2))
    out = proj(torch.cat([cr, ci, real], dim=1))
    weight = torch.complex(proj.weight_real, proj.weight_imag)
    z = torch.cat([torch.complex(cr, ci), torch.complex(real, torch.zeros_like(real))], dim=1)
    expected = z @ weight.T
    torch.testing.assert_close(out[:, :4], expected.real)
    torch.testing.assert_close(out[:, 4:], expected.imag)


def test_projection_initialisation_is_semi_unitary():
    proj = ComplexProjection(10, 6, 8, generator=torch.Generator().manual_seed(0))
    weight = torch.complex(proj.weight_real, proj.weight_imag).to(torch.complex128)
    torch.testing.assert_close(weight @ weight.conj().T, torch.eye(8, dtype=torch.complex128), atol=1e-5, rtol=0)


def test_standardization_uses_complex_variance_and_running_stats():
    std = ComplexStandardization(2, 1).double()
    generator = torch.Generator().manual_seed(0)
    flat = 3 + 2 * torch.randn(500, 5, generator=generator, dtype=torch.float64)
    mean, scale = std(flat)
    out = (flat - mean) * scale
    z = torch.complex(out[:, :2], out[:, 2:4])
    torch.testing.assert_close(z.mean(0).abs(), torch.zeros(2, dtype=torch.float64), atol=1e-10, rtol=0)
    torch.testing.assert_close((z.abs() ** 2).mean(0), torch.ones(2, dtype=torch.float64), atol=1e-4, rtol=0)
    torch.testing.assert_close(out[:, 4].var(unbiased=False), torch.tensor(1.0, dtype=torch.float64), atol=1e-4, rtol=0)
    torch.testing.assert_close(std.running_mean, 0.1 * flat.mean(0))
    std.eval()
    eval_mean, _ = std(flat[:1])
    torch.testing.assert_close(eval_mean, std.running_mean)


def test_column_moments_match_var_mean_and_gradcheck():
    generator = torch.Generator().manual_seed(3)
    # A large mean against the spread: the two-pass statistics must not lose the variance.
    flat = 1e3 + torch.randn(400, 6, generator=generator, dtype=torch.float64)
    power, mean = column_moments(flat)
    expected_power, expected_mean = torch.var_mean(flat, dim=0, correction=0)
    torch.testing.assert_close(mean, expected_mean, rtol=1e-12, atol=0)
    torch.testing.assert_close(power, expected_power, rtol=1e-9, atol=0)
    small = torch.randn(12, 4, generator=generator, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(column_moments, (small,))
    assert torch.autograd.gradcheck(lambda t: column_moments(t)[0], (small,))  # the mean unused
    assert torch.autograd.gradcheck(lambda t: column_moments(t)[1], (small,))  # the variance unused


def test_column_moments_float32_keep_the_variance_under_a_large_mean():
    generator = torch.Generator().manual_seed(4)
    flat = 100 + torch.randn(20000, 3, generator=generator)
    power, _ = column_moments(flat)
    expected, _ = torch.var_mean(flat.double(), dim=0, correction=0)
    torch.testing.assert_close(power.double(), expected, rtol=1e-4, atol=0)


def test_standardized_projection_equals_the_two_modules_in_training():
    generator = torch.Generator().manual_seed(5)
    proj = ComplexProjection(3, 2, 4, generator=generator).double()
    fused_std, plain_std = ComplexStandardization(3, 2).double(), ComplexStandardization(3, 2).double()
    flat = (2 + torch.randn(60, 8, generator=generator, dtype=torch.float64)).requires_grad_()
    fused = standardized_projection(flat, fused_std, proj)
    plain = proj(flat, *plain_std(flat))
    torch.testing.assert_close(fused, plain)
    torch.testing.assert_close(fused_std.running_mean, plain_std.running_mean)
    torch.testing.assert_close(fused_std.running_var, plain_std.running_var)
    grad_out = torch.randn(fused.shape, generator=generator, dtype=torch.float64)
    inputs = [flat, proj.weight_real, proj.weight_imag]
    for fused_grad, plain_grad in zip(torch.autograd.grad(fused, inputs, grad_out),
                                      torch.autograd.grad(plain, inputs, grad_out)):
        torch.testing.assert_close(fused_grad, plain_grad)


@pytest.mark.parametrize("product", ["convolution", "matrix"])
def test_standardized_projection_gradcheck(product, monkeypatch):
    from skphase.nn import _scattering_block
    from skphase.nn._scattering_block import _StandardizedProjection

    if product == "matrix":  # the GPU's path, run on the CPU
        monkeypatch.setattr(_scattering_block, "CONVOLUTION_DEVICES", ())

    generator = torch.Generator().manual_seed(6)
    flat = (1 + torch.randn(10, 7, generator=generator, dtype=torch.float64)).requires_grad_()
    matrix = torch.randn(4, 7, generator=generator, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda f, m: _StandardizedProjection.apply(f, m, 2, 1e-5, f.dtype)[0], (flat, matrix))
    # the weights alone (the first block's input needs no gradient)
    assert torch.autograd.gradcheck(lambda m: _StandardizedProjection.apply(flat.detach(), m, 2, 1e-5, flat.dtype)[0], (matrix,))


def test_projection_folds_the_standardisation():
    proj = ComplexProjection(2, 1, 3, generator=torch.Generator().manual_seed(0)).double()
    generator = torch.Generator().manual_seed(2)
    x, mean, scale = (torch.randn(shape, generator=generator, dtype=torch.float64) for shape in ((7, 5), (5,), (5,)))
    torch.testing.assert_close(proj(x, mean, scale), proj((x - mean) * scale))


FILTER_PATHS = ["dense", "dense_one_product", "toeplitz"]


def _force_path(layer, path):
    """Make ``layer`` filter with its dense matrices (per image, or one product over the batch)
    or with its Toeplitz rows, whatever the size and the number of channels."""
    layer.DENSE_COST_RATIO = 0.0 if path == "toeplitz" else float("inf")
    layer.MIN_BATCHED_CHANNELS = float("inf") if path == "dense_one_product" else 0
    return layer


@pytest.mark.parametrize("path", FILTER_PATHS)
@pytest.mark.parametrize("kind, size", [("standard", 12), ("standard", 11), ("factorized_first", 10)])
@pytest.mark.parametrize("complex_input", [False, True])
def test_wavelet_filter_equals_complex_convolution(complex_input, kind, size, path):
    torch.manual_seed(0)
    L = 4
    layer = _force_path(WaveletFilter(L, kind, complex_input).double(), path)
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
    layer = _force_path(WaveletFilter(2, "standard", True).double(), path)
    x = torch.randn(1, 5, 6, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: layer(t), (x,))


def test_wavelet_filter_picks_dense_matrices_for_small_maps():
    layer = WaveletFilter(4, "standard", True)
    assert layer._uses_dense(8, 8) and not layer._uses_dense(64, 64)
    x = torch.randn(2, 8, 8, 6)
    layer(x)
    assert len(layer._dense_cache) == 1
    clone = pickle.loads(pickle.dumps(layer))  # derived matrices are not pickled
    assert clone._dense_cache == {}
    torch.testing.assert_close(clone(x)[0], layer(x)[0])


def test_tiny_maps_use_replicate_padding():
    layer = WaveletFilter(4, "standard", False)
    re, im = layer(torch.randn(3, 1, 2, 1))
    assert re.shape == (3, 1, 1, 5, 1) and torch.isfinite(re).all()


def _reference_block(block, x, L, complex_input):
    """One "standard" block in plain complex arithmetic (float64), for comparison."""
    filters, _ = block_filter_bank(L, "standard")
    channels = x.shape[-1] // 2 if complex_input else x.shape[-1]
    signal = torch.complex(x[..., :channels], x[..., channels:]) if complex_input else x.to(torch.complex128)
    signal = signal.permute(0, 3, 1, 2)
    radius = filters.shape[-1] // 2
    pad = lambda t: torch.nn.functional.pad(t, (radius,) * 4, mode="reflect")
    padded = pad(signal.real) + 1j * pad(signal.imag)
    stride = block.wavelets.stride
    windows = padded.unfold(2, 2 * radius + 1, stride).unfold(3, 2 * radius + 1, stride)
    z = torch.einsum("ncijab,fab->nijfc", windows, torch.tensor(filters, dtype=torch.complex128))
    if block.variant == "lscat+skip":
        linear, rho_in = z, z
    else:
        linear, rho_in = z[..., :1, :], z[..., 1:, :]
    rho = rho_in.abs() if block.rho.kind == "modulus" else torch.relu(1 - 0.1 / rho_in.abs()) * rho_in
    feats = torch.cat([linear.flatten(3), rho.flatten(3).to(torch.complex128)], dim=-1)
    mean = feats.mean(dim=(0, 1, 2))
    centred = feats - mean
    power = (centred.abs() ** 2).mean(dim=(0, 1, 2))  # E|z - mu|^2, also for the real modulus channels
    standardised = centred / torch.sqrt(power + block.eps)
    weight = torch.complex(block.proj.weight_real, block.proj.weight_imag)
    out = standardised @ weight.T
    out = out / torch.sqrt((out.abs() ** 2).sum(-1, keepdim=True) + block.eps)
    return torch.cat([out.real, out.imag], dim=-1)


@pytest.mark.parametrize("path", FILTER_PATHS)
@pytest.mark.parametrize("variant", ["lscat", "lscat+skip"])
@pytest.mark.parametrize("kind", ["modulus", "soft_threshold"])
@pytest.mark.parametrize("complex_input", [False, True])
def test_block_equals_plain_complex_arithmetic(variant, kind, complex_input, path):
    from skphase.nn import ScatteringBlock

    torch.manual_seed(0)
    block = ScatteringBlock(2, 3, L=4, kind="standard", nonlinearity=kind, variant=variant,
                            complex_input=complex_input, generator=torch.Generator().manual_seed(1)).double()
    _force_path(block.wavelets, path)
    x = torch.randn(4, 10, 10, 4 if complex_input else 2, dtype=torch.float64)
    torch.testing.assert_close(block(x), _reference_block(block, x, 4, complex_input))


def test_unit_norm_matches_formula_and_gradcheck():
    from skphase.nn._scattering_block import unit_norm

    z = torch.randn(3, 4, 6, dtype=torch.float64, requires_grad=True)
    torch.testing.assert_close(unit_norm(z, 1e-5), z / torch.sqrt(1e-5 + (z**2).sum(-1, keepdim=True)))
    assert torch.autograd.gradcheck(lambda t: unit_norm(t, 1e-5), (z,))
    zero = torch.zeros(2, 3, dtype=torch.float64, requires_grad=True)
    unit_norm(zero, 1e-5).sum().backward()
    assert torch.isfinite(zero.grad).all()
