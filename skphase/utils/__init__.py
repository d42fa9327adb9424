"""Helpers for users of skphase: device resolution, image sources, seeding, memory.

The validation and batching helpers the other layers share live in the private modules of this
package (``skphase.utils._images``, ``skphase.utils._torch``, ...); they are not public.
"""

from ._device import resolve_device
from ._memory import retain_freed_memory
from ._sources import ImageSource, as_image_source
from ._torch import make_generator

__all__ = ["ImageSource", "as_image_source", "make_generator", "resolve_device", "retain_freed_memory"]
