"""Resolve the ``device`` parameter shared by every skphase estimator and measurement.

Inside a dask.distributed worker, ``device="auto"`` gives each worker its own
GPU and torch follows the worker's thread budget; outside one it picks the
first CUDA device when there is one. dask is never imported here: a worker is
looked for only when ``distributed`` is already loaded (it always is in a
worker process).
"""

from __future__ import annotations

import os
import re
import sys
import zlib

import torch

__all__ = ["carries_torch", "match_worker_threads", "resolve_device"]

_SUPPORTED = "'auto', 'cpu', 'cuda', 'cuda:N' (on a machine with CUDA) or 'mps' (Apple silicon)"


def _current_worker():
    """The dask.distributed worker running this code, or None (outside a worker or without dask)."""
    distributed = sys.modules.get("distributed")
    if distributed is None:
        return None
    try:
        return distributed.get_worker()
    except (ValueError, AttributeError):  # ValueError: not in a worker; AttributeError: an old or partial import
        return None


def _worker_rank(worker):
    """A stable index of a worker among those of its node.

    The worker's ``name`` when it is an integer, or a string of digits, as in a
    ``LocalCluster`` (0, 1, ...); else the integer that ends its name (the
    ``-3`` of ``"SLURMCluster-3"``); else a hash of its name or address, stable
    across runs but possibly shared by two workers.
    """
    name = getattr(worker, "name", None)
    if isinstance(name, int) and not isinstance(name, bool):
        return name
    text = str(name if name is not None else getattr(worker, "address", ""))
    match = re.search(r"(\d+)$", text)
    if match:
        return int(match.group(1))
    return zlib.crc32(text.encode())


def _auto_device():
    if not torch.cuda.is_available():
        return torch.device("cpu")
    worker = _current_worker()
    if worker is None:
        return torch.device("cuda")
    if os.environ.get("CUDA_VISIBLE_DEVICES", "").strip():
        # dask-cuda and SLURM pin a worker to its GPU this way; torch numbers the visible ones from 0.
        return torch.device("cuda", 0)
    return torch.device("cuda", _worker_rank(worker) % torch.cuda.device_count())


def _mps_available():
    mps = getattr(torch.backends, "mps", None)
    return mps is not None and mps.is_available()


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """Turn a ``device`` parameter into a :class:`torch.device`.

    Parameters
    ----------
    device : {"auto", "cpu", "cuda", "cuda:N", "mps"}, torch.device or None, default="auto"
        ``"auto"`` (or None) picks the CPU on a machine without CUDA. With
        CUDA, outside a dask.distributed worker it picks the first CUDA device;
        inside a worker it picks one GPU per worker: the first visible device
        when ``CUDA_VISIBLE_DEVICES`` is set in the worker process (how
        dask-cuda's ``LocalCUDACluster`` and SLURM pin a GPU to a worker), else
        ``cuda:{rank % n_gpus}``, where ``rank`` is the worker's name when it
        is an integer (a ``LocalCluster`` names its workers 0, 1, ...), else
        the number that ends its name, else a hash of its name or address.

    Returns
    -------
    torch.device
        The device, checked to be usable on this machine.

    Raises
    ------
    ValueError
        If the value is not a device torch knows, is a device skphase does not
        run on (``"meta"``, ``"mps"`` where unavailable, ...), or asks for a
        CUDA device that this machine does not have.

    See Also
    --------
    make_generator : a random generator on the resolved device.

    Examples
    --------
    >>> from skphase.utils import resolve_device
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if device is None or (isinstance(device, str) and device == "auto"):
        return _auto_device()
    if isinstance(device, torch.device):
        resolved = device
    else:
        try:
            resolved = torch.device(device)
        except (RuntimeError, TypeError) as exc:
            raise ValueError(f"device={device!r} is not a valid device; use {_SUPPORTED}.") from exc
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r} asks for CUDA but no CUDA device is available; "
                "use device='auto' or device='cpu'."
            )
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r} does not exist: this machine has "
                f"{torch.cuda.device_count()} CUDA device(s)."
            )
    elif resolved.type == "mps":
        if not _mps_available():
            raise ValueError(f"device={device!r} asks for Apple's MPS, which is not available here; use {_SUPPORTED}.")
    elif resolved.type != "cpu":
        raise ValueError(f"device={device!r} is not supported by skphase; use {_SUPPORTED}.")
    return resolved


def match_worker_threads():
    """Inside a dask.distributed worker, lower torch's CPU threads to the worker's thread budget.

    A worker started with ``nthreads=k`` runs up to ``k`` tasks at once; torch's
    default of one thread per core in each of them would oversubscribe the node.
    Outside a worker, or when torch already uses no more threads, nothing changes.

    Returns
    -------
    int or None
        The worker's thread budget, or None outside a worker.
    """
    worker = _current_worker()
    # distributed keeps the count on the worker's state (older releases on the worker itself).
    budget = getattr(getattr(worker, "state", worker), "nthreads", None) if worker is not None else None
    if isinstance(budget, int) and budget >= 1 and torch.get_num_threads() > budget:
        torch.set_num_threads(budget)
    return budget


def carries_torch(value, _seen=None):
    """Whether ``value`` holds a torch tensor or module, itself or anywhere inside.

    Dicts (keys and values), lists, tuples (named tuples too), sets,
    frozensets and the attributes (``__dict__``) of plain objects are searched.
    Such values hold storages tied to a device: an optimizer's momentum
    buffers, a list of per-iteration matrices, an object keeping a tensor.

    Parameters
    ----------
    value : object

    Returns
    -------
    bool
    """
    if isinstance(value, (torch.Tensor, torch.nn.Module)):
        return True
    if isinstance(value, dict):
        items = (item for pair in value.items() for item in pair)
    elif isinstance(value, (list, tuple, set, frozenset)):
        items = value
    elif not isinstance(value, type) and isinstance(getattr(value, "__dict__", None), dict):
        items = value.__dict__.values()
    else:
        return False
    seen = set() if _seen is None else _seen
    if id(value) in seen:  # reached again through a cycle
        return False
    seen.add(id(value))
    return any(carries_torch(item, seen) for item in items)
