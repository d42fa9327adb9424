"""Utilities shared by every layer: device resolution, image validation, batching."""

from ._device import resolve_device
from ._images import check_channels_first, check_images, infer_image_shape, is_integer, min_image_size_error
from ._memory import retain_freed_memory
from ._progress import progress_bar
from ._sources import ImageSource, as_image_source
from ._torch import iter_batches, make_generator, map_batches, seed_from_random_state, to_numpy

__all__ = [
    "ImageSource",
    "as_image_source",
    "check_channels_first",
    "check_images",
    "infer_image_shape",
    "is_integer",
    "iter_batches",
    "make_generator",
    "map_batches",
    "min_image_size_error",
    "progress_bar",
    "resolve_device",
    "retain_freed_memory",
    "seed_from_random_state",
    "to_numpy",
]
