"""Patch kernels: agreement with a direct float64 computation, symmetry, PSD, memory-bounded blocks."""

import dataclasses

import numpy as np
import pytest
import torch

from skphase.nn import extract_patches, patch_grid_shape, patch_kernel, psd_sqrt
from skphase.nn._patch_kernels import PatchKernel, transform_patches


def _direct_kernel(X, Z, M, kernel, bandwidth, patch_size=3, stride=1, padding=0):
    """(1/P) sum_p k(x_p, z_p) with the Mahalanobis distance written out, all pairs at once."""
    px = extract_patches(X, patch_size, stride=stride, padding=padding)
    pz = extract_patches(Z, patch_size, stride=stride, padding=padding)
    diff = px[:, None] - pz[None]
    sq = torch.einsum("nmpd,de,nmpe->nmp", diff, M, diff)
    if kernel == "laplace":
        values = torch.exp(-sq.clamp_min(0).sqrt() / bandwidth)
    else:
        values = torch.exp(-sq / (2 * bandwidth**2))
    return values.mean(-1)


def _random_psd(d, seed=0):
    g = torch.Generator().manual_seed(seed)
    R = torch.randn(d, d, generator=g, dtype=torch.float64)
    return R @ R.T / d


def test_extract_patches_matches_conv2d():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(3, 2, 9, 8, generator=g)
    conv = torch.nn.Conv2d(2, 4, (3, 2), stride=(2, 1), padding=(1, 0), bias=False)
    patches = extract_patches(X, (3, 2), stride=(2, 1), padding=(1, 0))
    expected = conv(X).flatten(2).transpose(1, 2)
    got = patches @ conv.weight.reshape(4, -1).T
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    assert patches.shape[1] == np.prod(patch_grid_shape((9, 8), (3, 2), stride=(2, 1), padding=(1, 0)))


@pytest.mark.parametrize("kernel", ["laplace", "gaussian"])
@pytest.mark.parametrize("stride,padding", [(1, 0), (2, 1)])
def test_kernel_equals_direct_float64(kernel, stride, padding):
    g = torch.Generator().manual_seed(1)
    X = torch.rand(5, 2, 7, 7, generator=g, dtype=torch.float64)
    Z = torch.rand(4, 2, 7, 7, generator=g, dtype=torch.float64)
    M = _random_psd(18)
    K = patch_kernel(X, Z, M=M, kernel=kernel, bandwidth=2.0, stride=stride, padding=padding, batch_size=2)
    expected = _direct_kernel(X, Z, M, kernel, 2.0, stride=stride, padding=padding)
    torch.testing.assert_close(K, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("kernel", ["laplace", "gaussian", "ntk"])
def test_gram_symmetric_psd(kernel):
    g = torch.Generator().manual_seed(2)
    X = torch.rand(9, 1, 6, 6, generator=g, dtype=torch.float64)
    K = patch_kernel(X, M=_random_psd(9, 3), kernel=kernel, bandwidth=3.0, ntk_depth=2, batch_size=4)
    assert torch.equal(K, K.T)
    assert torch.linalg.eigvalsh(K).min() > -1e-10
    # The blocked symmetric Gram equals the rectangular kernel of X with itself.
    K_rect = patch_kernel(X, X.clone(), M=_random_psd(9, 3), kernel=kernel, bandwidth=3.0, ntk_depth=2,
                          batch_size=4)
    torch.testing.assert_close(K, K_rect, rtol=0, atol=1e-7)


def test_ntk_depth_one_is_patch_average_of_arccos_ntk():
    g = torch.Generator().manual_seed(3)
    X = torch.rand(4, 1, 5, 5, generator=g, dtype=torch.float64)
    Z = torch.rand(3, 1, 5, 5, generator=g, dtype=torch.float64)
    K = patch_kernel(X, Z, kernel="ntk", ntk_depth=1)
    px, pz = extract_patches(X, 3) / 3.0, extract_patches(Z, 3) / 3.0  # <a, b> / d with d = 9
    dot = torch.einsum("npd,mpd->nmp", px, pz)
    nx, nz = px.norm(dim=-1)[:, None, :], pz.norm(dim=-1)[None, :, :]
    theta = torch.arccos((dot / (nx * nz)).clamp(-1, 1))
    nngp = nx * nz * (torch.sin(theta) + (np.pi - theta) * torch.cos(theta)) / np.pi
    expected = (dot * (np.pi - theta) / np.pi + nngp).mean(-1)
    torch.testing.assert_close(K, expected, rtol=1e-10, atol=1e-10)


def _loop_ntk(X, Z, depth, q=3, ntk_padding="same"):
    """The conv NTK written position by position (float64, Python loops; tiny images only).

    Layer 1 compares the patches at one position; each deeper q x q layer
    averages the ReLU expectations of the q x q neighbours: centred on the
    position with zeros past the border counted in the average ('same'), or
    the q x q window starting at it, on a grid smaller by q - 1 ('valid');
    the read-out averages over the last grid's positions.
    """
    patch_grid = patch_grid_shape(X.shape[-2:], q)
    px, pz = extract_patches(X, q), extract_patches(Z, q)
    d = px.shape[-1]
    out = torch.zeros(len(X), len(Z), dtype=torch.float64)
    for i in range(len(X)):
        for j in range(len(Z)):
            grid = patch_grid  # 'valid' layers shrink it
            cov = {p: float(px[i, p] @ pz[j, p]) / d for p in range(grid[0] * grid[1])}
            va = {p: float(px[i, p] @ px[i, p]) / d for p in cov}
            vb = {p: float(pz[j, p] @ pz[j, p]) / d for p in cov}
            ntk = dict(cov)
            for layer in range(depth):
                terms = {}
                for p in cov:
                    scale = np.sqrt(va[p] * vb[p])
                    theta = np.arccos(np.clip(cov[p] / scale, -1, 1)) if scale > 0 else np.pi / 2
                    e = scale * (np.sin(theta) + (np.pi - theta) * np.cos(theta)) / np.pi
                    terms[p] = (e, ntk[p] * (np.pi - theta) / np.pi + e)
                if layer == depth - 1:
                    out[i, j] = np.mean([t[1] for t in terms.values()])
                    break

                valid = ntk_padding == "valid"
                new_grid = (grid[0] - q + 1, grid[1] - q + 1) if valid else grid
                offsets = range(q) if valid else range(-(q // 2), q - q // 2)

                def neighbour_mean(values):
                    result = {}
                    for p in range(new_grid[0] * new_grid[1]):
                        r, c = divmod(p, new_grid[1])
                        total = 0.0
                        for dr in offsets:
                            for dc in offsets:
                                if 0 <= r + dr < grid[0] and 0 <= c + dc < grid[1]:
                                    total += values[(r + dr) * grid[1] + c + dc]
                        result[p] = total / q**2
                    return result

                cov = neighbour_mean({p: t[0] for p, t in terms.items()})
                ntk = neighbour_mean({p: t[1] for p, t in terms.items()})
                va, vb = neighbour_mean(va), neighbour_mean(vb)
                grid = new_grid
    return out


@pytest.mark.parametrize("ntk_padding", ["same", "valid"])
@pytest.mark.parametrize("depth", [2, 3])
def test_deep_ntk_matches_position_by_position_loops(depth, ntk_padding):
    g = torch.Generator().manual_seed(depth)
    X = torch.randn(3, 1, 8, 9, generator=g, dtype=torch.float64)
    Z = torch.randn(2, 1, 8, 9, generator=g, dtype=torch.float64)
    expected = _loop_ntk(X, Z, depth, ntk_padding=ntk_padding)
    K = patch_kernel(X, Z, kernel="ntk", ntk_depth=depth, ntk_padding=ntk_padding)
    torch.testing.assert_close(K, expected, rtol=1e-12, atol=1e-12)
    # The differentiable path (used by the AGOP) computes the same numbers.
    K_grad = patch_kernel(X.requires_grad_(), Z, kernel="ntk", ntk_depth=depth, ntk_padding=ntk_padding)
    assert K_grad.requires_grad
    torch.testing.assert_close(K_grad.detach(), expected, rtol=1e-12, atol=1e-12)


def test_identity_M_matches_no_M_and_diagonal_is_one():
    X = torch.rand(3, 1, 6, 6, dtype=torch.float64)
    K1 = patch_kernel(X)
    K2 = patch_kernel(X, M=torch.eye(9, dtype=torch.float64))
    torch.testing.assert_close(K1, K2)
    torch.testing.assert_close(K1.diagonal(), torch.ones(3, dtype=torch.float64), rtol=0, atol=1e-7)


def test_psd_sqrt_squares_back():
    M = _random_psd(6)
    T = psd_sqrt(M)
    torch.testing.assert_close(T @ T, M)
    torch.testing.assert_close(T, T.T)


def test_float32_close_to_float64():
    X = torch.rand(6, 1, 8, 8, dtype=torch.float64)
    K64 = patch_kernel(X)
    K32 = patch_kernel(X.float())
    assert K32.dtype == torch.float32
    torch.testing.assert_close(K32.double(), K64, rtol=0, atol=1e-4)


def test_bad_inputs():
    with pytest.raises(ValueError, match="smaller than one"):
        patch_kernel(torch.rand(2, 1, 2, 2), patch_size=3)
    with pytest.raises(ValueError, match="kernel must be one of"):
        patch_kernel(torch.rand(2, 1, 4, 4), kernel="cosine")
    with pytest.raises(ValueError, match="one shape"):
        patch_kernel(torch.rand(2, 1, 4, 4), torch.rand(2, 2, 4, 4))
    with pytest.raises(ValueError, match="bandwidth"):
        patch_kernel(torch.rand(2, 1, 4, 4), bandwidth=0)


@pytest.mark.parametrize("kernel", ["laplace", "ntk"])
def test_patch_kernel_spec_is_the_function(kernel):
    g = torch.Generator().manual_seed(3)
    X = torch.rand(5, 2, 7, 6, dtype=torch.float64, generator=g)
    Z = torch.rand(3, 2, 7, 6, dtype=torch.float64, generator=g)
    params = dict(kernel=kernel, bandwidth=2.0, patch_size=(3, 2), stride=2, padding=1, ntk_depth=2, batch_size=2)
    spec = PatchKernel(**params, grid=patch_grid_shape((7, 6), (3, 2), stride=2, padding=1))
    assert spec.stride == (2, 2) and spec.padding == (1, 1)  # stored as pairs
    K = spec.gram(transform_patches(spec.patches(X)), transform_patches(spec.patches(Z)))
    torch.testing.assert_close(K, patch_kernel(X, Z, **params), rtol=0, atol=0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.bandwidth = 3.0
    with pytest.raises(ValueError, match="grid of patches"):
        spec.patches(torch.rand(2, 2, 9, 9))
    with pytest.raises(ValueError, match="positions but the kernel's grid"):
        spec.gram(transform_patches(PatchKernel(patch_size=3).patches(X)))


def test_patch_kernel_spec_checks_its_parameters():
    with pytest.raises(ValueError, match="kernel must be one of"):
        PatchKernel("cosine")
    with pytest.raises(ValueError, match="bandwidth must be > 0"):
        PatchKernel("gaussian", bandwidth=None)
    assert PatchKernel("ntk", bandwidth=None).bandwidth is None  # the NTK has none
    with pytest.raises(ValueError, match="ntk_padding must be one of"):
        PatchKernel(ntk_padding="full")
    with pytest.raises(ValueError, match="needs grid"):
        PatchKernel("ntk").gram(torch.rand(4, 2, 9))


@pytest.mark.gpu
def test_cuda_matches_cpu():
    X = torch.rand(5, 1, 8, 8, dtype=torch.float64)
    torch.testing.assert_close(patch_kernel(X.cuda()).cpu(), patch_kernel(X))


@pytest.mark.parametrize("ntk_padding", ["same", "valid"])
@pytest.mark.parametrize("window", [(3, 3), (2, 4), (5, 1)])
def test_ntk_window_average_matches_average_pooling(window, ntk_padding):
    from skphase.nn._ntk import _window_average

    grid = (5, 6)
    maps = torch.randn(2, 3, grid[0] * grid[1], dtype=torch.float64)
    if ntk_padding == "same":
        pad = (window[0] // 2, window[1] // 2)
        pooled = torch.nn.functional.avg_pool2d(maps.reshape(-1, 1, *grid), window, stride=1, padding=pad,
                                                count_include_pad=True)[..., : grid[0], : grid[1]]
    else:
        pooled = torch.nn.functional.avg_pool2d(maps.reshape(-1, 1, *grid), window, stride=1)
    torch.testing.assert_close(_window_average(maps, window, grid, ntk_padding), pooled.reshape(2, 3, -1),
                               rtol=0, atol=1e-12)


def test_valid_ntk_refuses_images_too_small_for_its_depth():
    X = torch.rand(2, 1, 7, 7, dtype=torch.float64)  # 5 x 5 patch grid: 2 'valid' layers fit, not 3
    assert patch_kernel(X, kernel="ntk", ntk_depth=3, ntk_padding="valid").shape == (2, 2)
    with pytest.raises(ValueError, match="too small for 4 NTK layers.*ntk_padding='same'"):
        patch_kernel(X, kernel="ntk", ntk_depth=4, ntk_padding="valid")
    for kernel in ("ntk", "laplace"):
        with pytest.raises(ValueError, match="ntk_padding must be one of"):
            patch_kernel(X, kernel=kernel, ntk_padding="full")
