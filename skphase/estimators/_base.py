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

__all__ = ["ImageEstimatorMixin"]


def _ndim(X):
    return X.ndim if isinstance(X, torch.Tensor) else np.asarray(X).ndim


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
        n_channels, height, width = self.image_shape_
        name = type(self).__name__
        if images.shape[1] != n_channels:
            raise ValueError(
                f"X has {images.shape[1]} channel(s) but {name} was fitted on images with "
                f"{n_channels} channel(s); transform images of the kind seen in fit."
            )
        if tuple(images.shape[2:]) != (height, width):
            raise ValueError(
                f"X has images of size {tuple(images.shape[2:])} but {name} was fitted on "
                f"images of size {(height, width)}."
            )
        return images

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
