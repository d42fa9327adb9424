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

import warnings

import numpy as np
import torch

from ..nn._diffeo import matched_noise, random_deform
from ..utils import check_images, make_generator, resolve_device, seed_from_random_state
from ..utils._docs import fill_docstring
from ._probes import LayerCapture, as_batch_function

__all__ = ["relative_stability", "diffeo_sensitivity", "noise_sensitivity", "layerwise_sensitivity"]

_QUANTITIES = ("D", "G", "R")


# ----------------------------------------------------------------------------------------------
# Model access: every representation is read through the shared probes.
# ----------------------------------------------------------------------------------------------
def _capture_target(model):
    """The torch module whose sub-modules can be hooked, or None."""
    if isinstance(model, torch.nn.Module):
        return model
    module = getattr(model, "module_", None)  # fitted skphase estimators keep their network here
    return module if isinstance(module, torch.nn.Module) else None


def _layered_target(model, layers):
    """:func:`_capture_target`, refusing a layer selection on a model without hookable layers."""
    capture = _capture_target(model)
    if capture is None and layers is not None:
        raise TypeError(
            f"Cannot read layers {layers!r} of a {type(model).__name__}: layer-wise measurements need a "
            "torch nn.Module or a fitted estimator with a torch model in `module_`."
        )
    return capture


def _module_device(model, device):
    if device is not None or not isinstance(model, torch.nn.Module):
        return resolve_device(device) if device is not None else None
    tensors = list(model.parameters()) + list(model.buffers())
    return tensors[0].device if tensors else torch.device("cpu")


class _Representations:
    """Calls a model on a batch and returns ``{name: (b, d) tensor}`` for the requested representations."""

    def __init__(self, model, *, layers, include_input, include_output, input_ndim, device):
        self.input_ndim = input_ndim
        self.include_input = include_input
        self.include_output = include_output
        self.device = _module_device(model, device)
        # as_batch_function puts modules in eval mode; remember the mode to give it back afterwards.
        self._module = _capture_target(model)
        self._was_training = getattr(self._module, "training", False)
        self.fn = as_batch_function(model, device=self.device) if isinstance(model, torch.nn.Module) else (
            as_batch_function(model)
        )
        self.capture_module = None
        if layers is not False:
            self.capture_module = _capture_target(model)
            if self.capture_module is None and layers is not None:
                raise TypeError(
                    f"Cannot read layers {layers!r} of a {type(model).__name__}: layer-wise measurements need a "
                    "torch nn.Module or a fitted estimator with a torch model in `module_`; pass layers=False "
                    "to measure the output only."
                )
        if layers is None and self.capture_module is not None:
            layers = _default_layers(self.capture_module)
        self.layers = layers
        self.max_batch = getattr(model, "batch_size", None) if not isinstance(model, torch.nn.Module) else None

    def restore(self):
        if self._was_training:
            self._module.train(True)

    def _as_model_input(self, batch):
        # The model sees batches shaped like the X it was given (flat stays flat).
        if self.input_ndim == 2:
            return batch.flatten(1)
        if self.input_ndim == 3 and batch.shape[1] == 1:
            return batch[:, 0]
        return batch

    def __call__(self, batch):
        reps = {}
        if self.include_input:
            reps["input"] = batch
        if self.capture_module is None:
            reps["output"] = self.fn(self._as_model_input(batch))
            return {name: _flat(t) for name, t in reps.items()}
        with LayerCapture(self.capture_module, self.layers) as capture:
            out = self.fn(self._as_model_input(batch))
        for name in capture.layers:
            if name not in capture.outputs:
                raise RuntimeError(f"Layer {name!r} was not called during the forward pass; it cannot be measured.")
            value = capture.outputs[name]
            if value.shape[0] != batch.shape[0]:
                raise RuntimeError(
                    f"Layer {name!r} recorded {value.shape[0]} samples for a batch of {batch.shape[0]}: the model "
                    "splits batches internally; pass a batch_size no larger than the model's own."
                )
            reps[name] = value
        if self.include_output:
            reps["output"] = out
        return {name: _flat(t) for name, t in reps.items()}


def _default_layers(module):
    """The blocks flagged ``is_representation_layer`` when a model has any, else None (every Conv/Linear).

    A skphase network's blocks contain their own convolutions; measuring the blocks, not the
    convolutions inside them, is what a layer-by-layer study of such a network means.
    """
    flagged = any(getattr(sub, "is_representation_layer", False) for sub in module.modules())
    return (lambda name, sub: getattr(sub, "is_representation_layer", False)) if flagged else None


def _flat(t):
    t = t if isinstance(t, torch.Tensor) else torch.as_tensor(np.asarray(t))
    t = t.reshape(t.shape[0], -1)
    if t.is_complex():
        t = torch.view_as_real(t).flatten(1)
    return t


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


def _summarise(name, d, g, p, s, *, n_bootstraps, confidence, rng, on_degenerate):
    """One table row from per-image squared distances (diffeo d, noise g, pairs p, norms s)."""
    row = {"layer": name, "n_images": int(d.shape[0])}
    pair, scale = p.sum(), s.sum()
    # A representation that (numerically) does not vary over the inputs leaves D and G as 0/0.
    if pair <= 1e-12 * scale or pair == 0:
        message = (
            f"Representation {name!r} is constant over the inputs (mean distance between random pairs "
            f"{pair / max(len(p), 1):.3g}): D, G and R are 0/0 and undefined."
        )
        if on_degenerate == "raise":
            raise ValueError(message + " Measure a representation that depends on its input.")
        warnings.warn(message + " Its row is NaN.", RuntimeWarning, stacklevel=4)
        return {**row, **{f"{q}{suffix}": np.nan for q in _QUANTITIES for suffix in ("", "_low", "_high")}}
    pairs = {"D": (d, p), "G": (g, p), "R": (d, g)}
    for q, (num, den) in pairs.items():
        with np.errstate(divide="ignore", invalid="ignore"):
            row[q] = float(num.sum() / den.sum())
        row[f"{q}_low"], row[f"{q}_high"] = _bootstrap_ratio(num, den, n_bootstraps, confidence, rng)
    if g.sum() == 0:
        warnings.warn(
            f"Representation {name!r} does not change under the matched noise (G = 0): R = D / G is "
            f"{'infinite' if d.sum() > 0 else 'undefined'}.",
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
    input_ndim = np.ndim(X) if not isinstance(X, torch.Tensor) else X.ndim
    images = check_images(X, image_shape=image_shape, min_samples=2)
    n = images.shape[0]
    reps = _Representations(
        model, layers=layers, include_input=include_input, include_output=include_output,
        input_ndim=input_ndim, device=device,
    )
    if reps.max_batch is not None:
        batch_size = max(2, min(batch_size, int(reps.max_batch)))
    rng = np.random.default_rng(seed_from_random_state(random_state))
    generator = make_generator(random_state)
    if perturbation is None:
        def perturbation(x, generator):
            return random_deform(
                x, cutoff=cutoff, temperature=temperature, displacement=displacement,
                interpolation=interpolation, generator=generator,
            )

    # Random order, then batches of near-equal size (every batch has >= 2 images for the pairs).
    order = rng.permutation(n)
    n_batches = -(-n // batch_size)
    stats = {}
    work_device = reps.device if reps.device is not None else torch.device("cpu")
    try:
        for chunk in np.array_split(order, n_batches):
            x = images[torch.from_numpy(chunk)].to(work_device)
            clean = reps(x)
            partner = _derangement(len(chunk), rng).to(work_device)
            acc = {name: [_sq_dist(f, f[partner.to(f.device)]), _sq_norm(f), 0.0, 0.0]
                   for name, f in clean.items()}
            for _ in range(n_repeats):
                x_def = perturbation(x, generator)
                x_noise = x + matched_noise(x, x_def, generator=generator)
                # One perturbed forward pass at a time: at most two sets of feature maps are alive.
                for slot, perturbed in ((2, x_def), (3, x_noise)):
                    for name, f in reps(perturbed).items():
                        acc[name][slot] = acc[name][slot] + _sq_dist(f, clean[name]) / n_repeats
            for name, (p, s, d, g) in acc.items():
                stats.setdefault(name, []).append(
                    np.stack([t.cpu().numpy() for t in (d, g, p, s)])
                )
    finally:
        reps.restore()
    rows = []
    for name, parts in stats.items():
        d, g, p, s = np.concatenate(parts, axis=1)
        rows.append(_summarise(
            name, d, g, p, s, n_bootstraps=n_bootstraps, confidence=confidence, rng=rng, on_degenerate=on_degenerate,
        ))
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
    image_shape : tuple, optional
        ``(C, H, W)`` of flat input rows.
"""


def relative_stability(
    model,
    X,
    *,
    perturbation=None,
    cutoff=3,
    temperature=None,
    displacement=None,
    interpolation="bilinear",
    n_repeats=1,
    batch_size=128,
    device=None,
    random_state=None,
    n_bootstraps=1000,
    confidence=0.95,
    image_shape=None,
):
    """Diffeomorphism sensitivity D, noise sensitivity G and relative stability R = D / G of a model.

    Parameters
    ----------
    model : torch.nn.Module, fitted transformer or pipeline (prefix), or callable
        Read through :func:`skphase.metrics._probes.as_batch_function`; it is called on batches
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


def diffeo_sensitivity(model, X, **kwargs):
    """``D_f``: mean squared change under random diffeomorphisms, over that between random pairs.

    Same parameters as :func:`relative_stability`; returns a float.

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


def noise_sensitivity(model, X, **kwargs):
    """``G_f``: mean squared change under the matched noise, over that between random pairs.

    Same parameters as :func:`relative_stability`; returns a float.
    """
    return relative_stability(model, X, **kwargs)["G"]


def layerwise_sensitivity(
    model,
    X,
    *,
    layers=None,
    include_input=True,
    include_output=False,
    perturbation=None,
    cutoff=3,
    temperature=None,
    displacement=None,
    interpolation="bilinear",
    n_repeats=1,
    batch_size=128,
    device=None,
    random_state=None,
    n_bootstraps=1000,
    confidence=0.95,
    image_shape=None,
):
    """D, G and R at every layer of a model, as a tidy table (one dict per representation).

    Parameters
    ----------
    model : torch.nn.Module, fitted estimator with a torch ``module_``, or any other model
        Layers are read with :class:`skphase.metrics._probes.LayerCapture` on the module (for a
        fitted skphase estimator, on ``model.module_`` while its ``transform`` runs, so each block
        of a ``ScatteringPhaseCollapse`` is measured). Other models give the input and output rows.
    X : array-like or torch.Tensor
        Test images; see :func:`relative_stability`.
    layers : None, list of str or callable
        As in :func:`skphase.metrics._probes.resolve_layers`. None takes the blocks flagged
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

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Conv2d(4, 4, 3))
    >>> rows = layerwise_sensitivity(net, torch.rand(32, 1, 16, 16), random_state=0, n_bootstraps=50)
    >>> [row["layer"] for row in rows]
    ['input', '0', '2']
    """
    capture = _layered_target(model, layers)
    return _sensitivity_table(
        model, X, layers=layers if capture is not None else False, include_input=include_input,
        include_output=include_output or capture is None, perturbation=perturbation, cutoff=cutoff,
        temperature=temperature, displacement=displacement, interpolation=interpolation, n_repeats=n_repeats,
        batch_size=batch_size, device=device, random_state=random_state, n_bootstraps=n_bootstraps,
        confidence=confidence, image_shape=image_shape, on_degenerate="warn",
    )


fill_docstring(relative_stability, layerwise_sensitivity, common=_COMMON_DOC)
