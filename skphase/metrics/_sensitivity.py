"""Sensitivity of representations to diffeomorphisms (D), to noise (G), and their ratio R = D / G.

Following Petrini, Favero, Geiger, Wyart (NeurIPS 2021) and Tomasini et al. (2022), for a
representation ``f`` (a layer, or a model's output), test images ``x`` and random pairs ``(x, z)``:

    D_f = E ||f(tau x) - f(x)||^2  / E ||f(x) - f(z)||^2
    G_f = E ||f(x + eta) - f(x)||^2 / E ||f(x) - f(z)||^2
    R_f = D_f / G_f

with ``tau`` a max-entropy random diffeomorphism and ``eta`` isotropic Gaussian noise of the same
norm as ``tau x - x``, per image. Images are processed in batches of ``batch_size``: only per-image
scalars are kept, so memory is bounded by the batch, and the confidence intervals come from a
bootstrap over images of these scalars.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from numpy.typing import ArrayLike

from ..nn import matched_noise, random_deform
from ..utils import make_generator
from ..utils._docs import fill_docstring
from ..utils._torch import seed_from_random_state
from ._probes import ModelProbe

__all__ = ["relative_stability", "diffeo_sensitivity", "noise_sensitivity", "layerwise_sensitivity"]

_QUANTITIES = ("D", "G", "R")


class _SquaredDistances(NamedTuple):
    """Per-image squared distances of one representation ``f``, in the order every step keeps.

    Each field is one value per image (a tensor while a batch is measured, then arrays over all
    images).
    """

    #: ``||f(tau x) - f(x)||^2``, averaged over the repeats: the numerator of D.
    deformation: object
    #: ``||f(x + eta) - f(x)||^2``, averaged over the repeats: the numerator of G.
    noise: object
    #: ``||f(x) - f(z)||^2`` for the random partner ``z`` of ``x``: the denominator of D and G.
    pair: object
    #: ``||f(x)||^2``: the scale against which ``pair`` counts as numerically zero.
    norm: object


def _sq_norm(t):
    # A norm in the features' precision (careful summation), squared in float64: no float64 copy
    # of a whole layer, so the working memory stays a few feature maps of one batch.
    return torch.linalg.vector_norm(t, dim=1).double().pow(2)


def _sq_dist(a, b):
    return _sq_norm(a - b)


def _derangement(n, rng):
    """A random pairing i -> partner(i) != i of n >= 2 items (a random cyclic order)."""
    order = rng.permutation(n)
    partner = np.empty(n, dtype=np.int64)
    partner[order] = np.roll(order, -1)
    return torch.from_numpy(partner)


# ----------------------------------------------------------------------------------------------
# Accumulation and statistics
# ----------------------------------------------------------------------------------------------
def _bootstrap_ratio(num, den, n_bootstraps, confidence, rng, chunk=64):
    """Percentile interval of sum(num[idx]) / sum(den[idx]) over resampled images."""
    if n_bootstraps == 0:
        return np.nan, np.nan
    n = num.shape[0]
    ratios = []
    for start in range(0, n_bootstraps, chunk):
        idx = rng.integers(0, n, size=(min(chunk, n_bootstraps - start), n))
        with np.errstate(divide="ignore", invalid="ignore"):
            ratios.append(num[idx].sum(axis=1) / den[idx].sum(axis=1))
    ratios = np.concatenate(ratios)
    alpha = (1 - confidence) / 2
    return tuple(float(v) for v in np.nanquantile(ratios, [alpha, 1 - alpha]))


def _summarise(name, distances, *, n_bootstraps, confidence, rng, on_degenerate):
    """One table row from the :class:`_SquaredDistances` of a representation over all images."""
    row = {"layer": name, "n_images": int(distances.pair.shape[0])}
    pair, scale = distances.pair.sum(), distances.norm.sum()
    # A representation that (numerically) does not vary over the inputs leaves D and G as 0/0.
    if pair <= 1e-12 * scale or pair == 0:
        message = (
            f"Representation {name!r} is constant over the inputs (mean distance between random pairs "
            f"{pair / max(len(distances.pair), 1):.3g}): D, G and R are 0/0 and undefined."
        )
        if on_degenerate == "raise":
            raise ValueError(message + " Measure a representation that depends on its input.")
        warnings.warn(message + " Its row is NaN.", RuntimeWarning, stacklevel=4)
        return {**row, **{f"{q}{suffix}": np.nan for q in _QUANTITIES for suffix in ("", "_low", "_high")}}
    ratios = {
        "D": (distances.deformation, distances.pair),
        "G": (distances.noise, distances.pair),
        "R": (distances.deformation, distances.noise),
    }
    for q, (num, den) in ratios.items():
        with np.errstate(divide="ignore", invalid="ignore"):
            row[q] = float(num.sum() / den.sum())
        row[f"{q}_low"], row[f"{q}_high"] = _bootstrap_ratio(num, den, n_bootstraps, confidence, rng)
    if distances.noise.sum() == 0:
        warnings.warn(
            f"Representation {name!r} does not change under the matched noise (G = 0): R = D / G is "
            f"{'infinite' if distances.deformation.sum() > 0 else 'undefined'}.",
            RuntimeWarning,
            stacklevel=4,
        )
    return row


def _sensitivity_table(
    model,
    X,
    *,
    layers,
    include_input,
    include_output,
    perturbation,
    cutoff,
    temperature,
    displacement,
    interpolation,
    n_repeats,
    batch_size,
    device,
    random_state,
    n_bootstraps,
    confidence,
    image_shape,
    on_degenerate,
):
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence!r}.")
    if n_repeats < 1 or n_bootstraps < 0 or batch_size < 2:
        raise ValueError(
            f"Need n_repeats >= 1, n_bootstraps >= 0 and batch_size >= 2 (random pairs are drawn within a "
            f"batch); got {n_repeats}, {n_bootstraps}, {batch_size}."
        )
    probe = ModelProbe(model, X, image_shape=image_shape, min_samples=2, device=device, layers=layers)
    images = probe.images
    n = images.shape[0]
    batch_size = probe.batch_size(batch_size, minimum=2)
    rng = np.random.default_rng(seed_from_random_state(random_state))
    generator = make_generator(random_state)
    if perturbation is None:
        def perturbation(x, generator):
            return random_deform(
                x, cutoff=cutoff, temperature=temperature, displacement=displacement,
                interpolation=interpolation, generator=generator,
            )

    def representations(x):
        return probe.representations(x, include_input=include_input, include_output=include_output)

    # Random order, then batches of near-equal size (every batch has >= 2 images for the pairs).
    order = rng.permutation(n)
    n_batches = -(-n // batch_size)
    parts = {}
    with probe:
        for chunk in np.array_split(order, n_batches):
            x = images[torch.from_numpy(chunk)].to(probe.device)
            clean = representations(x)
            partner = _derangement(len(chunk), rng).to(probe.device)
            batch = {name: {"deformation": 0.0, "noise": 0.0, "pair": _sq_dist(f, f[partner.to(f.device)]),
                            "norm": _sq_norm(f)} for name, f in clean.items()}
            for _ in range(n_repeats):
                x_def = perturbation(x, generator)
                x_noise = x + matched_noise(x, x_def, generator=generator)
                # One perturbed forward pass at a time: at most two sets of feature maps are alive.
                for field, perturbed in (("deformation", x_def), ("noise", x_noise)):
                    for name, f in representations(perturbed).items():
                        batch[name][field] = batch[name][field] + _sq_dist(f, clean[name]) / n_repeats
            for name, values in batch.items():
                parts.setdefault(name, []).append(
                    np.stack([values[field].cpu().numpy() for field in _SquaredDistances._fields])
                )
    rows = []
    for name, stacks in parts.items():
        rows.append(_summarise(name, _SquaredDistances(*np.concatenate(stacks, axis=1)), n_bootstraps=n_bootstraps,
                               confidence=confidence, rng=rng, on_degenerate=on_degenerate))
    return rows


_COMMON_DOC = """
    perturbation : callable, optional
        ``perturbation(x, generator) -> x'`` on ``(b, C, H, W)`` batches, replacing the random
        diffeomorphism (e.g. a shift); the noise is matched to its norm in the same way.
    cutoff : int, default=3
        Cut-off ``c >= 2`` of the diffeomorphisms.
    temperature : float, optional
        Temperature of the diffeomorphisms (warns above ``T_max``).
    displacement : float, optional
        Typical displacement in pixels when ``temperature`` is None (default 1 pixel, as the papers).
    interpolation : {"bilinear", "nearest"}, default="bilinear"
    n_repeats : int, default=1
        Diffeomorphisms (and noises) drawn per image; their squared distances are averaged.
    batch_size : int, default=128
        Images processed at a time; bounds memory. Random pairs are drawn within a batch.
    device : str or torch.device, optional
        For a torch module, where the batches are sent: the device of its parameters (the default).
    random_state : int, RandomState or None
        Seeds the diffeomorphisms, the noise, the pairs and the bootstrap.
    n_bootstraps : int, default=1000
        Resamplings of the images for the confidence intervals (0: no intervals).
    confidence : float, default=0.95
        Level of the bootstrap confidence intervals.
    image_shape : tuple, optional
        ``(C, H, W)`` of flat input rows.
"""


def relative_stability(
    model: object,
    X: ArrayLike,
    *,
    perturbation: Callable | None = None,
    cutoff: int = 3,
    temperature: float | None = None,
    displacement: float | None = None,
    interpolation: str = "bilinear",
    n_repeats: int = 1,
    batch_size: int = 128,
    device: str | torch.device | None = None,
    random_state: int | np.random.RandomState | None = None,
    n_bootstraps: int = 1000,
    confidence: float = 0.95,
    image_shape: tuple[int, ...] | None = None,
) -> dict[str, Any]:
    """Diffeomorphism sensitivity D, noise sensitivity G and relative stability R = D / G of a model.

    Parameters
    ----------
    model : torch.nn.Module, fitted transformer or pipeline (prefix), or callable
        Read through :func:`skphase.metrics.as_batch_function`; it is called on batches
        shaped like ``X`` (flat rows stay flat).
    X : array-like or torch.Tensor
        Test images ``(n, C, H, W)``, ``(n, H, W)`` or flat ``(n, d)`` with ``image_shape``; n >= 2.
    {common}

    Returns
    -------
    dict
        ``{"layer": "output", "n_images", "D", "D_low", "D_high", "G", "G_low", "G_high", "R",
        "R_low", "R_high"}``, with ``*_low``/``*_high`` the bootstrap confidence interval.

    Raises
    ------
    ValueError
        If the representation is constant over the inputs (D and G would be 0/0).

    See Also
    --------
    diffeo_sensitivity, noise_sensitivity : D and G alone.
    layerwise_sensitivity : the same at every layer of a model.

    Examples
    --------
    >>> import torch
    >>> X = torch.rand(64, 1, 16, 16)
    >>> row = relative_stability(torch.nn.Identity(), X, random_state=0, n_bootstraps=100)
    >>> round(row["R"], 6)  # the noise is norm-matched, so the identity has G = D
    1.0
    """
    (row,) = _sensitivity_table(
        model, X, layers=False, include_input=False, include_output=True, perturbation=perturbation,
        cutoff=cutoff, temperature=temperature, displacement=displacement, interpolation=interpolation,
        n_repeats=n_repeats, batch_size=batch_size, device=device, random_state=random_state,
        n_bootstraps=n_bootstraps, confidence=confidence, image_shape=image_shape, on_degenerate="raise",
    )
    return row


def diffeo_sensitivity(model: object, X: ArrayLike, **kwargs: Any) -> float:
    """``D_f``: mean squared change under random diffeomorphisms, over that between random pairs.

    Parameters
    ----------
    model : torch.nn.Module, fitted transformer or pipeline (prefix), or callable
        The model, as in :func:`relative_stability`.
    X : array-like or torch.Tensor
        Test images, as in :func:`relative_stability`.
    **kwargs
        The keyword arguments of :func:`relative_stability`.

    Returns
    -------
    float
        ``D``, the sensitivity to diffeomorphisms.

    See Also
    --------
    relative_stability : D, G and their ratio R with confidence intervals.
    noise_sensitivity : the sensitivity to the matched noise, G.

    Examples
    --------
    >>> import torch
    >>> X = torch.rand(32, 1, 16, 16)
    >>> gap = lambda x: x.mean(dim=(2, 3))  # global average pooling barely sees a deformation
    >>> diffeo_sensitivity(gap, X, random_state=0, n_bootstraps=0) < diffeo_sensitivity(
    ...     torch.nn.Identity(), X, random_state=0, n_bootstraps=0)
    True
    """
    return relative_stability(model, X, **kwargs)["D"]


def noise_sensitivity(model: object, X: ArrayLike, **kwargs: Any) -> float:
    """``G_f``: mean squared change under the matched noise, over that between random pairs.

    Parameters
    ----------
    model : torch.nn.Module, fitted transformer or pipeline (prefix), or callable
        The model, as in :func:`relative_stability`.
    X : array-like or torch.Tensor
        Test images, as in :func:`relative_stability`.
    **kwargs
        The keyword arguments of :func:`relative_stability`.

    Returns
    -------
    float
        ``G``, the sensitivity to matched noise.

    See Also
    --------
    relative_stability : D, G and their ratio R with confidence intervals.
    diffeo_sensitivity : the sensitivity to diffeomorphisms, D.

    Examples
    --------
    >>> import torch
    >>> from skphase.metrics import noise_sensitivity
    >>> X = torch.rand(32, 1, 16, 16)
    >>> noise_sensitivity(torch.nn.Identity(), X, random_state=0, n_bootstraps=0) > 0
    True
    """
    return relative_stability(model, X, **kwargs)["G"]


def layerwise_sensitivity(
    model: object,
    X: ArrayLike,
    *,
    layers: Sequence[str] | str | Callable | None = None,
    include_input: bool = True,
    include_output: bool = False,
    perturbation: Callable | None = None,
    cutoff: int = 3,
    temperature: float | None = None,
    displacement: float | None = None,
    interpolation: str = "bilinear",
    n_repeats: int = 1,
    batch_size: int = 128,
    device: str | torch.device | None = None,
    random_state: int | np.random.RandomState | None = None,
    n_bootstraps: int = 1000,
    confidence: float = 0.95,
    image_shape: tuple[int, ...] | None = None,
) -> list[dict[str, Any]]:
    """D, G and R at every layer of a model, as a tidy table (one dict per representation).

    Parameters
    ----------
    model : torch.nn.Module, fitted estimator with a torch ``module_``, or any other model
        Layers are read with :class:`skphase.metrics.LayerCapture` on the module (for a
        fitted skphase estimator, on ``model.module_`` while its ``transform`` runs, so each block
        of a ``ScatteringPhaseCollapse`` is measured). Other models give the input and output rows.
    X : array-like or torch.Tensor
        Test images; see :func:`relative_stability`.
    layers : None, list of str or callable
        As in :func:`skphase.metrics.resolve_layers`. None takes the blocks flagged
        ``is_representation_layer`` when the model has any (the blocks of a skphase network), else
        every Conv/Linear layer.
    include_input : bool, default=True
        Add a row ``"input"`` for the images themselves (the identity map: D = G there, R = 1).
    include_output : bool, default=False
        Add a row ``"output"`` for what the model returns (always present for models without layers).
    {common}

    Returns
    -------
    list of dict
        One row per representation in forward order, keys as in :func:`relative_stability`
        (``pandas.DataFrame(rows)`` makes a data frame). A representation constant over the
        inputs gets NaN values and a ``RuntimeWarning``.

    See Also
    --------
    relative_stability : the same on the output of a model only.
    layerwise_class_separation : the class separation of every layer.

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Conv2d(4, 4, 3))
    >>> rows = layerwise_sensitivity(net, torch.rand(32, 1, 16, 16), random_state=0, n_bootstraps=50)
    >>> [row["layer"] for row in rows]
    ['input', '0', '2']
    """
    return _sensitivity_table(
        model, X, layers=layers, include_input=include_input, include_output=include_output,
        perturbation=perturbation, cutoff=cutoff,
        temperature=temperature, displacement=displacement, interpolation=interpolation, n_repeats=n_repeats,
        batch_size=batch_size, device=device, random_state=random_state, n_bootstraps=n_bootstraps,
        confidence=confidence, image_shape=image_shape, on_degenerate="warn",
    )


fill_docstring(relative_stability, layerwise_sensitivity, common=_COMMON_DOC)
