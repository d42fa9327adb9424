"""The ``precision`` parameter: float32, or mixed precision through :func:`torch.autocast`.

Besides the context that estimators open (:func:`autocast`), the helpers here
let modules decide which of their operations follow an autocast region: the
large matrix products run in :func:`compute_dtype`, while statistics, norms and
divisions run in :func:`statistics_dtype` inside :func:`autocast_disabled`.
"""

import contextlib

import torch

__all__ = [
    "PRECISIONS",
    "LOW_PRECISION_DTYPES",
    "check_precision",
    "autocast",
    "autocast_dtype",
    "active_autocast_dtype",
    "autocast_disabled",
    "compute_dtype",
    "statistics_dtype",
]

PRECISIONS = ("float32", "bfloat16", "float16")

#: Floating dtypes with fewer bits than float32: their sums, norms and divisions are done in float32.
LOW_PRECISION_DTYPES = (torch.bfloat16, torch.float16)


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


def active_autocast_dtype(device_type):
    """The dtype of the autocast region open for ``device_type`` ("cpu", "cuda", ...), or None outside one."""
    if hasattr(torch, "get_autocast_dtype"):
        if not torch.is_autocast_enabled(device_type):
            return None
        return torch.get_autocast_dtype(device_type)
    # torch < 2.4: one query per device type, CPU and CUDA only.
    if device_type == "cpu":
        return torch.get_autocast_cpu_dtype() if torch.is_autocast_cpu_enabled() else None
    if device_type == "cuda":
        return torch.get_autocast_gpu_dtype() if torch.is_autocast_enabled() else None
    return None


def autocast_disabled(device_type):
    """A context in which no autocast region applies to ``device_type``: every op runs in its inputs' dtype."""
    return torch.autocast(device_type=device_type, enabled=False)


def compute_dtype(tensor):
    """The dtype that autocast gives the matrix products of ``tensor``.

    Inside an autocast region for the tensor's device, float32 (and low-precision)
    tensors take the region's dtype, as autocast casts them; float64 is never cast.
    Elsewhere, the tensor's own dtype.
    """
    dtype = active_autocast_dtype(tensor.device.type)
    if dtype is None or tensor.dtype not in (torch.float32,) + LOW_PRECISION_DTYPES:
        return tensor.dtype
    return dtype


def statistics_dtype(dtype):
    """The dtype that sums, norms and divisions over ``dtype`` values run in: at least float32."""
    return torch.promote_types(dtype, torch.float32)
