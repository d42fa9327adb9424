import math

import numpy as np
import pytest
import torch
from scipy import ndimage

from skphase.nn._diffeo import RandomDiffeomorphism, deform, matched_noise, random_deform
from skphase.nn._diffeo_fields import (
    diffeo_coefficients,
    displacement_field,
    sample_displacement,
    temperature_from_displacement,
    temperature_range,
)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _project_on_sines(field, cutoff):
    """Recover sine coefficients from a field on linspace(0, 1, n) grids (DST-I orthogonality)."""
    n_rows, n_cols = field.shape[-2:]
    k = torch.arange(1, cutoff + 1, dtype=torch.float64)
    s_rows = torch.sin(math.pi * torch.linspace(0, 1, n_rows, dtype=torch.float64)[:, None] * k)
    s_cols = torch.sin(math.pi * torch.linspace(0, 1, n_cols, dtype=torch.float64)[:, None] * k)
    coef = torch.einsum("bkyx,yi,xj->bkij", field.double(), s_rows, s_cols)
    coef = coef * (2.0 / (n_rows - 1)) * (2.0 / (n_cols - 1))
    return coef / torch.tensor([n_cols, n_rows], dtype=torch.float64)[None, :, None, None]


def _model_variance(temperature, cutoff):
    i = np.arange(1, cutoff + 1)
    r2 = i[:, None] ** 2 + i[None, :] ** 2
    return np.where(np.sqrt(r2) < cutoff + 0.5, temperature / r2, 0.0)


def test_temperature_helpers_closed_forms():
    n, c = 32, 3
    t = temperature_from_displacement(1.0, n, cutoff=c)
    assert t == pytest.approx(4 / (math.pi * n**2 * math.log(c)))
    t_min, t_max = temperature_range(n, cutoff=c)
    assert t_min == pytest.approx(temperature_from_displacement(0.5, n, cutoff=c))
    assert t_max == pytest.approx(4 / (math.pi**3 * c**2 * math.log(c)))
    assert t_min < t < t_max


@pytest.mark.parametrize("cutoff", [2, 3, 5])
def test_coefficient_variances_match_model(cutoff):
    temperature = 2e-3
    coef = diffeo_coefficients(40_000, cutoff=cutoff, temperature=temperature, generator=_gen(1), dtype=torch.float64)
    emp = coef.pow(2).mean(dim=(0, 1)).numpy()  # mean zero by construction; both components pooled
    model = _model_variance(temperature, cutoff)
    kept = model > 0
    np.testing.assert_array_equal(emp[~kept], 0.0)
    np.testing.assert_allclose(emp[kept], model[kept], rtol=0.05)
    assert np.abs(coef.mean(dim=(0, 1)).numpy()[kept]).max() < 0.05 * np.sqrt(model[kept]).min()


def test_sampled_fields_are_the_sine_series_of_the_model():
    # The whole sampling pipeline (coefficients + synthesis + pixel scaling) projected back onto sines.
    n, c = 16, 3
    temperature = temperature_from_displacement(1.0, n, cutoff=c)
    tau = sample_displacement(20_000, n, cutoff=c, temperature=temperature, generator=_gen(2), dtype=torch.float64)
    emp = _project_on_sines(tau, c).pow(2).mean(dim=(0, 1)).numpy()
    model = _model_variance(temperature, c)
    np.testing.assert_allclose(emp[model > 0], model[model > 0], rtol=0.05)
    np.testing.assert_allclose(emp[model == 0], 0.0, atol=1e-12)


def test_synthesis_inverts_projection_exactly():
    coef = diffeo_coefficients(3, cutoff=4, temperature=1e-3, generator=_gen(3), dtype=torch.float64)
    field = displacement_field(coef, 20, 24)
    torch.testing.assert_close(_project_on_sines(field, 4), coef, atol=1e-12, rtol=0)


def test_zero_displacement_on_border():
    tau = sample_displacement(64, (24, 32), cutoff=4, displacement=2.0, generator=_gen(4))
    for edge in (tau[..., 0, :], tau[..., -1, :], tau[..., :, 0], tau[..., :, -1]):
        assert torch.count_nonzero(edge) == 0
    assert tau[..., 1:-1, 1:-1].abs().min(dim=0).values.max() > 0


def test_rms_centre_displacement_at_delta_one():
    n, c = 32, 3
    tau = sample_displacement(40_000, n, cutoff=c, displacement=1.0, generator=_gen(5), dtype=torch.float64)
    centre = tau[:, :, 15:17, 15:17]  # the four pixels around the centre of a 32 x 32 grid
    rms = centre.pow(2).sum(dim=1).mean().sqrt().item()
    assert rms == pytest.approx(1.26, rel=0.05)
    # and to the exact finite-n value of the model at those pixels (1.2706), to a few standard errors
    x = 15 / 31
    k = np.arange(1, c + 1)
    s = np.sin(np.pi * k * x)
    var = (_model_variance(temperature_from_displacement(1.0, n, c), c) * np.outer(s, s) ** 2).sum() * n**2
    assert rms == pytest.approx(np.sqrt(2 * var), rel=0.01)


def test_refuses_small_cutoff_and_warns_above_t_max():
    with pytest.raises(ValueError, match="cut-off c >= 2"):
        sample_displacement(1, 16, cutoff=1)
    with pytest.raises(ValueError, match="cut-off"):
        temperature_range(16, cutoff=1)
    with pytest.raises(TypeError, match="integer"):
        sample_displacement(1, 16, cutoff=2.5)
    t_max = temperature_range(16, cutoff=3)[1]
    with pytest.warns(UserWarning, match="T_max"):
        sample_displacement(1, 16, cutoff=3, temperature=2 * t_max)
    with pytest.raises(ValueError, match="either temperature or displacement"):
        sample_displacement(1, 16, temperature=1e-3, displacement=1.0)
    with pytest.raises(ValueError, match="too small"):
        sample_displacement(1, (2, 16))


def test_deform_matches_scipy_map_coordinates():
    rng = np.random.default_rng(0)
    x = torch.as_tensor(rng.random((4, 2, 12, 15)), dtype=torch.float64)
    tau = sample_displacement(4, (12, 15), displacement=3.0, generator=_gen(6), dtype=torch.float64)
    for interpolation, order in (("bilinear", 1), ("nearest", 0)):
        out = deform(x, tau, interpolation=interpolation).numpy()
        rows, cols = np.meshgrid(np.arange(12), np.arange(15), indexing="ij")
        for b in range(4):
            src = np.stack([rows - tau[b, 1].numpy(), cols - tau[b, 0].numpy()])
            src = np.clip(src, 0, np.array([11, 14])[:, None, None])
            for ch in range(2):
                ref = ndimage.map_coordinates(x[b, ch].numpy(), src, order=order, mode="nearest")
                np.testing.assert_allclose(out[b, ch], ref, atol=1e-10)


def test_deform_identity_and_clamped_shift():
    x = torch.rand(2, 3, 8, 9, dtype=torch.float64)
    for interpolation in ("bilinear", "nearest"):
        torch.testing.assert_close(deform(x, torch.zeros(2, 2, 8, 9), interpolation=interpolation), x)
    shift = torch.zeros(2, 2, 8, 9, dtype=torch.float64)
    shift[:, 0] = 2.0  # out(y, x) = in(y, x - 2), clamped at the left border
    out = deform(x, shift)
    torch.testing.assert_close(out[..., 2:], x[..., :-2])
    torch.testing.assert_close(out[..., :2], x[..., :1].expand(-1, -1, -1, 2))


def test_one_field_per_image_shared_across_channels():
    x = torch.rand(5, 1, 16, 16)
    out = random_deform(x.expand(-1, 3, -1, -1), generator=_gen(7))
    torch.testing.assert_close(out[:, 0], out[:, 1])
    torch.testing.assert_close(out[:, 0], out[:, 2])
    # different images get different fields
    _, tau = random_deform(x, generator=_gen(7), return_displacement=True)
    assert not torch.allclose(tau[0], tau[1])


def test_reproducible_with_generator():
    x = torch.rand(4, 2, 16, 16)
    a = random_deform(x, generator=_gen(8))
    b = random_deform(x, generator=_gen(8))
    c = random_deform(x, generator=_gen(9))
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, c)


def test_matched_noise_has_per_image_norm():
    x = torch.rand(6, 3, 10, 10)
    y = random_deform(x, displacement=2.0, generator=_gen(10))
    eta = matched_noise(x, y, generator=_gen(11))
    torch.testing.assert_close(eta.flatten(1).norm(dim=1), (y - x).flatten(1).norm(dim=1))
    # isotropic: the direction is unrelated to the deformation
    cos = torch.nn.functional.cosine_similarity(eta.flatten(1), (y - x).flatten(1), dim=1)
    assert cos.abs().max() < 0.5


def test_random_diffeomorphism_module():
    aug = RandomDiffeomorphism(displacement=1.0, generator=_gen(12))
    single = torch.rand(3, 20, 20)
    assert aug(single).shape == single.shape
    batch = torch.rand(6, 1, 20, 20)
    out = aug(batch)
    assert out.shape == batch.shape and not torch.allclose(out, batch)
    torch.testing.assert_close(RandomDiffeomorphism(p=0.0)(batch), batch)
    with pytest.raises(ValueError, match="cut-off"):
        RandomDiffeomorphism(cutoff=1)
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        aug(torch.rand(20, 20))
    assert "displacement=1.0" in repr(aug)


def test_random_diffeomorphism_p_fraction():
    x = torch.rand(400, 1, 12, 12)
    out = RandomDiffeomorphism(p=0.5, generator=_gen(14))(x)
    unchanged = (out == x).flatten(1).all(dim=1).float().mean().item()
    assert 0.4 < unchanged < 0.6


def test_deform_shape_errors():
    with pytest.raises(ValueError, match=r"\(n, C, H, W\)"):
        deform(torch.rand(4, 4), torch.zeros(1, 2, 4, 4))
    with pytest.raises(ValueError, match="displacement must have shape"):
        deform(torch.rand(2, 1, 4, 4), torch.zeros(1, 2, 4, 4))
    with pytest.raises(ValueError, match="interpolation"):
        deform(torch.rand(1, 1, 4, 4), torch.zeros(1, 2, 4, 4), interpolation="cubic")


def test_deform_gradcheck_float64():
    x = torch.rand(2, 1, 6, 6, dtype=torch.float64, requires_grad=True)
    tau = sample_displacement(2, 6, displacement=1.0, generator=_gen(15), dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda im: deform(im, tau), (x,))


@pytest.mark.gpu
def test_cuda_matches_cpu():
    x = torch.rand(4, 3, 16, 16)
    tau = sample_displacement(4, 16, generator=_gen(16))
    torch.testing.assert_close(deform(x.cuda(), tau.cuda()).cpu(), deform(x, tau), atol=1e-5, rtol=0)
    g = torch.Generator(device="cuda").manual_seed(0)
    out = random_deform(x.cuda(), generator=g)
    assert out.device.type == "cuda"
    eta = matched_noise(x.cuda(), out, generator=g)
    torch.testing.assert_close(eta.flatten(1).norm(dim=1), (out - x.cuda()).flatten(1).norm(dim=1))


def test_random_deform_equals_deform_of_its_field():
    x = torch.rand(6, 2, 14, 17, dtype=torch.float64)
    out, tau = random_deform(x, displacement=2.0, generator=_gen(17), return_displacement=True)
    torch.testing.assert_close(out, deform(x, tau), atol=1e-12, rtol=0)
    out_nearest, tau = random_deform(x, interpolation="nearest", generator=_gen(18), return_displacement=True)
    torch.testing.assert_close(out_nearest, deform(x, tau, interpolation="nearest"))


def _reference_grid_sample(images, tau, mode):
    """F.grid_sample on the interleaved (n, H, W, 2) grid of p - tau(p), built independently."""
    n, _, height, width = images.shape
    rows, cols = torch.meshgrid(
        torch.arange(height, dtype=images.dtype), torch.arange(width, dtype=images.dtype), indexing="ij"
    )
    src_x = (cols - tau[:, 0]) * (2.0 / (width - 1)) - 1
    src_y = (rows - tau[:, 1]) * (2.0 / (height - 1)) - 1
    grid = torch.stack([src_x, src_y], dim=-1)
    return torch.nn.functional.grid_sample(images, grid, mode=mode, padding_mode="border", align_corners=True)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
def test_chunked_path_equals_grid_sample(monkeypatch, dtype, interpolation):
    # Tiny chunks force the CPU loop (buffers reused across chunks, a last partial chunk); the
    # fields reach well past the border (up to ~9 pixels on 13 x 16 images) so clamping is exercised.
    from skphase.nn import _diffeo

    monkeypatch.setattr(_diffeo, "_CHUNK_ELEMENTS", 3 * 5 * 13 * 16)  # 3 images per chunk
    x = torch.rand(11, 3, 13, 16, dtype=dtype)
    tau = sample_displacement(11, (13, 16), displacement=4.0, generator=_gen(19), dtype=dtype)
    tau[0] += 9.0  # a constant shift: most of image 0 samples the clamped top-left border
    tau[1, 1] -= 9.0
    ref = _reference_grid_sample(x, tau, interpolation)
    out = deform(x, tau, interpolation=interpolation)
    assert (tau.abs() > 8).any() and out.dtype == dtype and out.is_contiguous()
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-5 if dtype == torch.float32 else 1e-12)
    # random_deform builds its grid from the coefficients instead: same images up to round-off in
    # the coordinates (nearest may then pick the other neighbour at an exact half-pixel tie).
    out, tau = random_deform(
        x, displacement=4.0, interpolation=interpolation, generator=_gen(20), return_displacement=True
    )
    ref = _reference_grid_sample(x, tau, interpolation)
    if interpolation == "bilinear":
        torch.testing.assert_close(out, ref, rtol=0, atol=1e-5 if dtype == torch.float32 else 1e-12)
    else:
        assert (out == ref).float().mean() > 0.999
    # and chunking changes nothing but the summation order of the batched grid products
    monkeypatch.setattr(_diffeo, "_CHUNK_ELEMENTS", 2**30)
    whole = random_deform(x, displacement=4.0, interpolation=interpolation, generator=_gen(20))
    if interpolation == "bilinear":
        torch.testing.assert_close(whole, out, rtol=0, atol=1e-5 if dtype == torch.float32 else 1e-12)
    else:
        assert (whole == out).float().mean() > 0.999


def test_random_deform_gradcheck_float64_on_a_large_batch(monkeypatch):
    # Under autograd the batch is sampled in one differentiable call, however large it is.
    from skphase.nn import _diffeo

    monkeypatch.setattr(_diffeo, "_CHUNK_ELEMENTS", 2 * 3 * 6 * 6)
    x = torch.rand(5, 1, 6, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda im: random_deform(im, displacement=2.0, generator=_gen(21)), (x,))
    # the displacement still receives a gradient (not gradchecked: grid_sample has kinks at integer
    # coordinates, where the border pixels sit)
    tau = sample_displacement(5, 6, displacement=1.0, generator=_gen(22), dtype=torch.float64).requires_grad_()
    deform(x.detach(), tau).pow(2).sum().backward()
    assert tau.grad is not None and torch.isfinite(tau.grad).all() and tau.grad.abs().sum() > 0
    with torch.no_grad():
        chunked = random_deform(x, displacement=2.0, generator=_gen(21))
    torch.testing.assert_close(random_deform(x, displacement=2.0, generator=_gen(21)).detach(), chunked)
