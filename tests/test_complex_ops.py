"""Non-linearities and complex building blocks, with float64 gradient checks."""

import numpy as np
import pytest
import torch

from skphase.nn import NONLINEARITIES, ComplexNonlinearity, ComplexProjection, ComplexStandardization, safe_modulus
from skphase.nn import WaveletFilter
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
    re, im, real = (3 + 2 * torch.randn(500, 2, generator=generator, dtype=torch.float64) for _ in range(3))
    out = std([re, im, real[:, :1]])
    z = torch.complex(out[:, :2], out[:, 2:4])
    torch.testing.assert_close(z.mean(0).abs(), torch.zeros(2, dtype=torch.float64), atol=1e-10, rtol=0)
    torch.testing.assert_close((z.abs() ** 2).mean(0), torch.ones(2, dtype=torch.float64), atol=1e-3, rtol=0)
    torch.testing.assert_close(out[:, 4].var(unbiased=False), torch.tensor(1.0, dtype=torch.float64), atol=1e-3, rtol=0)
    std.eval()
    single = std([re[:1], im[:1], real[:1, :1]])
    assert single.shape == (1, 5) and torch.isfinite(single).all()


@pytest.mark.parametrize("complex_input", [False, True])
def test_wavelet_filter_equals_complex_convolution(complex_input):
    torch.manual_seed(0)
    L = 4
    layer = WaveletFilter(L, "standard", complex_input).double()
    channels = 2 if complex_input else 1
    x = torch.randn(2, 12, 12, 2 * channels if complex_input else channels, dtype=torch.float64)
    re, im = layer(x)
    filters, _ = block_filter_bank(L, "standard")
    radius = filters.shape[-1] // 2
    signal = torch.complex(x[..., :channels], x[..., channels:]) if complex_input else x.to(torch.complex128)
    signal = signal.permute(0, 3, 1, 2)
    padded = torch.nn.functional.pad(signal.real, (radius,) * 4, mode="reflect") + 1j * \
        torch.nn.functional.pad(signal.imag, (radius,) * 4, mode="reflect")
    kernel = torch.tensor(filters, dtype=torch.complex128)
    # Direct complex correlation, the same convention as conv2d.
    windows = padded.unfold(2, 2 * radius + 1, 2).unfold(3, 2 * radius + 1, 2)  # n, C, 6, 6, k, k
    expected = torch.einsum("ncijab,fab->nijcf", windows, kernel)
    torch.testing.assert_close(re, expected.real)
    torch.testing.assert_close(im, expected.imag)
