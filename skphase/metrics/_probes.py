"""Turn any model into batch functions, and read intermediate layers through hooks.

Every measurement in :mod:`skphase.metrics` sees a representation through
:func:`as_batch_function` (one tensor batch in, one tensor batch out) or
through :class:`LayerCapture` (the outputs of named sub-modules of a torch
model during one forward pass), so each works alike on a fitted scikit-learn
transformer, a pipeline prefix, a torch ``nn.Module`` or a plain callable.
"""

import numpy as np
import torch

from ..utils import resolve_device

__all__ = ["as_batch_function", "check_finite_output", "LayerCapture", "resolve_layers"]


def _to_tensor(output):
    if isinstance(output, torch.Tensor):
        return output
    if hasattr(output, "to_numpy"):  # pandas output of set_output
        output = output.to_numpy()
    return torch.as_tensor(np.asarray(output))


def check_finite_output(tensor, where="the model's output"):
    """Return ``tensor``; raise a ValueError when it holds NaN or infinity.

    A measurement of non-finite representations would itself be NaN or meaningless, so
    every probe refuses them and says where they appeared.
    """
    if isinstance(tensor, torch.Tensor) and (tensor.is_floating_point() or tensor.is_complex()):
        if not torch.isfinite(tensor).all():
            raise ValueError(
                f"{where} holds NaN or infinite values on the measured images; the measurement would be "
                "meaningless. Check the model (a diverged fit) and the scale of the images."
            )
    return tensor


def as_batch_function(model, *, device=None):
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

    Returns
    -------
    callable
        ``f(batch) -> torch.Tensor`` with the sample axis first, on the CPU
        for transformers and on the module's device for modules.
    """
    if isinstance(model, torch.nn.Module):
        if device is None:
            tensors = list(model.parameters()) + list(model.buffers())
            device = tensors[0].device if tensors else torch.device("cpu")
        else:
            device = resolve_device(device)
        model.eval()

        def module_fn(batch):
            with torch.no_grad():
                return check_finite_output(model(batch.to(device)))

        return module_fn
    if hasattr(model, "transform"):
        return lambda batch: check_finite_output(_to_tensor(model.transform(batch.detach().cpu().numpy())))
    if callable(model):
        return lambda batch: check_finite_output(_to_tensor(model(batch)))
    raise TypeError(
        f"Cannot measure a {type(model).__name__}: pass a torch nn.Module, a fitted transformer "
        "(anything with transform) or a callable on image batches."
    )


def resolve_layers(module, layers=None):
    """Named sub-modules to probe.

    Parameters
    ----------
    module : torch.nn.Module
    layers : None, str, list of str, or callable
        Names as in ``module.named_modules()`` (a single name may be given as a str); a callable filters
        ``(name, submodule)`` pairs; None takes every ``Conv1d/2d``,
        ``Linear`` and every child module that declares
        ``is_representation_layer = True`` (the blocks of skphase networks).

    Returns
    -------
    dict
        ``{name: submodule}`` in forward-definition order.
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
    layers : see :func:`resolve_layers`
    capture : {"output", "input"}, default="output"
        Record what each layer returns or the first positional argument it gets.
    detach : bool, default=True
        Detach the recorded tensors (set False to differentiate through them).

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU(), torch.nn.Conv2d(2, 2, 3))
    >>> with LayerCapture(net) as capture:
    ...     _ = net(torch.zeros(1, 1, 8, 8))
    >>> {name: tuple(t.shape) for name, t in capture.outputs.items()}
    {'0': (1, 2, 6, 6), '2': (1, 2, 4, 4)}
    """

    def __init__(self, module, layers=None, *, capture="output", detach=True):
        if capture not in ("output", "input"):
            raise ValueError(f"capture must be 'output' or 'input', got {capture!r}.")
        self.layers = resolve_layers(module, layers)
        self.capture = capture
        self.detach = detach
        self.outputs = {}
        self._handles = []

    def _hook(self, name):
        def hook(_module, args, output):
            value = args[0] if self.capture == "input" else output
            if isinstance(value, (tuple, list)):
                value = value[0]
            check_finite_output(value, f"layer {name!r}")
            self.outputs[name] = value.detach() if self.detach else value

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
