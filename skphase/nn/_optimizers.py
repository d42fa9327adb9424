"""The optimizer of the training loop: chosen by name or class, built from the shared hyper-parameters."""

from __future__ import annotations

import inspect

import torch

__all__ = ["OPTIMIZERS", "make_optimizer", "optimizer_class"]

#: Optimizers known by name (the ``optimizer`` of :func:`train_classifier`), and their classes.
OPTIMIZERS = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}


def optimizer_class(optimizer: str | type[torch.optim.Optimizer]) -> type[torch.optim.Optimizer]:
    """Return the :class:`torch.optim.Optimizer` subclass named by ``optimizer``.

    Parameters
    ----------
    optimizer : str or type
        A name of ``OPTIMIZERS`` (in any case), or a :class:`torch.optim.Optimizer` subclass,
        returned as it is.

    Returns
    -------
    type
        The optimizer class.

    Raises
    ------
    ValueError
        For an unknown name, or anything else than an optimizer class (an instance included).

    See Also
    --------
    train_classifier : the training loop that builds the optimizer.

    Examples
    --------
    >>> from skphase.nn import optimizer_class
    >>> optimizer_class("AdamW")
    <class 'torch.optim.adamw.AdamW'>
    """
    if isinstance(optimizer, str):
        if optimizer.lower() not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)} or a torch.optim.Optimizer "
                             f"subclass, got {optimizer!r}.")
        return OPTIMIZERS[optimizer.lower()]
    if isinstance(optimizer, type) and issubclass(optimizer, torch.optim.Optimizer):
        return optimizer
    raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)} or a torch.optim.Optimizer subclass "
                     f"(the class, not an instance), got {optimizer!r}.")


def make_optimizer(parameters, optimizer="sgd", *, learning_rate, momentum=0.9, weight_decay=0.0,
                   optimizer_params=None, state=None):
    """Build the optimizer over ``parameters``, optionally resuming an earlier state.

    ``learning_rate`` is passed as ``lr``; ``weight_decay`` and ``momentum`` only
    to optimizers whose constructor names them (SGD takes both, Adam and AdamW
    only ``weight_decay``); ``optimizer_params`` adds keyword arguments and
    overrides these.

    Parameters
    ----------
    parameters : iterable of torch.nn.Parameter
    optimizer : str or type, default="sgd"
        ``"sgd"``, ``"adam"``, ``"adamw"`` or a :class:`torch.optim.Optimizer` subclass.
    learning_rate : float
    momentum : float, default=0.9
    weight_decay : float, default=0.0
    optimizer_params : dict or None
    state : dict or None
        A ``state_dict()`` of an optimizer of the same class, to continue from
        (momentum buffers, Adam moments); the hyper-parameters given here
        replace the saved ones.

    Returns
    -------
    optimizer : torch.optim.Optimizer
    base_lr : float
        The learning rate that the schedule multiplies.

    Raises
    ------
    ValueError
        When ``optimizer_params`` holds an argument the optimizer does not take.
    """
    cls = optimizer_class(optimizer)
    accepted = inspect.signature(cls).parameters
    kwargs = {"lr": learning_rate}
    for name, value in (("momentum", momentum), ("weight_decay", weight_decay)):
        if name in accepted:
            kwargs[name] = value
    kwargs.update(optimizer_params or {})
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values())
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown and not takes_any:
        raise ValueError(f"optimizer_params has {unknown}, which {cls.__name__} does not take; "
                         f"it takes {sorted(k for k in accepted if k != 'params')}.")
    built = cls(list(parameters), **kwargs)
    if state is not None:
        built.load_state_dict(state)
        for group in built.param_groups:  # the saved groups carry the old hyper-parameters
            group.update({k: v for k, v in kwargs.items() if k in group})
    return built, float(kwargs["lr"])
