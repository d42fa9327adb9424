"""The scattering block N(P(Std(rho(W x)))) against plain complex arithmetic, and as a torch module
(defaults, layout errors). Its parts have their own files: test_wavelet_filter.py,
test_standardized_projection.py, test_fused_ops.py."""

import pytest
import torch

from _scattering_helpers import FILTER_PATHS, force_path
from skphase.filters import block_filter_bank
from skphase.nn import PhaseCollapseNet, ScatteringBlock


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
    torch.manual_seed(0)
    block = ScatteringBlock(2, 3, L=4, kind="standard", nonlinearity=kind, variant=variant,
                            complex_input=complex_input, generator=torch.Generator().manual_seed(1)).double()
    force_path(block.wavelets, path)
    x = torch.randn(4, 10, 10, 4 if complex_input else 2, dtype=torch.float64)
    torch.testing.assert_close(block(x), _reference_block(block, x, 4, complex_input))


def test_block_defaults_take_channels_last_images():
    block = ScatteringBlock(3, 8)
    assert (block.L, block.variant, block.rho.kind, block.wavelets.complex_input) == (4, "lscat+skip", "modulus", False)
    out = block(torch.rand(2, 12, 12, 3))
    assert out.shape == (2, 6, 6, 16) and out.dtype == torch.float32
    torch.testing.assert_close(out.square().sum(-1), torch.ones(2, 6, 6), atol=1e-4, rtol=0)


@pytest.mark.parametrize("complex_input, shape, message", [
    (False, (2, 3, 12, 12), r"\(n, H, W, 3\); got shape \(2, 3, 12, 12\)\. The input looks channels-first"),
    (False, (2, 12, 12, 4), r"channels-last images \(n, H, W, in_channels\), i\.e\. \(n, H, W, 3\)"),
    (False, (12, 12, 3), r"got shape \(12, 12, 3\)\.$"),
    (True, (2, 6, 12, 12), r"imaginary parts, i\.e\. \(n, H, W, 6\).*channels-first"),
    (True, (2, 12, 12, 3), r"2 \* in_channels"),
])
def test_block_names_the_expected_layout(complex_input, shape, message):
    block = ScatteringBlock(3, 4, complex_input=complex_input)
    with pytest.raises(ValueError, match=message):
        block(torch.zeros(shape))


def test_block_points_complex_tensors_to_real_pairs():
    block = ScatteringBlock(3, 4, complex_input=True)
    with pytest.raises(ValueError, match=r"torch\.cat\(\[x\.real, x\.imag\], dim=-1\)"):
        block(torch.zeros(2, 12, 12, 6, dtype=torch.complex64))


def test_network_names_the_channels_first_layout():
    net = PhaseCollapseNet(3, (16, 16), (4,), 10)
    with pytest.raises(ValueError, match=r"\(n, 3, H, W\).*images\.permute\(0, 3, 1, 2\)"):
        net(torch.zeros(2, 16, 16, 3))
    with pytest.raises(ValueError, match=r"image_size"):
        net(torch.zeros(2, 3, 32, 32))


@pytest.mark.parametrize("variant, nonlinearity, factorized", [
    ("lscat", "modulus", True), ("lscat+skip", "soft_threshold", False), ("lscat+skip", "sigmoid", True),
])
def test_the_training_forward_traces_as_one_graph_for_torch_compile(variant, nonlinearity, factorized):
    # A graph break would leave the element-wise passes around it unfused (ScatteringPhaseCollapse(compile=True)).
    net = PhaseCollapseNet(3, (16, 16), (64, 8), 10, variant=variant, nonlinearity=nonlinearity,
                           factorized=factorized, memory_efficient=True).train()
    explanation = torch._dynamo.explain(net)(torch.randn(4, 3, 16, 16))
    assert explanation.graph_break_count == 0, [reason.reason for reason in explanation.break_reasons]
    assert explanation.graph_count == 1


@pytest.mark.parametrize("factorized", [False, True])
def test_compiled_training_steps_trace_once(factorized):
    # The filtering's matrices, cached after the first call, must not make the second one trace (and,
    # under inductor, compile) the network again. Dynamo's "eager" backend guards alike, without a compiler.
    net = PhaseCollapseNet(3, (16, 16), (8, 16), 10, variant="lscat+skip", factorized=factorized).train()
    compiled = torch.compile(net, backend="eager", dynamic=False)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    images, labels = torch.randn(4, 3, 16, 16), torch.tensor([0, 1, 2, 3])
    torch._dynamo.reset()
    with torch._dynamo.config.patch(error_on_recompile=True):
        for _ in range(3):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(compiled(images), labels).backward()
            optimizer.step()
