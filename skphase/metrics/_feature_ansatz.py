"""The convolutional neural feature ansatz: filter covariance against the patch AGOP of a CNN.

For a conv layer with filters ``W`` (``out_channels x C q^2``), the ansatz of
Radhakrishnan et al. says that ``W^T W`` is proportional to the patch AGOP

    G = (1/n) sum_x sum_p sum_c grad_{x_p} f_c(x) grad_{x_p} f_c(x)^T

of the network ``f`` with respect to the patches ``x_p`` of the layer's
input. The gradients are taken with respect to real patch tensors: a forward
hook (a :class:`~skphase.metrics.LayerCapture` of the model's probe)
replaces the layer's output by ``unfold(input) @ W^T + b`` computed from
patches that require gradients (the same :func:`extract_patches` that the
patch kernels use), so ``grad_{x_p} f`` treats each patch as its own variable.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike

from ..nn import extract_patches, psd_sqrt
from ..utils._torch import iter_batches
from ._probes import ModelProbe, resolve_layers

__all__ = ["matrix_cosine_similarity", "nfa_correlation", "pearson_matrix_correlation"]


def _as_flat_float64(M):
    return torch.as_tensor(np.asarray(M) if not isinstance(M, torch.Tensor) else M, dtype=torch.float64).flatten()


def matrix_cosine_similarity(A: ArrayLike, B: ArrayLike, *, centered: bool = False) -> float:
    """Cosine of the angle between two matrices seen as vectors of entries.

    Parameters
    ----------
    A, B : array-like or torch.Tensor of the same size
        The two matrices.
    centered : bool, default=False
        Subtract each matrix's mean entry first (then it is the Pearson
        correlation of the entries, :func:`pearson_matrix_correlation`).
        Uncentred, it is the measure of the feature-ansatz authors' code,
        ``sum(A * B) / (||A|| ||B||)``.

    Returns
    -------
    float
        In ``[-1, 1]``; NaN when either matrix is zero (constant, if centred).

    See Also
    --------
    pearson_matrix_correlation : the centred measure.
    nfa_correlation : the feature-ansatz correlations of a CNN.

    Examples
    --------
    >>> import numpy as np
    >>> round(matrix_cosine_similarity(np.eye(2), np.ones((2, 2))), 6)
    0.707107
    """
    a, b = _as_flat_float64(A), _as_flat_float64(B)
    if a.shape != b.shape:
        raise ValueError(f"Matrices of different sizes: {a.numel()} and {b.numel()} entries.")
    if centered:
        a, b = a - a.mean(), b - b.mean()
    denom = a.norm() * b.norm()
    if not denom > 0:
        return float("nan")
    return float(a @ b / denom)


def pearson_matrix_correlation(A: ArrayLike, B: ArrayLike) -> float:
    """Pearson correlation of the entries of two matrices (cosine of the mean-subtracted matrices).

    Parameters
    ----------
    A, B : array-like or torch.Tensor of the same size
        The two matrices.

    Returns
    -------
    float
        In ``[-1, 1]``; NaN when either matrix is constant.

    See Also
    --------
    matrix_cosine_similarity : the same measure with ``centered=True``, or uncentred.

    Examples
    --------
    >>> import numpy as np
    >>> round(pearson_matrix_correlation(np.eye(3), 2 * np.eye(3) + 1), 6)
    1.0
    """
    return matrix_cosine_similarity(A, B, centered=True)


def _conv_layers(model, layers):
    chosen = resolve_layers(model, layers)
    convs = {name: layer for name, layer in chosen.items() if isinstance(layer, torch.nn.Conv2d)}
    if layers is not None and len(convs) != len(chosen):
        others = [name for name in chosen if name not in convs]
        raise ValueError(f"nfa_correlation measures Conv2d layers; {others} are not Conv2d.")
    if not convs:
        raise ValueError(f"{type(model).__name__} has no Conv2d layer to measure.")
    for name, conv in convs.items():
        if conv.groups != 1 or conv.dilation != (1, 1) or not isinstance(conv.padding, tuple) or \
                conv.padding_mode != "zeros":
            raise ValueError(f"Layer {name!r}: only ungrouped, undilated convolutions with numeric zero padding "
                             "are supported.")
    return convs


def _patch_inputs(conv, inputs, output):
    """A conv's output recomputed from its input patches, which are recorded (and differentiable).

    For :class:`~skphase.metrics.LayerCapture`: returns ``(patches, new_output)``.
    """
    # Not detached: the gradient reaching an earlier layer's patches flows through these.
    patches = extract_patches(inputs, conv.kernel_size, stride=conv.stride, padding=conv.padding)
    if not patches.requires_grad:
        patches.requires_grad_(True)
    flat = patches @ conv.weight.detach().reshape(conv.out_channels, -1).T
    if conv.bias is not None:
        flat = flat + conv.bias.detach()
    return patches, flat.transpose(1, 2).reshape(output.shape)


def nfa_correlation(
    model: object,
    X: ArrayLike,
    *,
    layers: Sequence[str] | None = None,
    batch_size: int = 64,
    device: str | torch.device | None = None,
    return_agop: bool = False,
) -> dict[str, dict[str, Any]]:
    """Feature-ansatz correlation of each conv layer of a torch CNN.

    Parameters
    ----------
    model : torch.nn.Module
        Maps image batches to outputs ``(n, n_outputs)`` (e.g. logits); put
        in eval mode while measuring (then restored). It is called on batches
        shaped like ``X``, in the dtype of its parameters.
    X : array-like or torch.Tensor of shape (n, C, H, W), (n, H, W) or flat (n, d)
        Images over which the AGOP is averaged.
    layers : None or list of str
        Conv2d layer names (``model.named_modules()``); None takes all.
    batch_size : int, default=64
        Images per forward and backward pass.
    device : str, torch.device or None
        Where to run; None uses the model's device.
    return_agop : bool, default=False
        Also return each layer's patch AGOP and filter covariance.

    Returns
    -------
    dict
        ``{layer_name: {"correlation": corr(W^T W, G), "correlation_sqrt": corr((W^T W)^(1/2), G),
        "cosine": cos(W^T W, G)}}``: Pearson correlations over entries, and the uncentred
        cosine that the authors' code reports; plus ``"agop"`` and ``"filter_covariance"``
        (numpy arrays) when ``return_agop``.

    See Also
    --------
    matrix_cosine_similarity, pearson_matrix_correlation : the measures it reports.

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(),
    ...                           torch.nn.Linear(4 * 6 * 6, 2))
    >>> result = nfa_correlation(net, torch.rand(8, 1, 8, 8))
    >>> sorted(result["0"])
    ['correlation', 'correlation_sqrt', 'cosine']
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"nfa_correlation needs a torch nn.Module, got {type(model).__name__}.")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    convs = _conv_layers(model, layers)
    probe = ModelProbe(model, X, device=device, layers=convs)
    images = probe.images
    agops: dict[str, torch.Tensor | None] = {name: None for name in convs}
    with probe, probe.capture(capture=_patch_inputs, detach=False) as patches, torch.enable_grad():
        for batch in iter_batches(images.shape[0], batch_size):
            x = images[batch]
            outputs = probe.output(x, grad=True).reshape(x.shape[0], -1)
            names = list(patches.outputs)
            for c in range(outputs.shape[1]):
                grads = torch.autograd.grad(outputs[:, c].sum(), [patches.outputs[n] for n in names],
                                            retain_graph=c < outputs.shape[1] - 1, allow_unused=True)
                for name, grad in zip(names, grads):
                    if grad is None:
                        continue
                    flat = grad.reshape(-1, grad.shape[-1]).double()
                    update = flat.T @ flat
                    total = agops[name]
                    agops[name] = update if total is None else total + update
    result = {}
    for name, conv in convs.items():
        agop = agops[name]
        if agop is None or not agop.abs().max() > 0:
            # No gradient path, or a path whose gradient vanishes everywhere (e.g. zero weights after it).
            raise ValueError(f"The output of {type(model).__name__} does not depend on layer {name!r} "
                             "on these images (its patch AGOP is zero); a correlation with it is undefined.")
        G = agop.cpu() / images.shape[0]
        W = conv.weight.detach().reshape(conv.out_channels, -1).double().cpu()
        cov = W.T @ W
        entry = {"correlation": pearson_matrix_correlation(cov, G),
                 "correlation_sqrt": pearson_matrix_correlation(psd_sqrt(cov), G),
                 "cosine": matrix_cosine_similarity(cov, G)}
        if return_agop:
            entry["agop"] = G.numpy()
            entry["filter_covariance"] = cov.numpy()
        result[name] = entry
    return result
