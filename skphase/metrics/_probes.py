"""How every metric reaches a model: batch functions, layer hooks and :class:`ModelProbe`.

Every measurement in :mod:`skphase.metrics` reads a model through :class:`ModelProbe`, which
owns the rules that must agree between the metrics:

- device: batches are built on the given ``device``, else on a torch module's own device (that
  of its first parameter or buffer), else on the CPU (:func:`model_device`);
- dtype: images take a torch module's floating dtype, else float64 when ``X`` is float64, else
  float32 (:func:`input_dtype`);
- layout: images are validated once as ``(n, C, H, W)`` (what the perturbations act on), and the
  model is called on batches shaped like ``X``, so a pipeline fitted on flat rows ``(n, d)`` gets
  flat rows;
- layers: the hookable torch model (the model itself, or a fitted estimator's ``module_``) and
  the layers read on it through :class:`LayerCapture`;
- mode: a torch model runs in eval mode while measured, and every sub-module gets its mode back.

:func:`as_batch_function` and :class:`LayerCapture` are the two building blocks, also public:
one tensor batch in, one tensor batch out; and the outputs (or inputs) of named sub-modules
during one forward pass.
"""

# This module runs past the ~500-line guide on purpose: more than half of it is numpydoc
# docstrings with runnable examples; its code is one concern and under 350 lines.

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Sequence

import numpy as np
import torch

from ..utils import resolve_device
from ..utils._images import all_finite, check_images
from ..utils._torch import to_numpy

__all__ = [
    "LayerCapture",
    "ModelProbe",
    "as_batch_function",
    "check_finite_output",
    "input_dtype",
    "model_device",
    "resolve_layers",
]


def _to_tensor(output):
    if isinstance(output, torch.Tensor):
        return output
    if hasattr(output, "to_numpy"):  # pandas output of set_output
        output = output.to_numpy()
    return torch.as_tensor(np.asarray(output))


def _flat(t):
    """``(b, d)`` real view of a representation: complex values count as two real features."""
    t = _to_tensor(t)
    t = t.reshape(t.shape[0], -1)
    if t.is_complex():
        t = torch.view_as_real(t).flatten(1)
    return t


def _tensors(module):
    return itertools.chain(module.parameters(), module.buffers())


def check_finite_output(tensor, where="the model's output"):
    """Return ``tensor``; raise a ValueError when it holds NaN or infinity.

    A measurement of non-finite representations would itself be NaN or meaningless, so
    every probe refuses them and says where they appeared.
    """
    if isinstance(tensor, torch.Tensor) and (tensor.is_floating_point() or tensor.is_complex()):
        if not all_finite(tensor):
            raise ValueError(
                f"{where} holds NaN or infinite values on the measured images; the measurement would be "
                "meaningless. Check the model (a diverged fit) and the scale of the images."
            )
    return tensor


def model_device(model, device=None):
    """Where a model's batches are built and sent.

    Parameters
    ----------
    model : object
    device : str, torch.device or None
        Validated with :func:`skphase.utils.resolve_device` when given.

    Returns
    -------
    torch.device
        ``device`` when given; else, for a torch module, the device of its first parameter or
        buffer; else the CPU.
    """
    if device is not None:
        return resolve_device(device)
    if isinstance(model, torch.nn.Module):
        first = next(_tensors(model), None)
        if first is not None:
            return first.device
    return torch.device("cpu")


def input_dtype(X, model=None):
    """The dtype in which images are handed to a model.

    A torch module gets its own floating dtype (the first floating parameter or buffer), since
    it cannot multiply other floats; any other model gets float64 when ``X`` is float64, so that
    its precision is kept, else float32.

    Parameters
    ----------
    X : array-like or torch.Tensor
    model : object, optional

    Returns
    -------
    torch.dtype
    """
    if isinstance(model, torch.nn.Module):
        floating = next((t.dtype for t in _tensors(model) if t.is_floating_point()), None)
        if floating is not None:
            return floating
    return torch.float64 if getattr(X, "dtype", None) in (np.float64, torch.float64) else torch.float32


def _batch_function(model, device):
    """``f(batch, grad=False) -> torch.Tensor``; the model's mode is left to the caller."""
    if isinstance(model, torch.nn.Module):
        def module_fn(batch, grad=False):
            with torch.set_grad_enabled(grad):
                return check_finite_output(model(batch.to(device)))

        return module_fn
    if hasattr(model, "transform"):
        return lambda batch, grad=False: check_finite_output(_to_tensor(model.transform(to_numpy(batch))))
    if callable(model):
        return lambda batch, grad=False: check_finite_output(_to_tensor(model(batch)))
    raise TypeError(
        f"Cannot measure a {type(model).__name__}: pass a torch nn.Module, a fitted transformer "
        "(anything with transform) or a callable on image batches."
    )


def as_batch_function(
    model: object,
    *,
    device: str | torch.device | None = None,
) -> Callable[[torch.Tensor], torch.Tensor]:
    """A function mapping an image batch ``(n, C, H, W)`` tensor to the model's representation.

    Parameters
    ----------
    model : torch.nn.Module, fitted transformer, or callable
        - ``nn.Module``: put in eval mode and called on batches on ``device``
          (default: the device of its first parameter or buffer, else CPU).
        - an object with ``transform`` (a fitted skphase estimator, a sklearn
          ``Pipeline`` or a pipeline prefix such as ``pipe[:-1]``): called on
          numpy batches.
        - any other callable: called on the tensor batch as is.
    device : str, torch.device or None
        For a torch module, where the batches are sent; None uses the device of its first parameter
        or buffer.

    Returns
    -------
    callable
        ``f(batch) -> torch.Tensor`` with the sample axis first, on the CPU
        for transformers and on the module's device for modules.

    See Also
    --------
    LayerCapture : record the layers of a module instead of its output.

    Examples
    --------
    >>> import torch
    >>> from skphase.metrics import as_batch_function
    >>> f = as_batch_function(torch.nn.Flatten())
    >>> tuple(f(torch.zeros(2, 1, 4, 4)).shape)
    (2, 16)
    """
    function = _batch_function(model, model_device(model, device))
    if isinstance(model, torch.nn.Module):
        model.eval()
    return function


def resolve_layers(
    module: torch.nn.Module,
    layers: Sequence[str] | str | Callable | None = None,
) -> dict[str, torch.nn.Module]:
    """Find the named sub-modules to probe.

    Parameters
    ----------
    module : torch.nn.Module
        The module to search.
    layers : None, str, list of str, or callable
        Names as in ``module.named_modules()`` (a single name may be given as a str); a callable filters
        ``(name, submodule)`` pairs; None takes every ``Conv1d/2d``,
        ``Linear`` and every child module that declares
        ``is_representation_layer = True`` (the blocks of skphase networks).

    Returns
    -------
    dict
        ``{name: submodule}`` in forward-definition order.

    See Also
    --------
    LayerCapture : records the layers found.

    Examples
    --------
    >>> import torch
    >>> from skphase.metrics import resolve_layers
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU(), torch.nn.Linear(2, 2))
    >>> list(resolve_layers(net))
    ['0', '2']
    """
    named = dict(module.named_modules())
    if isinstance(layers, str):  # one layer name, not a sequence of one-letter names
        layers = [layers]
    if layers is None:
        kinds = (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Linear)
        chosen = {
            name: sub
            for name, sub in named.items()
            if name and (isinstance(sub, kinds) or getattr(sub, "is_representation_layer", False))
        }
    elif callable(layers):
        chosen = {name: sub for name, sub in named.items() if name and layers(name, sub)}
    else:
        missing = [name for name in layers if name not in named]
        if missing:
            raise ValueError(
                f"Layers {missing} are not sub-modules of {type(module).__name__}; "
                f"available: {[n for n in named if n][:20]}..."
            )
        chosen = {name: named[name] for name in layers}
    if not chosen:
        raise ValueError(f"No layer of {type(module).__name__} was selected; pass layers=[...] by name.")
    return chosen


class LayerCapture:
    """Context manager recording the outputs (or inputs) of named sub-modules.

    Parameters
    ----------
    module : torch.nn.Module
        The module whose layers are recorded.
    layers : see :func:`resolve_layers`
        The layers to record; see :func:`resolve_layers`.
    capture : {"output", "input"} or callable, default="output"
        Record what each layer returns or the first positional argument it gets. A callable
        ``capture(layer, input, output) -> (recorded, new_output)`` records a tensor of its own
        and makes the layer return ``new_output`` instead of ``output``.
    detach : bool, default=True
        Detach the recorded tensors (set False to differentiate through them).

    See Also
    --------
    resolve_layers : which layers are recorded.
    as_batch_function : a model as a function of image batches.

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU(), torch.nn.Conv2d(2, 2, 3))
    >>> with LayerCapture(net) as capture:
    ...     _ = net(torch.zeros(1, 1, 8, 8))
    >>> {name: tuple(t.shape) for name, t in capture.outputs.items()}
    {'0': (1, 2, 6, 6), '2': (1, 2, 4, 4)}
    """

    def __init__(
        self,
        module: torch.nn.Module,
        layers: Sequence[str] | str | Callable | None = None,
        *,
        capture: str | Callable = "output",
        detach: bool = True,
    ):
        if capture not in ("output", "input") and not callable(capture):
            raise ValueError(f"capture must be 'output', 'input' or a callable, got {capture!r}.")
        self.layers = resolve_layers(module, layers)
        self.capture = capture
        self.detach = detach
        self.outputs: dict[str, torch.Tensor] = {}
        self._handles: list[torch.utils.hooks.RemovableHandle] = []

    def _hook(self, name):
        def hook(layer, args, output):
            replacement = None
            if callable(self.capture):
                value, replacement = self.capture(layer, args[0], output)
            else:
                value = args[0] if self.capture == "input" else output
            if isinstance(value, (tuple, list)):
                value = value[0]
            check_finite_output(value, f"layer {name!r}")
            self.outputs[name] = value.detach() if self.detach else value
            return replacement  # None leaves the layer's output as it is

        return hook

    def __enter__(self):
        self.outputs = {}
        self._handles = [sub.register_forward_hook(self._hook(name)) for name, sub in self.layers.items()]
        return self

    def __exit__(self, *exc):
        for handle in self._handles:
            handle.remove()
        self._handles = []
        return False


def _hookable_module(model):
    """The torch module whose sub-modules can be hooked: the model, a fitted estimator's ``module_``, or None."""
    if isinstance(model, torch.nn.Module):
        return model
    module = getattr(model, "module_", None)  # fitted skphase estimators keep their network here
    return module if isinstance(module, torch.nn.Module) else None


def _default_layers(module):
    """The blocks flagged ``is_representation_layer`` when a model has any, else None (every Conv/Linear).

    A skphase network's blocks contain their own convolutions; measuring the blocks, not the
    convolutions inside them, is what a layer-by-layer study of such a network means.
    """
    flagged = any(getattr(sub, "is_representation_layer", False) for sub in module.modules())
    return (lambda name, sub: getattr(sub, "is_representation_layer", False)) if flagged else None


class ModelProbe:
    """A model as the metrics see it: device, dtype, input layout, layers and mode.

    Use it as a context manager around the measurement: inside, a torch model is in eval mode;
    on exit every sub-module of the hookable model gets back the mode it had.

    Parameters
    ----------
    model : torch.nn.Module, fitted transformer or classifier, pipeline (prefix), or callable
        Called through :func:`as_batch_function`'s rules; ``predict`` is used for labels when
        the model has one.
    X : array-like or torch.Tensor
        The measured images as the model takes them: ``(n, C, H, W)``, ``(n, H, W)`` or flat
        ``(n, d)``. Its number of axes fixes the shape of the batches the model gets.
    image_shape : tuple, optional
        ``(C, H, W)`` of flat rows (see ``skphase.utils._images.check_images``).
    min_samples : int, default=1
    device : str, torch.device or None
        See :func:`model_device`.
    layers : False, None, str, list of str or callable, default=False
        The layers read by :meth:`representations`. False: none (the output only). None: those
        of the hookable model when there is one (the blocks flagged ``is_representation_layer``
        when it has any, else every Conv/Linear layer), else none. Names or a filter, as in
        :func:`resolve_layers`: those layers; a TypeError when the model has no torch module.

    Attributes
    ----------
    images : torch.Tensor of shape (n, C, H, W)
        ``X`` validated, on the CPU, in :attr:`dtype`.
    dtype : torch.dtype
        See :func:`input_dtype`.
    device : torch.device
        Where batches are built and sent.
    input_ndim : int
        Number of axes of ``X``, kept by every batch the model gets.
    module : torch.nn.Module or None
        The hookable model: ``model`` itself, or a fitted estimator's ``module_``.
    layers : dict or None
        ``{name: submodule}`` read by :meth:`representations`; None when only the output is.

    Examples
    --------
    >>> import torch
    >>> seen = []
    >>> probe = ModelProbe(lambda b: seen.append(tuple(b.shape)) or b, torch.rand(4, 16))
    >>> tuple(probe.images.shape), probe.dtype
    ((4, 1, 4, 4), torch.float32)
    >>> with probe:
    ...     _ = probe.output(probe.images)
    >>> seen  # the model gets flat rows, like X
    [(4, 16)]
    """

    def __init__(self, model, X, *, image_shape=None, min_samples=1, device=None, layers=False):
        self.model = model
        self.dtype = input_dtype(X, model)
        self.input_ndim = X.ndim if isinstance(X, torch.Tensor) else np.ndim(X)
        self.image_shape = image_shape
        self.images = check_images(X, image_shape=image_shape, min_samples=min_samples, dtype=self.dtype)
        self.device = model_device(model, device)
        self.module = _hookable_module(model)
        self._modes = {}
        self.layers = None
        if layers is not False:
            if self.module is None and layers is not None:
                raise TypeError(
                    f"Cannot read layers {layers!r} of a {type(model).__name__}: layer-wise measurements need "
                    "a torch nn.Module or a fitted estimator with a torch model in `module_`; leave layers=None "
                    "to measure its output."
                )
            if self.module is not None:
                self.layers = resolve_layers(self.module, _default_layers(self.module) if layers is None else layers)

    # ------------------------------------------------------------------------------------------
    def __enter__(self):
        self._modes = {sub: sub.training for sub in self.module.modules()} if self.module is not None else {}
        if isinstance(self.model, torch.nn.Module):
            self.model.eval()
        return self

    def __exit__(self, *exc):
        # modules() lists parents first: a parent's recursive train() is then overridden by
        # each child's own recorded mode, so a frozen sub-module stays frozen.
        for sub, training in self._modes.items():
            sub.train(training)
        self._modes = {}
        return False

    # ------------------------------------------------------------------------------------------
    def check_images(self, X, *, name="X"):
        """Validate another set of images (e.g. held-out ones) like :attr:`images`.

        Raises
        ------
        ValueError
            When its images differ in shape from those of ``X``.
        """
        images = check_images(X, image_shape=self.image_shape, name=name, dtype=self.dtype)
        if images.shape[1:] != self.images.shape[1:]:
            raise ValueError(
                f"{name} images {tuple(images.shape[1:])} differ from X's {tuple(self.images.shape[1:])}; "
                "measure images of one shape."
            )
        return images

    def batch_size(self, requested, *, minimum=1):
        """``requested``, capped at a fitted estimator's own ``batch_size``.

        An estimator that splits a batch internally runs its layers once per part, so a hook
        would record only the last part; a batch no larger than the estimator's holds one part.
        """
        own = None if isinstance(self.model, torch.nn.Module) else getattr(self.model, "batch_size", None)
        return requested if own is None else max(minimum, min(requested, int(own)))

    def model_input(self, batch):
        """An ``(b, C, H, W)`` batch shaped like ``X``: flat rows for flat ``X``, no channel axis for ``(n, H, W)``."""
        if self.input_ndim == 2:
            return batch.flatten(1)
        if self.input_ndim == 3 and batch.shape[1] == 1:
            return batch[:, 0]
        return batch

    def output(self, batch, *, grad=False):
        """The model's output on an ``(b, C, H, W)`` batch (moved to :attr:`device`), finite-checked.

        ``grad=True`` records the autograd graph through a torch model; others raise a TypeError.
        """
        if grad and not isinstance(self.model, torch.nn.Module):
            raise TypeError(
                f"Cannot differentiate a {type(self.model).__name__}: gradients need a torch nn.Module."
            )
        return self._function(self.model_input(batch.to(self.device)), grad)

    @functools.cached_property
    def _function(self):
        # Built on first use: a classifier measured through predict alone needs none.
        return _batch_function(self.model, self.device)

    def predict(self, batch):
        """Labels of an ``(b, C, H, W)`` batch as a numpy array.

        The model's ``predict`` when it has one, else its output: the argmax of ``(b, n_classes)``
        float scores, or the labels it returns.
        """
        if hasattr(self.model, "predict"):
            return np.asarray(self.model.predict(to_numpy(self.model_input(batch))))
        out = self.output(batch)
        if out.ndim == 2 and out.is_floating_point():
            out = out.argmax(dim=1)
        return to_numpy(out)

    def capture(self, **kwargs):
        """A :class:`LayerCapture` of :attr:`layers` on :attr:`module` (keywords passed on)."""
        if self.layers is None:
            raise RuntimeError("This probe reads no layer; build it with layers=None or layer names.")
        return LayerCapture(self.module, self.layers, **kwargs)

    def representations(self, batch, *, include_input=False, include_output=False):
        """``{name: (b, d) tensor}``: the batch itself, the :attr:`layers` and the output.

        Parameters
        ----------
        batch : torch.Tensor of shape (b, C, H, W)
        include_input : bool, default=False
            Add ``"input"``, the batch itself.
        include_output : bool, default=False
            Add ``"output"``, what the model returns; always there when no layer is read.

        Returns
        -------
        dict
            Flattened real representations in forward order (complex values as two real features).
        """
        reps = {"input": batch} if include_input else {}
        if self.layers is None:
            reps["output"] = self.output(batch)
            return {name: _flat(t) for name, t in reps.items()}
        with self.capture() as capture:
            out = self.output(batch)
        for name in self.layers:
            if name not in capture.outputs:
                raise RuntimeError(f"Layer {name!r} was not called during the forward pass; it cannot be measured.")
            value = capture.outputs[name]
            if value.shape[0] != batch.shape[0]:
                raise RuntimeError(
                    f"Layer {name!r} recorded {value.shape[0]} samples for a batch of {batch.shape[0]}: the model "
                    "splits batches internally; pass a batch_size no larger than the model's own."
                )
            reps[name] = value
        if include_output:
            reps["output"] = out
        return {name: _flat(t) for name, t in reps.items()}
