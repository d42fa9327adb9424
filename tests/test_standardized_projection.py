"""P (the complex projection) and Std (complex standardisation, its running statistics, train and
eval modes), against plain complex arithmetic and autograd in float64."""

import torch

from _scattering_helpers import rows
from skphase.nn import ComplexProjection, ComplexStandardization


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
    flat = 3 + 2 * rows((500, 5), 0)
    out = std(flat)
    z = torch.complex(out[:, :2], out[:, 2:4])
    torch.testing.assert_close(z.mean(0).abs(), torch.zeros(2, dtype=torch.float64), atol=1e-10, rtol=0)
    torch.testing.assert_close((z.abs() ** 2).mean(0), torch.ones(2, dtype=torch.float64), atol=1e-4, rtol=0)
    torch.testing.assert_close(out[:, 4].var(unbiased=False), torch.tensor(1.0, dtype=torch.float64), atol=1e-4, rtol=0)
    torch.testing.assert_close(std.running_mean, 0.1 * flat.mean(0))
    power = flat.var(0, unbiased=False)
    torch.testing.assert_close(std.running_var, 0.9 + 0.1 * torch.stack([power[0] + power[2], power[1] + power[3], power[4]]))


def _plain_standardization(flat, mean, var, n_complex, eps):
    """``(flat - mean) / sqrt(var + eps)`` per column, by autograd-differentiable torch operations."""
    k = n_complex
    scale = torch.rsqrt(var + eps)
    return (flat - mean) * torch.cat([scale[:k], scale[:k], scale[k:]])


def _plain_batch_statistics(flat, n_complex):
    power, mean = torch.var_mean(flat, dim=0, correction=0)
    k = n_complex
    return mean, torch.cat([power[:k] + power[k:2 * k], power[2 * k:]])


def test_training_projection_equals_plain_autograd():
    # The fused node (batch statistics, standardisation, product) against autograd through var_mean.
    generator = torch.Generator().manual_seed(5)
    proj = ComplexProjection(3, 2, 4, generator=generator).double()
    std = ComplexStandardization(3, 2).double()
    flat = (2 + rows((60, 8), 5)).requires_grad_()
    fused = std(flat, proj)
    mean, var = _plain_batch_statistics(flat, 3)
    plain = _plain_standardization(flat, mean, var, 3, std.eps) @ proj.real_matrix().T
    torch.testing.assert_close(fused, plain)
    torch.testing.assert_close(std.running_mean, 0.1 * mean.detach())
    torch.testing.assert_close(std.running_var, 0.9 + 0.1 * var.detach())
    grad_out = rows(fused.shape, 6)
    inputs = [flat, proj.weight_real, proj.weight_imag]
    for fused_grad, plain_grad in zip(torch.autograd.grad(fused, inputs, grad_out),
                                      torch.autograd.grad(plain, inputs, grad_out)):
        torch.testing.assert_close(fused_grad, plain_grad)


def test_eval_projection_folds_the_running_statistics():
    proj = ComplexProjection(2, 1, 3, generator=torch.Generator().manual_seed(0)).double()
    std = ComplexStandardization(2, 1).double().eval()
    std.running_mean.copy_(rows(5, 1))
    std.running_var.copy_(1 + rows(3, 2).abs())
    x = rows((7, 5), 3).requires_grad_()
    standardized = _plain_standardization(x, std.running_mean, std.running_var, 2, std.eps)
    torch.testing.assert_close(std(x), standardized)
    torch.testing.assert_close(std(x, proj), proj(standardized))
    running = std.running_mean.clone()
    std(x, proj).sum().backward()  # eval mode: gradients flow, running statistics stay
    assert torch.isfinite(x.grad).all() and torch.equal(std.running_mean, running)


def test_standardization_alone_gradcheck():
    std = ComplexStandardization(2, 3).double()
    assert torch.autograd.gradcheck(std, (rows((12, 7), 8).requires_grad_(),))
