"""Saved tensors kept as recipes (skphase.nn._recompute): the scattering block's gradients are those of
the block that keeps every activation, in float64, under gradcheck and under autocast; the filtering's
output, the projection's input rows and its real matrix are freed after the forward, and the filtering
runs once more per backward; a recipe whose inputs changed in place refuses to run."""

import contextlib
import gc
import weakref

import pytest
import torch
from torch.utils.checkpoint import checkpoint

from skphase.nn import NONLINEARITIES, VARIANTS, ScatteringBlock, WaveletFilter
from skphase.nn import _scattering_block, _standardized_projection
from skphase.nn._recompute import saved_as_recomputation, saved_views_as_recomputation, will_be_recomputed


def _block(nonlinearity="modulus", variant="lscat+skip", memory_efficient=True):
    block = ScatteringBlock(3, 4, nonlinearity=nonlinearity, variant=variant, complex_input=True,
                            generator=torch.Generator().manual_seed(0), memory_efficient=memory_efficient)
    return block.double()


def _input(seed=1):
    return torch.randn(2, 8, 8, 6, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _loss(block, x):
    # Not the plain sum of N's output: its squares sum to a constant per pixel.
    weights = torch.randn(2, 4, 4, 8, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    return (block(x) * weights).sum()


def _keep_every_activation(monkeypatch, block=None):
    keep = lambda *args, **kwargs: contextlib.nullcontext()
    monkeypatch.setattr(_scattering_block, "saved_as_recomputation", keep)
    monkeypatch.setattr(_standardized_projection, "saved_as_recomputation", keep)
    if block is not None:
        block.memory_efficient = False


def _gradients(block, x, **grad_kwargs):
    x = x.clone().requires_grad_()
    return torch.autograd.grad(_loss(block, x), [x, *block.parameters()], **grad_kwargs)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("nonlinearity", NONLINEARITIES)
def test_block_gradients_equal_those_of_the_block_keeping_every_activation(nonlinearity, variant, monkeypatch):
    block, x = _block(nonlinearity, variant), _input()
    recomputed = _gradients(block, x)
    _keep_every_activation(monkeypatch, block)
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


def _alive_after_forward(monkeypatch, owner, attribute, *, first=False, memory_efficient=True):
    """Whether what a block's forward gets from ``owner.attribute`` (its first output) outlives the forward."""
    block, seen = _block(memory_efficient=memory_efficient), []
    original = getattr(owner, attribute)

    def spy(*args, **kwargs):
        output = original(*args, **kwargs)
        seen.append(weakref.ref(output[0] if first else output))
        return output

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
    rows_alive = _alive_after_forward(monkeypatch, ScatteringBlock, "_feature_rows", memory_efficient=False)
    matrix_alive = _alive_after_forward(
        monkeypatch, _standardized_projection.ComplexProjection, "real_matrix", memory_efficient=False
    )
    assert rows_alive is keep and matrix_alive is keep


@pytest.mark.parametrize("memory_efficient", [False, True])
def test_memory_efficient_block_frees_the_filtering_output_after_the_forward(memory_efficient, monkeypatch):
    alive = _alive_after_forward(monkeypatch, WaveletFilter, "_filter", first=True, memory_efficient=memory_efficient)
    assert alive is not memory_efficient


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("nonlinearity", ["modulus", "soft_threshold"])
def test_memory_efficient_block_filters_once_more_per_backward(nonlinearity, variant, monkeypatch):
    block, calls = _block(nonlinearity, variant), []
    original = WaveletFilter.forward

    def counted(self, x):
        calls.append(torch.is_grad_enabled())
        return original(self, x)

    monkeypatch.setattr(WaveletFilter, "forward", counted)
    loss = _loss(block, _input().requires_grad_())
    assert calls == [True]
    loss.backward()
    assert calls == [True, False]  # once, without a graph, for the rows and the non-linearity alike


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_memory_efficient_gradients_under_autocast_equal_those_of_the_block_keeping_the_filtering(dtype):
    # The backward rebuilds the filtering in the forward's autocast region: the same low-precision
    # values, so the same gradients to the bit. (Keeping the rows too changes the order of the
    # projection's backward, hence its rounding: compared in the float64 tests above.)
    block = _block().float()
    x = _input().float()

    def gradients():
        with torch.autocast("cpu", dtype=dtype):
            return _gradients(block, x)

    recomputed = gradients()
    block.memory_efficient = False
    for got, expected in zip(recomputed, gradients(), strict=True):
        torch.testing.assert_close(got, expected, rtol=0, atol=0)


def test_an_input_changed_in_place_before_backward_raises():
    block, x = _block(), _input().requires_grad_()
    inputs = x * 1.0  # a non-leaf the caller may overwrite
    loss = _loss(block, inputs)
    with torch.no_grad():
        inputs.add_(1.0)
    with pytest.raises(RuntimeError, match="modified in place"):
        loss.backward()


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
    _keep_every_activation(monkeypatch, block)
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


def test_saved_views_share_one_rebuilt_copy_freed_after_the_backward():
    a = torch.randn(4, 6, requires_grad=True)
    calls, rebuilt = [], []

    def recompute():
        calls.append(1)
        out = (a.detach() * 2).unbind(0)
        rebuilt.append(weakref.ref(out[0]))
        return out

    def forward():  # returns the loss alone, as a block's forward its output
        parts = (a * 2).unbind(0)  # four views of one buffer
        with saved_views_as_recomputation(parts, recompute, (a,)) as filtered:
            squares = [part[1:4] * part[1:4] for part in parts]  # mul saves views at offsets
            with saved_as_recomputation(squares[0], lambda: filtered()[0][1:4].square(), (a,)):
                return sum((square * square).sum() for square in squares)

    loss = forward()
    gc.collect()
    assert not calls
    loss.backward()
    assert len(calls) == 1
    gc.collect()
    assert rebuilt[0]() is None  # nothing holds the copy once the backward is done
    expected = torch.zeros_like(a)
    expected[:, 1:4] = 64 * a.detach()[:, 1:4] ** 3  # d/da (2a)^4
    torch.testing.assert_close(a.grad, expected)


def test_saved_views_of_a_retained_graph_agree_across_backwards():
    a = torch.randn(5, requires_grad=True)
    doubled = a * 2
    with saved_views_as_recomputation((doubled,), lambda: (a.detach() * 2,), (a,)):
        loss = (doubled[1:] * doubled[1:]).sum()
    first = torch.autograd.grad(loss, a, retain_graph=True)[0]
    second = torch.autograd.grad(loss, a)[0]
    torch.testing.assert_close(first, second, rtol=0, atol=0)
    torch.testing.assert_close(first, torch.cat([torch.zeros(1), 8 * a.detach()[1:]]))
