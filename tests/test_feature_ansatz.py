"""Feature-ansatz correlation: patch gradients equal W^T (output gradients), trained vs untrained contrast."""

import numpy as np
import pytest
import torch

from skphase.datasets import load_digits_images
from skphase.metrics._feature_ansatz import matrix_cosine_similarity, nfa_correlation, pearson_matrix_correlation


def _net(seed, width=16):
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, width, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(width, width, 3, stride=2, padding=1), torch.nn.ReLU(),
        torch.nn.Flatten(), torch.nn.Linear(width * 16, 10),
    )


def _agop_from_output_gradients(net, X, name):
    """Independent route: grad wrt patch x_p is W^T (grad wrt the conv output at p)."""
    conv = dict(net.named_modules())[name]
    W = conv.weight.detach().reshape(conv.out_channels, -1).double()
    store = {}
    handle = conv.register_forward_hook(lambda m, a, out: store.__setitem__("out", out))
    out = net(X)
    handle.remove()
    G = torch.zeros(W.shape[1], W.shape[1], dtype=torch.float64)
    for c in range(out.shape[1]):
        (delta,) = torch.autograd.grad(out[:, c].sum(), store["out"], retain_graph=True)
        delta = delta.flatten(2).transpose(1, 2).reshape(-1, conv.out_channels).double()
        g = delta @ W
        G += g.T @ g
    return G / len(X)


def test_agop_equals_output_gradient_route():
    net = _net(0)
    X = torch.rand(12, 1, 8, 8)
    result = nfa_correlation(net, X, batch_size=5, return_agop=True)
    assert set(result) == {"0", "2"}
    for name in ("0", "2"):
        expected = _agop_from_output_gradients(net, X, name)
        np.testing.assert_allclose(result[name]["agop"], expected.numpy(), rtol=1e-4, atol=1e-9)
        W = dict(net.named_modules())[name].weight.detach().reshape(16, -1).double()
        np.testing.assert_allclose(result[name]["filter_covariance"], (W.T @ W).numpy(), rtol=1e-6)


def test_pearson_matrix_correlation():
    rng = np.random.RandomState(0)
    A = rng.randn(5, 5)
    assert pearson_matrix_correlation(A, 3 * A + 2) == pytest.approx(1.0)
    assert pearson_matrix_correlation(A, -A) == pytest.approx(-1.0)
    assert pearson_matrix_correlation(A, rng.randn(5, 5)) < 0.9
    assert np.isnan(pearson_matrix_correlation(np.ones((2, 2)), A[:2, :2]))


def test_matrix_cosine_similarity_is_uncentred():
    rng = np.random.RandomState(1)
    A, B = rng.randn(4, 4), rng.randn(4, 4)
    expected = (A * B).sum() / (np.linalg.norm(A) * np.linalg.norm(B))  # the feature-ansatz authors' measure
    assert matrix_cosine_similarity(A, B) == pytest.approx(expected)
    assert matrix_cosine_similarity(A, B, centered=True) == pytest.approx(pearson_matrix_correlation(A, B))
    assert matrix_cosine_similarity(A, A + 5) != pytest.approx(1.0)  # a shift changes the uncentred cosine
    with pytest.raises(ValueError, match="different sizes"):
        matrix_cosine_similarity(A, B[:2])


def test_training_brings_filters_in_line_with_the_agop():
    """A tiny CNN trained briefly on digits.

    First layer: correlation >= 0.8 after training. At initialisation the
    correlation is already high for the first layer (G = W^T Delta W with
    near-isotropic output gradients Delta), so the contrast is measured on the
    second layer, whose correlation rises with training, and against the
    untrained filters, which the trained AGOP does not follow.
    """
    X, y = load_digits_images()
    X, y = torch.as_tensor(X), torch.as_tensor(y)
    net = _net(1, width=32)
    before = nfa_correlation(net, X[:128])
    untrained_cov = net[2].weight.detach().reshape(32, -1).double()
    untrained_cov = untrained_cov.T @ untrained_cov
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    for _ in range(400):
        idx = torch.randint(0, len(X), (64,), generator=generator)
        loss = torch.nn.functional.cross_entropy(net(X[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = nfa_correlation(net, X[:128], return_agop=True)
    assert after["0"]["correlation"] >= 0.8
    assert after["2"]["correlation"] >= 0.8
    assert after["2"]["correlation"] > before["2"]["correlation"] + 0.1
    assert abs(pearson_matrix_correlation(untrained_cov, after["2"]["agop"])) < 0.3


def test_bad_inputs():
    net = _net(0)
    with pytest.raises(ValueError, match="not Conv2d"):
        nfa_correlation(net, torch.rand(2, 1, 8, 8), layers=["5"])
    with pytest.raises(TypeError, match="nn.Module"):
        nfa_correlation(lambda x: x, torch.rand(2, 1, 8, 8))
    with pytest.raises(ValueError, match="NaN"):
        nfa_correlation(net, torch.full((2, 1, 8, 8), float("nan")))
    with pytest.raises(ValueError, match="no Conv2d"):
        nfa_correlation(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2)), torch.rand(2, 1, 2, 2))


def test_a_layer_whose_gradient_vanishes_raises_instead_of_nan():
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(72, 2))
    with torch.no_grad():
        net[3].weight.zero_()
    with pytest.raises(ValueError, match="does not depend on layer '0'"):
        nfa_correlation(net, torch.rand(4, 1, 8, 8))


def test_complex_images_raise():
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Flatten(), torch.nn.Linear(72, 2))
    with pytest.raises(ValueError, match="complex"):
        nfa_correlation(net, torch.rand(4, 1, 8, 8, dtype=torch.complex64))
