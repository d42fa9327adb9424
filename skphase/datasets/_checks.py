"""Argument checks shared by the synthetic-data generators."""

import math
import numbers

__all__ = ["check_finite_number"]


def check_finite_number(value, name, *, minimum=None):
    """Return ``value`` as a float; raise a ValueError for non-numbers, NaN, infinity or values below ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {value!r}.")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}.")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}.")
    return value
