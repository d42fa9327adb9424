"""Patch AGOP: closed form against autograd in float64, reduction to the ordinary AGOP, conventions."""

import pytest
import torch

from skphase.nn import patch_agop, patch_agop_from_patches


def _data(seed=0, n=6, m=5, channels=2, size=7):
    g = torch.Generator().manual_seed(seed)
    X = torch.rand(n, channels, size, size, generator=g, dtype=torch.float64)
    Z = torch.rand(m, channels, size, size, generator=g, dtype=torch.float64)
    coef = torch.randn(m, 3, generator=g, dtype=torch.float64)
    d = channels * 9
    R = torch.randn(d, d, generator=g, dtype=torch.float64)
    return X, Z, coef, R @ R.T / d


@pytest.mark.parametrize("kernel", ["laplace", "gaussian"])
@pytest.mark.parametrize("stride,padding", [(1, 0), (2, 1)])
def test_closed_form_equals_autograd(kernel, stride, padding):
    X, Z, coef, M = _data()
    kwargs = dict(M=M, kernel=kernel, bandwidth=2.0, stride=stride, padding=padding, batch_size=2)
    closed = patch_agop(X, Z, coef, method="closed_form", **kwargs)
    auto = patch_agop(X, Z, coef, method="autograd", **kwargs)
    assert closed.abs().max() > 1e-6  # a non-trivial matrix
    torch.testing.assert_close(closed, auto, rtol=0, atol=1e-8)


def test_single_patch_is_ordinary_agop():
    """One patch covering the image: the patch AGOP is the AGOP of f on the flattened image."""
    X, Z, coef, M = _data(channels=1, size=3)
    G = patch_agop(X, Z, coef, M=M, patch_size=3, bandwidth=2.0)
    T = torch.linalg.cholesky(M).T  # any T with T^T T = M gives the same kernel

    def f(x_flat):
        diff = (x_flat[:, None, :] - Z.reshape(len(Z), -1)[None]) @ T.T
        return torch.exp(-diff.norm(dim=-1) / 2.0) @ coef

    jac = torch.func.vmap(torch.func.jacrev(lambda x: f(x[None])[0]))(X.reshape(len(X), -1))
    expected = torch.einsum("ncd,nce->de", jac, jac) / len(X)
    torch.testing.assert_close(G, expected, rtol=1e-10, atol=1e-12)


def test_self_pairs_get_no_gradient_and_symmetric_psd():
    X, _, _, M = _data()
    coef = torch.randn(len(X), 2, dtype=torch.float64)
    G = patch_agop(X, X, coef, M=M)  # every x is also a centre: distance-0 pairs
    assert torch.isfinite(G).all()
    assert torch.equal(G, G.T)
    assert torch.linalg.eigvalsh(G).min() > -1e-12
    auto = patch_agop(X, X, coef, M=M, method="autograd")
    torch.testing.assert_close(G, auto, rtol=0, atol=1e-8)


def test_ntk_uses_autograd_and_is_finite_at_self_pairs():
    X, _, _, _ = _data(n=4, size=5)
    G = patch_agop(X, X, torch.randn(4, 2, dtype=torch.float64), kernel="ntk", ntk_depth=2)
    assert torch.isfinite(G).all() and G.abs().max() > 0
    with pytest.raises(ValueError, match="no closed form"):
        patch_agop(X, X, torch.randn(4, dtype=torch.float64), kernel="ntk", method="closed_form")


def test_blocks_do_not_change_the_result():
    X, Z, coef, M = _data(n=7)
    G1 = patch_agop(X, Z, coef, M=M, batch_size=2)
    G2 = patch_agop(X, Z, coef, M=M, batch_size=64)
    torch.testing.assert_close(G1, G2, rtol=1e-12, atol=1e-15)


def test_symmetric_shortcut_at_the_centres_matches_the_general_path():
    X, _, _, M = _data(n=9)
    coef = torch.randn(9, 2, dtype=torch.float64)
    fast = patch_agop(X, X, coef, M=M, batch_size=4)  # same tensor: symmetric weight blocks
    general = patch_agop(X, X.clone(), coef, M=M, batch_size=4)
    torch.testing.assert_close(fast, general, rtol=1e-12, atol=1e-15)


def test_bad_inputs():
    X, Z, coef, _ = _data()
    with pytest.raises(ValueError, match="rows but there are"):
        patch_agop(X, Z, coef[:2])
    with pytest.raises(ValueError, match="method"):
        patch_agop(X, Z, coef, method="numeric")
    with pytest.raises(ValueError, match="one shape"):
        patch_agop(X, Z[:, :1], coef)
    with pytest.raises(ValueError, match="ntk_padding must be one of"):
        patch_agop(X, Z, coef, ntk_padding="full")
    with pytest.raises(ValueError, match="patch"):
        patch_agop_from_patches(torch.rand(2, 4, 9), torch.rand(3, 4, 9), torch.rand(3), kernel="ntk",
                                method="closed_form")


@pytest.mark.parametrize("kernel,method", [("laplace", "closed_form"), ("gaussian", "closed_form"),
                                           ("laplace", "autograd"), ("ntk", "autograd")])
def test_weights_equal_repeated_images(kernel, method):
    X, Z, coef, M = _data(n=5)
    w = torch.tensor([2, 0, 1, 3, 1])
    kwargs = dict(M=M, kernel=kernel, bandwidth=2.0, ntk_depth=2, method=method, batch_size=2)
    weighted = patch_agop(X, Z, coef, sample_weight=w.double(), **kwargs)
    repeated = patch_agop(X.repeat_interleave(w, dim=0), Z, coef, **kwargs)
    torch.testing.assert_close(weighted, repeated, rtol=1e-10, atol=1e-13)


def test_weights_at_the_centres_use_the_symmetric_shortcut():
    X, _, _, M = _data(n=9)
    coef = torch.randn(9, 2, dtype=torch.float64)
    w = torch.linspace(0.0, 2.0, 9, dtype=torch.float64)
    fast = patch_agop(X, X, coef, M=M, batch_size=4, sample_weight=w)  # same tensor: symmetric blocks
    general = patch_agop(X, X.clone(), coef, M=M, batch_size=4, sample_weight=w)
    torch.testing.assert_close(fast, general, rtol=1e-12, atol=1e-15)
    unweighted = patch_agop(X, X, coef, M=M, batch_size=4)
    torch.testing.assert_close(patch_agop(X, X, coef, M=M, batch_size=4, sample_weight=torch.full((9,), 3.0)),
                               unweighted, rtol=1e-12, atol=1e-15)  # only relative weights matter


def test_bad_weights():
    X, Z, coef, _ = _data()
    with pytest.raises(ValueError, match="5 values for 6 images"):
        patch_agop(X, Z, coef, sample_weight=torch.ones(5))
    with pytest.raises(ValueError, match="finite and non-negative"):
        patch_agop(X, Z, coef, sample_weight=-torch.ones(6))
    with pytest.raises(ValueError, match="finite and non-negative"):
        patch_agop(X, Z, coef, sample_weight=torch.full((6,), float("nan")))
    with pytest.raises(ValueError, match="non-zero"):
        patch_agop(X, Z, coef, sample_weight=torch.zeros(6))


@pytest.mark.gpu
def test_cuda_matches_cpu():
    X, Z, coef, M = _data()
    torch.testing.assert_close(patch_agop(X.cuda(), Z.cuda(), coef.cuda(), M=M.cuda()).cpu(),
                               patch_agop(X, Z, coef, M=M))
