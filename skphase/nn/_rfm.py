"""The recursive feature machine on a patch kernel (ConvRFM), in torch.

:func:`fit_rfm` alternates kernel ridge regression with a convolutional patch kernel
(:class:`~skphase.nn.PatchKernel`) and the update of the patch transform ``T``
from the patch AGOP ``G`` of the fitted predictor (Radhakrishnan et al., "Mechanism of feature
learning in convolutional neural networks"): iteration 0 is the fixed kernel (``T = I``), each
following one sets ``T = G^agop_power``, its small eigenvalues optionally set to 0, scaled so
that ``M = T^T T`` has the trace of the identity (the bandwidth keeps its meaning from one
iteration to the next).

With sample weights ``w`` every step is the weighted one: the ridge regression minimises
``sum_i w_i ||y_i - f(x_i)||^2 + lambda ||f||^2`` (:func:`kernel_ridge`) and the AGOP is the
``w``-weighted mean over images, so that an integer weight equals repeating the image.

The estimators :class:`skphase.ConvRFM` and :class:`skphase.ConvRFMRegressor` add the encoding
of the targets, the validation split, the choice of the iteration and the learned filters.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ._agop import as_image_weights
from ._patch_kernels import PatchKernel, psd_power, transform_patches

__all__ = ["RFMResult", "fit_rfm", "kernel_ridge"]


@dataclass
class RFMResult:
    """The models of the iterations of :func:`fit_rfm`, in order.

    The model of iteration ``t`` predicts ``K_t(x, Z) @ dual_coefs[t]``, ``Z`` the training
    images and ``K_t`` the patch kernel with the transform ``transforms[t]``. Each parameter
    is stored as an attribute of the same name.

    Parameters
    ----------
    transforms : list of torch.Tensor of shape (d, d)
        Patch transform ``T`` of each iteration (the identity first); ``M = T^T T``.
    dual_coefs : list of torch.Tensor of shape (n, n_outputs)
        Kernel ridge coefficients of each iteration, one row per training image.
    scores : list of float
        Validation score of each iteration (NaN without validation).
    agop_eigenvalues : list of torch.Tensor of shape (d,)
        Eigenvalues (ascending) of each computed patch AGOP: one fewer than the iterations.

    See Also
    --------
    fit_rfm : returns it.

    Examples
    --------
    >>> import torch
    >>> from skphase.nn import RFMResult
    >>> result = RFMResult(transforms=[torch.eye(9)], dual_coefs=[torch.zeros(4, 1)], scores=[float("nan")])
    >>> len(result.transforms), result.agop_eigenvalues
    (1, [])
    """

    transforms: list[torch.Tensor] = field(default_factory=list)
    dual_coefs: list[torch.Tensor] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    agop_eigenvalues: list[torch.Tensor] = field(default_factory=list)


def kernel_ridge(
    K: torch.Tensor, Y: torch.Tensor, alpha: float, sample_weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Solve kernel ridge regression for its dual coefficients, regularised relative to the largest kernel value.

    Minimises ``sum_i w_i ||y_i - f(x_i)||^2 + lambda ||f||^2`` over ``f = K(., X) coef``
    with ``lambda = alpha max|K|``, i.e. solves ``(K + lambda W^-1) coef = Y``. It is solved
    as ``(S K S / max|K| + alpha I) beta = S Y``, ``coef = S beta / max|K|`` with
    ``S = W^(1/2)``: the system stays symmetric and no weight is inverted, so a weight of 0
    gives its image the coefficient 0 exactly. Cholesky, or a general solve when it fails
    (least squares for ``alpha = 0``).

    Parameters
    ----------
    K : torch.Tensor of shape (n, n)
        Kernel matrix of the training images (symmetric PSD).
    Y : torch.Tensor of shape (n, n_outputs)
        Targets, in the dtype of ``K``.
    alpha : float
        Ridge regularisation relative to ``max|K|``.
    sample_weight : torch.Tensor of shape (n,) or None, default=None
        Non-negative weights ``w``; None weighs every image 1.

    Returns
    -------
    torch.Tensor of shape (n, n_outputs)
        The coefficients ``coef`` of the predictor ``f = K(., X) coef``, one row per training image.

    See Also
    --------
    fit_rfm : the recursive feature machine, which solves one such regression per iteration.
    PatchKernel.gram : the kernel matrix ``K`` of a patch kernel.

    Examples
    --------
    >>> import torch
    >>> from skphase.nn import kernel_ridge
    >>> K = torch.tensor([[1.0, 0.5], [0.5, 1.0]], dtype=torch.float64)
    >>> Y = torch.tensor([[1.0], [-1.0]], dtype=torch.float64)
    >>> coef = kernel_ridge(K, Y, alpha=0.0)  # no regularisation: interpolates Y
    >>> bool(torch.allclose(K @ coef, Y))
    True
    """
    scale = K.abs().max().clamp_min(torch.finfo(K.dtype).tiny)
    system = K / scale
    root = None
    if sample_weight is not None:
        root = as_image_weights(sample_weight, K.shape[0], K.device).sqrt().to(K.dtype)
        system.mul_(root[:, None]).mul_(root)
        Y = Y * root[:, None]
    system.diagonal().add_(alpha)
    factor, info = torch.linalg.cholesky_ex(system)
    if int(info) == 0:
        coef = torch.cholesky_solve(Y, factor)
    else:
        coef = torch.linalg.lstsq(system, Y).solution if alpha == 0 else torch.linalg.solve(system, Y)
    if root is not None:
        coef = coef * root[:, None]
    return coef / scale


def _next_transform(G, kernel, power, threshold):
    """``T = G^power`` with eigenvalues below ``threshold`` times the largest set to 0, trace-normalised."""
    T, eigvals = psd_power(G, power, return_eigenvalues=True)
    if threshold is not None:
        t_vals, t_vecs = torch.linalg.eigh(T)
        t_vals = torch.where(t_vals >= threshold * t_vals.max(), t_vals, torch.zeros_like(t_vals))
        T = (t_vecs * t_vals) @ t_vecs.T
    # Normalise M = T^T T to the trace of the identity, the fixed kernel's M:
    # the bandwidth keeps its meaning from one iteration to the next.
    trace = (T * T).sum()
    if not trace > 0:
        scale = ("" if kernel.kernel == "ntk" else
                 f" A bandwidth ({kernel.bandwidth:g}) far below the distances between patches (images of "
                 "large values, e.g. 0-255 pixels) makes the kernel vanish between distinct images: use "
                 "bandwidth='auto' or rescale the images (the estimators' 'auto' is 5 times "
                 "skphase.nn.median_patch_distance).")
        raise ValueError("The patch AGOP vanished (the predictor is constant)." + scale +
                         " Otherwise increase n_samples or decrease alpha.")
    return T * (T.shape[0] / trace).sqrt(), eigvals


def fit_rfm(
    kernel: PatchKernel,
    patches: torch.Tensor,
    targets: torch.Tensor,
    *,
    n_iter: int = 3,
    alpha: float = 1e-3,
    agop_power: float = 0.5,
    agop_threshold: float | None = None,
    sample_weight: torch.Tensor | None = None,
    agop_max_samples: int | None = None,
    generator: torch.Generator | None = None,
    validation: tuple[torch.Tensor, Callable[[torch.Tensor], float]] | None = None,
    callback: Callable[[int, float], None] | None = None,
) -> RFMResult:
    """Fit the ``n_iter + 1`` models of a recursive feature machine on the patches of training images.

    Parameters
    ----------
    kernel : PatchKernel
        The patch kernel (its ``grid`` must match ``patches`` for the NTK).
    patches : torch.Tensor of shape (n, P, d)
        Patches of the training images (:meth:`PatchKernel.patches`); they are the centres of every model.
    targets : torch.Tensor of shape (n, n_outputs)
        Ridge targets, in the dtype and on the device of ``patches``.
    n_iter : int, default=3
        Number of AGOP updates; none is computed after the last model.
    alpha : float, default=1e-3
        Ridge regularisation relative to the largest kernel value (:func:`kernel_ridge`).
    agop_power : float, default=0.5
        ``T = G^agop_power``.
    agop_threshold : float or None, default=None
        Eigenvalues of ``T`` below ``agop_threshold`` times the largest are set to 0.
    sample_weight : torch.Tensor of shape (n,) or None, default=None
        Weights of the training images in the ridge loss and in the AGOP mean; None weighs
        every image 1.
    agop_max_samples : int or None, default=None
        Take the AGOP at this many training images drawn at random (every image stays a centre);
        None takes it at all of them.
    generator : torch.Generator or None, default=None
        CPU generator of those draws; None uses torch's global generator.
    validation : tuple (patches_val, score) or None, default=None
        Patches ``(n_val, P, d)`` of held-out images and a function of the models' outputs on them
        (a tensor ``(n_val, n_outputs)``) returning a float, higher is better; None scores no model.
    callback : callable or None, default=None
        ``callback(iteration, score)`` after each model is fitted (e.g. to report progress).

    Returns
    -------
    RFMResult
        The patch transform, dual coefficients and validation score of each model, and the
        eigenvalues of each AGOP.

    See Also
    --------
    PatchKernel : the kernel and its patch AGOP.
    kernel_ridge : the regression of each iteration.
    skphase.ConvRFM : the classifier built on it, with the choice of the iteration.

    Examples
    --------
    A hidden filter ``w``: the target is the mean over 3 x 3 patches of ``(w . patch)^2``.

    >>> import torch
    >>> from skphase.nn import PatchKernel, fit_rfm, transform_patches
    >>> g = torch.Generator().manual_seed(0)
    >>> X = torch.randn(200, 1, 6, 6, generator=g, dtype=torch.float64)
    >>> w = torch.nn.functional.normalize(torch.randn(9, generator=g, dtype=torch.float64), dim=0)
    >>> kernel = PatchKernel("laplace", bandwidth=15.0, patch_size=3, grid=(4, 4))
    >>> patches = kernel.patches(X)
    >>> y = ((patches @ w) ** 2).mean(1, keepdim=True)
    >>> result = fit_rfm(kernel, patches, y, n_iter=3)
    >>> T = result.transforms[-1]
    >>> top = torch.linalg.eigh(T.T @ T).eigenvectors[:, -1]  # the learned direction of M
    >>> bool(abs(top @ w) > 0.9)
    True
    >>> outputs = kernel.gram(transform_patches(kernel.patches(X[:5]), T), transform_patches(patches, T))
    >>> (outputs @ result.dual_coefs[-1]).shape
    torch.Size([5, 1])
    """
    n, _, d = patches.shape
    weights = None if sample_weight is None else as_image_weights(sample_weight, n, patches.device)
    result = RFMResult()
    T = torch.eye(d, device=patches.device, dtype=patches.dtype)
    for iteration in range(n_iter + 1):
        # Iteration 0 has T = I: skip the product, which would copy every patch once more.
        T_apply = None if iteration == 0 else T
        A = transform_patches(patches, T_apply)
        coef = kernel_ridge(kernel.gram(A), targets, alpha, weights)
        result.transforms.append(T)
        result.dual_coefs.append(coef)
        score = math.nan
        if validation is not None:
            patches_val, scorer = validation
            score = float(scorer(kernel.gram(transform_patches(patches_val, T_apply), A) @ coef))
        result.scores.append(score)
        if callback is not None:
            callback(iteration, score)
        if iteration == n_iter:
            break
        rows, row_weights = patches, weights
        if agop_max_samples is not None and agop_max_samples < n:
            subset = torch.randperm(n, generator=generator)[:agop_max_samples].to(patches.device)
            rows = patches[subset]
            row_weights = None if weights is None else weights[subset]
        # The same tensor as rows and centres lets the closed form use the symmetry of its weights.
        G = kernel.agop(rows, patches, coef, T=T_apply, sample_weight=row_weights)
        T, eigvals = _next_transform(G, kernel, agop_power, agop_threshold)
        result.agop_eigenvalues.append(eigvals)
    return result
