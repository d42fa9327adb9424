"""Keeping freed memory in the process, so that large CPU tensors do not page-fault."""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

__all__ = ["retain_freed_memory"]

# mallopt parameters of glibc's <malloc.h>.
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_INT_MAX = 2**31 - 1


def retain_freed_memory() -> bool:
    """Let the process reuse the memory of freed tensors instead of returning it to the system.

    glibc's ``malloc`` serves every block above its mmap threshold (at most
    32 MiB) with a fresh ``mmap`` and unmaps it on ``free``. Training on the CPU
    allocates and frees activations of tens of megabytes at every step, so each
    step faults all their pages in again: about a third of a training step of
    :class:`~skphase.ScatteringPhaseCollapse` on 2 cores goes there (measured
    with ``getrusage``: 43,000 page faults per step of batch 128 on
    Fashion-MNIST). This turns off ``mmap`` for allocations and trimming of the
    heap, so that freed blocks are reused (the usual remedy, like running with
    jemalloc or tcmalloc).

    The price: the process keeps the memory of its peak use until it exits.
    The setting is process-wide and cannot be undone, which is why skphase
    never calls this on its own; call it once at the start of a script that
    trains on the CPU. GPU memory is not affected.

    Returns
    -------
    bool
        True when applied; False where the C library is not glibc (macOS,
        Windows, musl), which is left untouched.

    Examples
    --------
    >>> from skphase.utils import retain_freed_memory
    >>> retain_freed_memory()  # doctest: +SKIP
    True
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version  # only glibc has it; musl's mallopt does nothing
    except (OSError, AttributeError):
        return False
    return bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, _INT_MAX))
