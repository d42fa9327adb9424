"""The fused kernels of the scattering block: column statistics, the standardised projection's
autograd node, the unit norm N; float64 gradient checks."""

import pytest
import torch

from _scattering_helpers import rows
from skphase.nn import _fused_ops
from skphase.nn._fused_ops import _column_statistics, _StandardizedProjection, unit_norm


def test_column_statistics_match_var_mean_under_a_large_mean():
    # A large mean against the spread: the two-pass statistics must not lose the variance.
    flat = rows((400, 6), 3, offset=1e3)
    power, mean = _column_statistics(flat)
    expected_power, expected_mean = torch.var_mean(flat, dim=0, correction=0)
    torch.testing.assert_close(mean, expected_mean, rtol=1e-12, atol=0)
    torch.testing.assert_close(power, expected_power, rtol=1e-9, atol=0)
    flat32 = rows((20000, 3), 4, offset=100).float()
    power32, _ = _column_statistics(flat32)
    expected32, _ = torch.var_mean(flat32.double(), dim=0, correction=0)
    torch.testing.assert_close(power32.double(), expected32, rtol=1e-4, atol=0)


def test_column_statistics_centre_a_chunk_of_rows_at_a_time(monkeypatch):
    # Chunks that do not divide the rows: the statistics and the kept centred input are the whole's.
    monkeypatch.setattr(_fused_ops, "CENTRED_CHUNK_ELEMENTS", 3 * 7)
    flat = rows((50, 7), 8, offset=5.0)
    power, mean, centred = _column_statistics(flat, centred_dtype=torch.float32)
    expected_power, expected_mean = torch.var_mean(flat, dim=0, correction=0)
    torch.testing.assert_close(mean, expected_mean, rtol=1e-12, atol=0)
    torch.testing.assert_close(power, expected_power, rtol=1e-12, atol=0)
    torch.testing.assert_close(centred, (flat - expected_mean).float(), rtol=0, atol=1e-6)


@pytest.mark.parametrize("product", ["convolution", "matrix"])
def test_standardized_projection_gradcheck(product, monkeypatch):
    # Both paths on whatever CPU runs the test: matrix products (the GPU's path) or oneDNN's.
    devices = () if product == "matrix" else ("cpu",)
    monkeypatch.setattr(_fused_ops, "CONVOLUTION_DEVICES", devices)
    flat = (1 + rows((10, 7), 6)).requires_grad_()
    matrix = rows((4, 7), 7).requires_grad_()
    assert torch.autograd.gradcheck(lambda f, m: _StandardizedProjection.apply(f, m, 2, 1e-5, f.dtype)[0], (flat, matrix))
    # the weights alone (the first block's input needs no gradient)
    assert torch.autograd.gradcheck(lambda m: _StandardizedProjection.apply(flat.detach(), m, 2, 1e-5, flat.dtype)[0], (matrix,))


def test_unit_norm_matches_formula_and_gradcheck():
    z = torch.randn(3, 4, 6, dtype=torch.float64, requires_grad=True)
    torch.testing.assert_close(unit_norm(z, 1e-5), z / torch.sqrt(1e-5 + (z**2).sum(-1, keepdim=True)))
    assert torch.autograd.gradcheck(lambda t: unit_norm(t, 1e-5), (z,))
    zero = torch.zeros(2, 3, dtype=torch.float64, requires_grad=True)
    unit_norm(zero, 1e-5).sum().backward()
    assert torch.isfinite(zero.grad).all()
