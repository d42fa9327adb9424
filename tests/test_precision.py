"""Mixed precision in the learned scattering network: low-precision products, float32 statistics."""

import copy

import pytest
import torch
import torch.nn.functional as F

from _scattering_helpers import FILTER_PATHS, force_path
from skphase.nn import NONLINEARITIES, ComplexNonlinearity, ComplexProjection, ComplexStandardization, PhaseCollapseNet
from skphase.nn._complex_ops import safe_modulus
from skphase.nn._fused_ops import _StandardizedProjection, unit_norm
from skphase.utils._precision import (
    active_autocast_dtype,
    autocast,
    check_precision,
    compute_dtype,
    statistics_dtype,
)

BF16 = torch.autocast("cpu", torch.bfloat16)


def _relative_error(value, reference):
    return ((value.double() - reference.double()).norm() / reference.double().norm()).item()


def _network(nonlinearity="modulus", variant="lscat+skip", factorized=False, seed=0):
    return PhaseCollapseNet(1, (16, 16), (8, 16), 10, L=4, nonlinearity=nonlinearity, variant=variant,
                            factorized=factorized, generator=torch.Generator().manual_seed(seed))


def _images(n=12, seed=1):
    # Images in [0, 1], as read from uint8 data scaled by the user: a large mean against the spread.
    return torch.rand(n, 1, 16, 16, generator=torch.Generator().manual_seed(seed))


def _forward(model, images, context):
    state = copy.deepcopy(model.state_dict())  # a training forward moves the running statistics
    with context:
        blocks = model.features(images, all_blocks=True)
        logits = model.classify(blocks[-1])
    model.load_state_dict(state)
    return blocks, logits


def test_precision_helpers():
    x = torch.zeros(3)
    assert active_autocast_dtype("cpu") is None and compute_dtype(x) == torch.float32
    with BF16:
        assert active_autocast_dtype("cpu") == torch.bfloat16
        assert compute_dtype(x) == torch.bfloat16
        assert compute_dtype(x.double()) == torch.float64  # autocast never casts float64
        assert compute_dtype(torch.zeros(3, dtype=torch.int64)) == torch.int64
    assert statistics_dtype(torch.bfloat16) == statistics_dtype(torch.float16) == torch.float32
    assert statistics_dtype(torch.float64) == torch.float64
    with pytest.raises(ValueError, match="needs a CUDA device"):
        check_precision("float16", "cpu")
    with pytest.raises(ValueError, match="precision must be one of"):
        autocast("cpu", "int8")


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("variant, factorized", [("lscat+skip", False), ("lscat", False), ("lscat+skip", True)])
def test_forward_under_autocast_matches_float32(mode, variant, factorized):
    model = _network(variant=variant, factorized=factorized)
    images = _images()
    with torch.no_grad():
        model.train()(_images(seed=2))  # running statistics away from their initial 0 and 1
    model.train(mode == "train")
    reference_blocks, reference_logits = _forward(model, images, torch.autocast("cpu", enabled=False))
    blocks, logits = _forward(model, images, BF16)
    assert logits.dtype == torch.float32 and all(b.dtype == torch.float32 for b in blocks)
    for block, reference in zip(blocks, reference_blocks):
        assert _relative_error(block, reference) < 5e-2
    error = _relative_error(logits, reference_logits)
    assert 1e-5 < error < 5e-2  # the products did run in bfloat16, and stayed accurate


def test_products_run_in_low_precision_and_statistics_in_float32():
    model = _network()
    dtypes = {}

    def record(name):
        def hook(module, inputs, output):
            dtypes[name] = output[0].dtype
        return hook

    model.blocks[0].wavelets.register_forward_hook(record("images"))
    model.blocks[1].wavelets.register_forward_hook(record("wavelets"))
    with BF16:
        model.train()(_images())
    # The images are filtered in float32 (their low-pass has a large mean); later blocks in bfloat16.
    assert dtypes == {"images": torch.float32, "wavelets": torch.bfloat16}
    for block in model.blocks:
        assert block.std.running_mean.dtype == block.std.running_var.dtype == torch.float32


@pytest.mark.parametrize("path", FILTER_PATHS)
def test_wavelet_filter_under_autocast(path):
    from skphase.nn import WaveletFilter

    generator = torch.Generator().manual_seed(3)
    for complex_input in (True, False):
        layer = force_path(WaveletFilter(4, "standard", complex_input), path)
        x = torch.randn(3, 12, 10, 16 if complex_input else 2, generator=generator)
        expected = layer(x)
        with BF16:
            out = layer(x)
        for value, reference in zip(out, expected):
            if complex_input:  # filtered in bfloat16
                assert value.dtype == torch.bfloat16 and 1e-5 < _relative_error(value, reference) < 1e-2
            else:  # the images: float32, as outside autocast
                torch.testing.assert_close(value, reference, rtol=0, atol=0)


def test_training_step_under_autocast_gives_float32_gradients_close_to_float32():
    model = _network()
    low = copy.deepcopy(model)
    images, labels = _images(), torch.arange(12) % 10
    F.cross_entropy(model.train()(images), labels).backward()
    with BF16:
        logits = low.train()(images)
    assert logits.dtype == torch.float32
    F.cross_entropy(logits, labels).backward()
    for (name, parameter), reference in zip(low.named_parameters(), model.parameters()):
        assert parameter.dtype == parameter.grad.dtype == torch.float32, name
        assert torch.isfinite(parameter.grad).all(), name
        assert _relative_error(parameter.grad, reference.grad) < 5e-2, name
    for (name, buffer), reference in zip(low.named_buffers(), model.buffers()):
        if buffer.is_floating_point():
            assert buffer.dtype == torch.float32, name
            torch.testing.assert_close(buffer, reference, rtol=1e-2, atol=1e-3, msg=name)


@pytest.mark.parametrize("kind", NONLINEARITIES)
def test_nonlinearity_on_low_precision_input_is_computed_in_float32(kind):
    layer = ComplexNonlinearity(kind, 4)
    generator = torch.Generator().manual_seed(0)
    re, im = (torch.randn(6, 4, generator=generator).bfloat16() for _ in range(2))
    re[0], im[0] = 0, 0  # z = 0: finite outputs and gradients
    re.requires_grad_(), im.requires_grad_()
    with BF16:
        out = layer(re, im)
    outs = (out,) if torch.is_tensor(out) else out
    expected = layer(re.detach().float(), im.detach().float())
    expected = (expected,) if torch.is_tensor(expected) else expected
    for value, target in zip(outs, expected):
        assert value.dtype == torch.bfloat16
        # The map of the bfloat16 values computed in float32, rounded once.
        torch.testing.assert_close(value, target.to(torch.bfloat16), rtol=0, atol=0)
    sum(o.float().sum() for o in outs).backward()
    assert re.grad.dtype == torch.bfloat16 and torch.isfinite(re.grad).all() and torch.isfinite(im.grad).all()
    for parameter in layer.parameters():
        assert parameter.grad.dtype == torch.float32 and torch.isfinite(parameter.grad).all()


@pytest.mark.parametrize("kind", NONLINEARITIES)
def test_every_nonlinearity_trains_under_autocast(kind):
    model = _network(nonlinearity=kind)
    with BF16:
        logits = model.train()(_images())
    F.cross_entropy(logits, torch.arange(12) % 10).backward()
    assert torch.isfinite(logits).all()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


def test_standardized_projection_centres_low_precision_input_before_the_product():
    # A mean 100 times the spread: folded into the bias of a bfloat16 product it would cancel
    # against rounded products and leave errors of the order of the output.
    generator = torch.Generator().manual_seed(0)
    flat = 100 + torch.randn(500, 6, generator=generator)
    matrix = torch.randn(4, 6, generator=generator)
    reference, mean, var = _StandardizedProjection.apply(flat.double(), matrix.double(), 2, 1e-5, torch.float64)
    for flat_in in (flat, flat.bfloat16()):  # float32 input (the images' block) and bfloat16 input
        out, low_mean, low_var = _StandardizedProjection.apply(flat_in, matrix, 2, 1e-5, torch.bfloat16)
        assert out.dtype == torch.bfloat16 and low_mean.dtype == low_var.dtype == torch.float32
        bound = 2e-2 if flat_in.dtype == torch.float32 else 0.5  # bfloat16 input carries its own rounding
        assert _relative_error(out, reference) < bound
        torch.testing.assert_close(low_mean.double(), mean, rtol=3e-3, atol=0)
    # The same for the projection of eval mode, with the statistics of the batch as running ones.
    projection = ComplexProjection(2, 2, 2, generator=torch.Generator().manual_seed(1))
    standardization = ComplexStandardization(2, 2).eval()
    standardization.running_mean.copy_(mean)
    standardization.running_var.copy_(var)
    reference = standardization.double()(flat.double(), projection.double())
    projection, standardization = projection.float(), standardization.float()
    with BF16:
        out = standardization(flat, projection)
    assert out.dtype == torch.bfloat16 and _relative_error(out, reference) < 2e-2


def test_standardized_projection_low_precision_gradients():
    generator = torch.Generator().manual_seed(1)
    flat = (1 + torch.randn(400, 7, generator=generator)).requires_grad_()
    matrix = torch.randn(4, 7, generator=generator, requires_grad=True)
    grad_out = torch.randn(400, 4, generator=generator)
    flat64, matrix64 = flat.detach().double().requires_grad_(), matrix.detach().double().requires_grad_()
    expected = torch.autograd.grad(_StandardizedProjection.apply(flat64, matrix64, 2, 1e-5, torch.float64)[0],
                                   (flat64, matrix64), grad_out.double())
    out = _StandardizedProjection.apply(flat, matrix, 2, 1e-5, torch.bfloat16)[0]
    grads = torch.autograd.grad(out, (flat, matrix), grad_out.bfloat16())
    assert grads[0].dtype == grads[1].dtype == torch.float32
    for grad, reference in zip(grads, expected):
        assert _relative_error(grad, reference) < 2e-2


def test_custom_functions_keep_float64_inside_autocast():
    generator = torch.Generator().manual_seed(2)
    flat = (1 + torch.randn(10, 7, generator=generator, dtype=torch.float64)).requires_grad_()
    matrix = torch.randn(4, 7, generator=generator, dtype=torch.float64, requires_grad=True)
    z = torch.randn(3, 4, 6, generator=generator, dtype=torch.float64, requires_grad=True)
    re, im = (torch.randn(5, generator=generator, dtype=torch.float64, requires_grad=True) for _ in range(2))
    with BF16:  # float64 is never cast: the same functions as outside autocast
        assert torch.autograd.gradcheck(lambda f, m: _StandardizedProjection.apply(f, m, 2, 1e-5, f.dtype)[0],
                                        (flat, matrix))
        assert torch.autograd.gradcheck(ComplexStandardization(2, 3).double(), (flat,))
        assert torch.autograd.gradcheck(lambda t: unit_norm(t, 1e-5), (z,))
        assert torch.autograd.gradcheck(safe_modulus, (re, im))


def test_unit_norm_of_low_precision_input_is_float32():
    z = torch.randn(4, 5, 8).bfloat16().requires_grad_()
    out = unit_norm(z, 1e-5)
    assert out.dtype == torch.float32
    zf = z.detach().float()
    torch.testing.assert_close(out, zf / torch.sqrt(1e-5 + zf.square().sum(-1, keepdim=True)))
    out.sum().backward()
    assert z.grad.dtype == torch.bfloat16 and torch.isfinite(z.grad).all()


@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["float16", "bfloat16"])
def test_forward_under_cuda_autocast_matches_float32(precision):
    model = _network().cuda()
    images = _images().cuda()
    model.train()
    reference_blocks, reference_logits = _forward(model, images, torch.autocast("cuda", enabled=False))
    blocks, logits = _forward(model, images, autocast("cuda", precision))
    assert logits.dtype == torch.float32
    for block, reference in zip(blocks, reference_blocks):
        assert block.dtype == torch.float32 and _relative_error(block, reference) < 5e-2
    assert _relative_error(logits, reference_logits) < 5e-2
    scaler = torch.amp.GradScaler("cuda", enabled=precision == "float16")
    with autocast("cuda", precision):
        logits = model(images)
    scaler.scale(F.cross_entropy(logits, (torch.arange(12) % 10).cuda())).backward()
    assert all(p.grad.dtype == torch.float32 and torch.isfinite(p.grad).all() for p in model.parameters())
