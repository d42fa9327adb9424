"""Shared helpers of the scattering-block tests: seeded float64 rows and forcing a filtering path."""

import torch

#: The wavelet filter's four ways to compute the same filtering.
FILTER_PATHS = ["dense", "dense_one_product", "separable", "toeplitz"]


def rows(shape, seed, offset=0.0):
    """Seeded standard-normal float64 numbers of ``shape``, plus ``offset``."""
    generator = torch.Generator().manual_seed(seed)
    return offset + torch.randn(shape, generator=generator, dtype=torch.float64)


def force_path(layer, path):
    """Make ``layer`` filter with its dense matrices (per image, or one product over the batch),
    its two separable products or its Toeplitz rows, whatever the size and the number of channels.

    The separable path is not taken by low-precision CPU tensors, which fall back to the dense one.
    """
    layer.DENSE_COST_RATIO = 0.0 if path == "toeplitz" else float("inf")
    layer.SEPARABLE_COST_RATIO = -1.0 if path == "separable" else float("inf")
    layer.MIN_BATCHED_CHANNELS = float("inf") if path == "dense_one_product" else 0
    return layer
