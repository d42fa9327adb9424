"""Saved tensors kept as recipes (skphase.nn._recompute): the scattering block's gradients are those of
the block that keeps every activation, in float64 and under gradcheck; the projection's input rows and
real matrix are freed after the forward; a recipe whose inputs changed in place refuses to run."""

import contextlib
import gc
import weakref

import pytest
import torch
from torch.utils.checkpoint import checkpoint

from skphase.nn import NONLINEARITIES, VARIANTS, ScatteringBlock
from skphase.nn import _scattering_block, _standardized_projection
from skphase.nn._recompute import saved_as_recomputation, will_be_recomputed


def _block(nonlinearity="modulus", variant="lscat+skip"):
    block = ScatteringBlock(3, 4, nonlinearity=nonlinearity, variant=variant, complex_input=True,
                            generator=torch.Generator().manual_seed(0))
    return block.double()


def _input(seed=1):
    return torch.randn(2, 8, 8, 6, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _loss(block, x):
    # Not the plain sum of N's output: its squares sum to a constant per pixel.
    weights = torch.randn(2, 4, 4, 8, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    return (block(x) * weights).sum()


def _keep_every_activation(monkeypatch):
    keep = lambda *args, **kwargs: contextlib.nullcontext()
    monkeypatch.setattr(_scattering_block, "saved_as_recomputation", keep)
    monkeypatch.setattr(_standardized_projection, "saved_as_recomputation", keep)


def _gradients(block, x, **grad_kwargs):
    x = x.clone().requires_grad_()
    return torch.autograd.grad(_loss(block, x), [x, *block.parameters()], **grad_kwargs)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("nonlinearity", NONLINEARITIES)
def test_block_gradients_equal_those_of_the_block_keeping_every_activation(nonlinearity, variant, monkeypatch):
    block, x = _block(nonlinearity, variant), _input()
    recomputed = _gradients(block, x)
    _keep_every_activation(monkeypatch)
    kept = _gradients(block, x)
    for got, expected in zip(recomputed, kept, strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("nonlinearity, variant", [("modulus", "lscat"), ("soft_threshold", "lscat+skip")])
def test_block_gradcheck_float64(nonlinearity, variant):
    block = _block(nonlinearity, variant)
    names = [name for name, _ in block.named_parameters()]

    def output(x, *parameters):
        return torch.func.functional_call(block, dict(zip(names, parameters)), (x,))

    inputs = (_input().requires_grad_(), *(p.detach().clone().requires_grad_() for p in block.parameters()))
    assert torch.autograd.gradcheck(output, inputs)


def _alive_after_forward(monkeypatch, name, owner, attribute):
    """Whether the tensor a block's forward gets from ``owner.attribute`` outlives the forward."""
    block, seen = _block(), []
    original = getattr(owner, attribute)

    def spy(*args, **kwargs):
        tensor = original(*args, **kwargs)
        seen.append(weakref.ref(tensor))
        return tensor

    monkeypatch.setattr(owner, attribute, spy)
    out = block(_input().requires_grad_())
    gc.collect()
    alive = seen[0]() is not None
    out.sum().backward()  # the recipes still work after the tensors are gone
    return alive


@pytest.mark.parametrize("keep", [False, True])
def test_projection_input_and_matrix_are_freed_after_the_forward(keep, monkeypatch):
    if keep:  # the same check sees them alive when they are kept
        _keep_every_activation(monkeypatch)
    rows_alive = _alive_after_forward(monkeypatch, "rows", ScatteringBlock, "_feature_rows")
    matrix_alive = _alive_after_forward(
        monkeypatch, "matrix", _standardized_projection.ComplexProjection, "real_matrix"
    )
    assert rows_alive is keep and matrix_alive is keep


def test_a_parameter_changed_in_place_before_backward_raises():
    block = _block("soft_threshold")
    loss = _loss(block, _input().requires_grad_())
    with torch.no_grad():
        block.rho.threshold.add_(0.1)  # as optimizer.step() before loss.backward()
    with pytest.raises(RuntimeError, match="modified in place"):
        loss.backward()


def test_two_backwards_of_a_retained_graph_agree():
    # The backward overwrites the rebuilt rows with their gradient: each backward rebuilds them afresh.
    block, x = _block(), _input().requires_grad_()
    loss = _loss(block, x)
    first = torch.autograd.grad(loss, x, retain_graph=True)[0]
    second = torch.autograd.grad(loss, x)[0]
    torch.testing.assert_close(first, second, rtol=0, atol=0)


def test_second_derivatives_equal_those_of_the_block_keeping_every_activation(monkeypatch):
    block, x = _block("soft_threshold"), _input()

    def gradient_of_gradient_norm():
        inputs = x.clone().requires_grad_()
        (gradient,) = torch.autograd.grad(_loss(block, inputs), inputs, create_graph=True)
        return torch.autograd.grad(gradient.square().sum(), inputs)[0]

    recomputed = gradient_of_gradient_norm()
    _keep_every_activation(monkeypatch)
    torch.testing.assert_close(recomputed, gradient_of_gradient_norm(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("use_reentrant", [False, True])
def test_block_under_activation_checkpointing(use_reentrant):
    block, x = _block(), _input().requires_grad_()
    expected = torch.autograd.grad(_loss(block, x), x)[0]
    weights = torch.randn(2, 4, 4, 8, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    (checkpoint(block, x, use_reentrant=use_reentrant) * weights).sum().backward()  # reentrant: no .grad()
    torch.testing.assert_close(x.grad, expected, rtol=0, atol=0)


def test_nested_recipes_are_both_used_and_forgotten_on_exit():
    a, b = torch.randn(5, requires_grad=True), torch.randn(5, requires_grad=True)
    calls = []
    outer, inner = a * 2, b * 3
    with saved_as_recomputation(outer, lambda: (calls.append("outer"), a.detach() * 2)[1], (a,)):
        with saved_as_recomputation(inner, lambda: (calls.append("inner"), b.detach() * 3)[1], (b,)):
            assert will_be_recomputed(outer) and will_be_recomputed(inner)
            loss = (outer * inner).sum()  # mul saves both factors
        assert will_be_recomputed(outer) and not will_be_recomputed(inner)
    assert not will_be_recomputed(outer)
    loss.backward()
    assert sorted(calls) == ["inner", "outer"]
    torch.testing.assert_close(a.grad, 2 * inner.detach())
    torch.testing.assert_close(b.grad, 3 * outer.detach())


def test_nothing_is_registered_without_grad_mode():
    tensor = torch.randn(3)
    with torch.no_grad(), saved_as_recomputation(tensor, tensor.clone):
        assert not will_be_recomputed(tensor)
