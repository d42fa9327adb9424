"""The ``precision`` parameter: float32, or mixed precision through :func:`torch.autocast`."""

import contextlib

import torch

__all__ = ["PRECISIONS", "check_precision", "autocast", "autocast_dtype"]

PRECISIONS = ("float32", "bfloat16", "float16")


def check_precision(precision, device):
    """Check that ``precision`` can run on ``device``; return it.

    Raises
    ------
    ValueError
        For an unknown precision, or ``"float16"`` off CUDA (CPUs have no fast
        float16 arithmetic; use ``"bfloat16"`` there).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}.")
    if precision == "float16" and torch.device(device).type != "cuda":
        raise ValueError(
            f"precision='float16' needs a CUDA device, but the model runs on {device}; "
            "use precision='bfloat16' (or 'float32') on the CPU."
        )
    return precision


def autocast_dtype(precision):
    """The torch dtype of the low-precision products, or None for float32."""
    return {"float32": None, "bfloat16": torch.bfloat16, "float16": torch.float16}[precision]


def autocast(device, precision):
    """A context manager running the products of its block in ``precision`` on ``device``.

    ``"float32"`` gives a context that changes nothing.
    """
    dtype = autocast_dtype(check_precision(precision, device))
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)
