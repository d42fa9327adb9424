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
from sklearn.utils.validation import check_is_fitted
from torch.serialization import default_restore_location

from ..utils import resolve_device
from ..utils._device import carries_torch, match_worker_threads
from ..utils._sklearn_compat import validate_data
from ..utils._sources import ImageSource, _as_array, as_image_source, is_torch_dataset

__all__ = ["ImageEstimatorMixin"]


class ImageEstimatorMixin:
    """Image validation, device resolution and CPU-safe pickling for torch-backed estimators."""

    #: Fitted attributes left out of pickles; a subclass rebuilds them in ``__setstate__``.
    _transient_attributes: tuple[str, ...] = ()

    # scikit-learn's HTML repr (Jupyter) links an estimator to its documentation page: every
    # estimator is public at the top level, so its API page is ``skphase.<Name>`` (docs/api/index.rst).
    _doc_link_module = "skphase"
    _doc_link_template = "https://skphase.readthedocs.io/en/latest/api/generated/skphase.{estimator_name}.html"

    def _validate_source(self, X, *, reset, min_samples=1, dtype=torch.float32, num_workers=0):
        """Return ``X`` as an :class:`~skphase.utils._sources.ImageSource`, read batch by batch.

        With ``reset=True`` (in ``fit``) it records ``n_features_in_`` and
        ``image_shape_``; otherwise it checks that ``X`` matches them. The images
        stay in their own dtype and storage (a memmap, uint8, a torch Dataset)
        until a batch is read.
        """
        if not reset:
            check_is_fitted(self)
        if not (is_torch_dataset(X) or isinstance(X, ImageSource) or hasattr(X, "ndim")):
            X = _as_array(X, "X")  # a list: converted once, here
        flat = getattr(X, "ndim", None) == 2  # None for a Dataset or an ImageSource
        if flat:
            validate_data(self, X, reset=reset, skip_check_array=True)
        source = as_image_source(X, image_shape=getattr(self, "image_shape", None), dtype=dtype,
                                 min_samples=min_samples, num_workers=num_workers)
        if reset:
            self.image_shape_ = tuple(source.image_shape)
            self.n_features_in_ = int(np.prod(self.image_shape_))
            if not flat and hasattr(self, "feature_names_in_"):
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
        """Resolve the ``device`` parameter into ``device_`` (called in ``fit``).

        In a dask.distributed worker this also lowers torch's CPU threads to the
        worker's thread budget (see :func:`~skphase.utils.resolve_device` for the
        GPU each worker picks).
        """
        match_worker_threads()
        self.device_ = resolve_device(getattr(self, "device", "auto"))
        return self.device_

    def __getstate__(self):
        # Every attribute holding a tensor or module, nested ones included (an optimizer's state
        # dict, lists of per-iteration tensors), goes through torch.save, so that __setstate__
        # can map its storages to a device that exists where the model is loaded.
        state = {k: v for k, v in self.__dict__.items() if k not in self._transient_attributes}
        torch_state = {key: value for key, value in state.items() if carries_torch(value)}
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
        if isinstance(device, torch.device) and device.type != "cpu":
            try:
                resolve_device(device)
            except ValueError:
                here = resolve_device("auto")
                warnings.warn(
                    f"This model was fitted on {device}, which is not available here; "
                    f"it is loaded on {here} and will run there.",
                    UserWarning,
                )
                device = state["device_"] = here
        blob = state.pop("_torch_state_bytes", None)
        if blob is not None:
            target = str(device) if isinstance(device, torch.device) else "cpu"

            def restore(storage, location):
                # Storages kept on the CPU on purpose stay there; the others go to the model's device.
                return storage if location == "cpu" else default_restore_location(storage, target)

            state.update(torch.load(io.BytesIO(blob), map_location=restore, weights_only=False))
        self.__dict__.update(state)
