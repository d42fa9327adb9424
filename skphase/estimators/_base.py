"""The contract shared by every skphase estimator: images in, device, pickling.

Estimators inherit :class:`ImageEstimatorMixin` next to the usual
``BaseEstimator`` and mixins. It records the image shape seen in ``fit``,
checks it again in ``transform``/``predict``, resolves ``device`` into
``device_``, and pickles torch state so that a model fitted on a GPU loads on a
CPU-only machine.
"""

import io
import warnings

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted, validate_data

from ..utils import check_images, resolve_device
from ..utils._sources import as_image_source

__all__ = ["ImageEstimatorMixin"]


def _ndim(X):
    return X.ndim if isinstance(X, torch.Tensor) else np.asarray(X).ndim


def _ndim_or_none(X):
    """Number of dimensions of an array-like (None for a Dataset), without converting arrays."""
    if isinstance(X, torch.utils.data.Dataset) and not isinstance(X, torch.Tensor):
        return None
    return X.ndim if hasattr(X, "ndim") and hasattr(X, "shape") else _ndim(X)


class ImageEstimatorMixin:
    """Image validation, device resolution and CPU-safe pickling for torch-backed estimators."""

    #: Fitted attributes left out of pickles; a subclass rebuilds them in ``__setstate__``.
    _transient_attributes = ()

    def _validate_images(self, X, *, reset, min_samples=1):
        """Return ``X`` as a CPU float tensor ``(n, C, H, W)``.

        With ``reset=True`` (in ``fit``) it records ``n_features_in_`` and
        ``image_shape_``; otherwise it checks that ``X`` matches them.
        """
        if not reset:
            check_is_fitted(self)
        if _ndim(X) == 2:
            # Flat rows: let scikit-learn track n_features_in_ and feature names.
            validate_data(self, X, reset=reset, skip_check_array=True)
        images = check_images(
            X, image_shape=getattr(self, "image_shape", None), min_samples=min_samples
        )
        if reset:
            self.image_shape_ = tuple(images.shape[1:])
            self.n_features_in_ = int(np.prod(self.image_shape_))
            if _ndim(X) != 2 and hasattr(self, "feature_names_in_"):
                del self.feature_names_in_
            return images
        self._check_fitted_shape(tuple(images.shape[1:]))
        return images

    def _validate_source(self, X, *, reset, min_samples=1, dtype=torch.float32, num_workers=0):
        """Return ``X`` as an :class:`~skphase.utils._sources.ImageSource`, read batch by batch.

        Like :meth:`_validate_images`, but the images stay in their own dtype and
        storage (a memmap, uint8, a torch Dataset) until a batch is read.
        """
        if not reset:
            check_is_fitted(self)
        if _ndim_or_none(X) == 2:
            validate_data(self, X, reset=reset, skip_check_array=True)
        source = as_image_source(X, image_shape=getattr(self, "image_shape", None), dtype=dtype,
                                 min_samples=min_samples, num_workers=num_workers)
        if reset:
            self.image_shape_ = tuple(source.image_shape)
            self.n_features_in_ = int(np.prod(self.image_shape_))
            if _ndim_or_none(X) != 2 and hasattr(self, "feature_names_in_"):
                del self.feature_names_in_
        else:
            self._check_fitted_shape(source.image_shape)
        return source

    def _check_fitted_shape(self, image_shape):
        """Raise when images of ``image_shape`` (C, H, W) differ from those seen in ``fit``."""
        n_channels, height, width = self.image_shape_
        name = type(self).__name__
        if image_shape[0] != n_channels:
            raise ValueError(
                f"X has {image_shape[0]} channel(s) but {name} was fitted on images with "
                f"{n_channels} channel(s); transform images of the kind seen in fit."
            )
        if tuple(image_shape[1:]) != (height, width):
            raise ValueError(
                f"X has images of size {tuple(image_shape[1:])} but {name} was fitted on "
                f"images of size {(height, width)}."
            )

    def _resolve_device(self):
        """Resolve the ``device`` parameter into ``device_`` (called in ``fit``)."""
        self.device_ = resolve_device(getattr(self, "device", "auto"))
        return self.device_

    def __getstate__(self):
        state = {k: v for k, v in self.__dict__.items() if k not in self._transient_attributes}
        torch_state = {
            key: value
            for key, value in state.items()
            if isinstance(value, (torch.nn.Module, torch.Tensor))
        }
        if torch_state:
            buffer = io.BytesIO()
            torch.save(torch_state, buffer)
            for key in torch_state:
                del state[key]
            state["_torch_state_bytes"] = buffer.getvalue()
        return state

    def __setstate__(self, state):
        state = dict(state)
        device = state.get("device_")
        if isinstance(device, torch.device) and device.type == "cuda" and not torch.cuda.is_available():
            warnings.warn(
                f"This model was fitted on {device}, which is not available here; "
                "it is loaded on the CPU and will run there.",
                UserWarning,
            )
            device = state["device_"] = torch.device("cpu")
        blob = state.pop("_torch_state_bytes", None)
        if blob is not None:
            map_location = device if isinstance(device, torch.device) else "cpu"
            state.update(torch.load(io.BytesIO(blob), map_location=map_location, weights_only=False))
        self.__dict__.update(state)
