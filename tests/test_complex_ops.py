"""Complex non-linearities and the safe modulus, with float64 gradient checks."""

import pytest
import torch

from skphase.nn import NONLINEARITIES, ComplexNonlinearity, safe_modulus


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
