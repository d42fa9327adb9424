"""DTCWPTFeatures: dual-tree complex wavelet packet features with modulus or max pooling."""

from __future__ import annotations

from numbers import Integral

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from ..filters import dtcwpt_packet_info, select_packets
from ..nn import POOLINGS, dtcwpt2d_parts, dtcwpt_pool, idtcwpt2d
from ..utils._progress import progress_bar
from ..utils._sklearn_compat import Interval, StrOptions, _fit_context
from ..utils._torch import map_batches
from ._base import ImageEstimatorMixin

__all__ = ["DTCWPTFeatures"]

_LUMINANCE = (0.299, 0.587, 0.114)  # ITU-R BT.601 weights


class DTCWPTFeatures(ImageEstimatorMixin, TransformerMixin, BaseEstimator):
    """Features from the 2-D dual-tree complex wavelet packet transform (DT-CWPT).

    Each input map is decomposed by ``J`` levels of the DT-CWPT (Kingsbury
    Q-shift filters, Bayram-Selesnick packet scheme, circular boundaries) into
    ``2 * 4**J`` complex Gabor-like channels at stride ``2**J``, then pooled as in
    Leterme et al. (arXiv 2209.11740) with ``m = 2**(J-1)``:
    the modulus path ``|x * W|`` sub-sampled by ``2m``, or the max-pool path
    ``MaxPool3x3/2((x * Re W)`` sub-sampled by ``m)``. The transform is fixed:
    ``fit`` only validates and records the input shape.

    Parameters
    ----------
    J : int, default=2
        Number of packet levels (output stride ``2**J``).
    pooling : {"modulus", "max", "real", "none"}, default="modulus"
        "modulus" and "max" as above; "real": ``Re(x * W)`` at stride ``2m``
        (linear); "none": real and imaginary parts of the complex coefficients
        (invertible with :meth:`inverse_transform`).
    channels : {"all", "no_lowpass", "bandpass"} or array-like, default="all"
        Packets to keep: all; all but the two low-pass ones; only band-pass
        packets (no low-pass nor boundary packet, see
        :func:`skphase.filters.dtcwpt_packet_info`); channel indices; or centre
        frequencies ``[(xi_x, xi_y), ...]`` in radians per sample (nearest packet).
    grey : {None, "mean", "luminance"}, default=None
        Mix colour channels into one grey map first ("luminance": BT.601
        weights, needs 3 channels).
    dtype : {"float64", "float32"}, default="float64"
        Precision of the computation: each batch of images is read in this
        dtype (integer and float16/float32 images exactly, so uint8 0-255 is
        read as 0.0-255.0) and transformed in it. The output is float64 for
        float64 input with ``dtype="float64"`` (so ``inverse_transform`` of
        ``pooling="none"`` features reconstructs float64 images to float64
        round-off), float32 otherwise. "float64" also makes each sample's
        features independent of the batch it is computed in to float32
        precision; "float32" is about twice as fast.
    padding : {"zero", "error"}, default="zero"
        Images whose height or width is not a multiple of ``2**J`` are padded with
        zeros at the bottom/right ("zero") or refused ("error").
    image_shape : tuple of int or None, default=None
        ``(C, H, W)`` or ``(H, W)`` of flat input rows; inferred when None
        (square single-channel images, else ``1 x d``).
    device : {"auto", "cpu", "cuda", "cuda:N"}, default="auto"
    batch_size : int, default=256
        Images read, padded and transformed at a time: memory beyond the
        output grows with ``batch_size``, not with the number of images.
    verbose : int, default=0
        Show a progress bar in ``transform``.

    Attributes
    ----------
    image_shape_ : tuple of int
        ``(C, H, W)`` of the images seen in ``fit``.
    n_features_in_ : int
        ``C * H * W``.
    feature_names_in_ : ndarray of str
        Column names of a flat DataFrame ``X`` (only then).
    device_ : torch.device
        Where the transform runs.
    padded_shape_ : tuple of int
        ``(H, W)`` after zero padding to multiples of ``2**J``.
    channel_indices_ : ndarray of int
        Kept DT-CWPT channels (indices into :func:`~skphase.filters.dtcwpt_packet_info`).
    centre_frequencies_ : ndarray of shape (n_kept, 2)
        Nominal ``(xi_x, xi_y)`` of the kept channels, radians per input sample.
    output_shape_ : tuple of int
        Shape of one transformed sample before flattening: ``(n_maps, h, w)``, or
        ``(n_maps, 2, h, w)`` for ``pooling="none"`` (real, imaginary), where
        ``n_maps = n_input_maps * n_kept`` (input map major).

    See Also
    --------
    ScatteringTransform : the fixed Morlet scattering transform.
    skphase.nn.dtcwpt_pool : the torch function it applies.

    Notes
    -----
    There is no ``precision`` (bfloat16/float16 autocast) parameter: the transform is a few
    convolutions over few channels, bound by memory traffic rather than arithmetic, so that in
    bfloat16 it runs at most slightly faster than in float32, and sometimes slower, while its
    features lose four orders of magnitude of accuracy and :meth:`inverse_transform` its exact
    reconstruction; ``dtype="float32"`` is the fast setting (see benchmarks/bench_precision.py
    for figures).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).random((5, 1, 16, 16))
    >>> features = DTCWPTFeatures(J=2, channels="bandpass", device="cpu").fit(X)
    >>> features.transform(X).shape
    (5, 128)
    >>> features.get_feature_names_out()[0]
    'dtcwptfeatures_c0_xi(+1.178,+1.178)_y0_x0'
    >>> inverse = DTCWPTFeatures(J=2, pooling="none", device="cpu").fit(X)
    >>> bool(np.allclose(inverse.inverse_transform(inverse.transform(X)), X.reshape(5, -1), atol=1e-5))
    True
    """

    _parameter_constraints = {
        "J": [Interval(Integral, 1, None, closed="left")],
        "pooling": [StrOptions(set(POOLINGS))],
        "channels": [StrOptions({"all", "no_lowpass", "bandpass"}), "array-like"],
        "grey": [None, StrOptions({"mean", "luminance"})],
        "dtype": [StrOptions({"float64", "float32"})],
        "padding": [StrOptions({"zero", "error"})],
        "image_shape": [None, tuple, list],
        "device": [str, torch.device],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        *,
        J: int = 2,
        pooling: str = "modulus",
        channels: str | ArrayLike = "all",
        grey: str | None = None,
        dtype: str = "float64",
        padding: str = "zero",
        image_shape: tuple[int, ...] | None = None,
        device: str | torch.device = "auto",
        batch_size: int = 256,
        verbose: int = 0,
    ):
        self.J = J
        self.pooling = pooling
        self.channels = channels
        self.grey = grey
        self.dtype = dtype
        self.padding = padding
        self.image_shape = image_shape
        self.device = device
        self.batch_size = batch_size
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: ArrayLike | torch.utils.data.Dataset, y: ArrayLike | None = None) -> DTCWPTFeatures:
        """Validate ``X`` and record its shape (the transform has no learned state).

        Parameters
        ----------
        X : array-like, torch.Tensor or torch Dataset
            ``(n, C, H, W)``, ``(n, H, W)`` or flat ``(n, d)`` images (any real
            dtype, memmaps included), or a map-style Dataset of images or
            ``(image, label)`` pairs. Only validated, never converted whole.
        y : None
            Ignored; present for scikit-learn's API.

        Returns
        -------
        self
            The fitted transformer.
        """
        self._validate_source(X, reset=True)
        n_channels, height, width = self.image_shape_
        if self.grey == "luminance" and n_channels != 3:
            raise ValueError(
                f"grey='luminance' needs 3-channel (RGB) images; got {n_channels} channel(s). "
                "Use grey='mean' or grey=None."
            )
        size = 2**self.J
        padded = (-(-height // size) * size, -(-width // size) * size)
        if self.padding == "error" and padded != (height, width):
            raise ValueError(
                f"Images of size {(height, width)} are not multiples of 2**J = {size} and padding='error'; "
                f"pad them to {padded}, use padding='zero' or fewer levels J."
            )
        self.padded_shape_ = padded
        self.channel_indices_ = select_packets(self.J, self.channels)
        info = dtcwpt_packet_info(self.J)
        self.centre_frequencies_ = np.stack(
            [info["xi_x"][self.channel_indices_], info["xi_y"][self.channel_indices_]], axis=1
        )
        n_maps = (1 if self.grey else n_channels) * self.channel_indices_.size
        spatial = (padded[0] // size, padded[1] // size)
        parts = (2,) if self.pooling == "none" else ()
        self.output_shape_ = (n_maps,) + parts + spatial
        self._resolve_device()
        return self

    def _prepare(self, images):
        """Grey mixing and zero padding of one batch (already in the computation dtype)."""
        if self.grey == "mean":
            images = images.mean(dim=1, keepdim=True)
        elif self.grey == "luminance":
            weights = torch.tensor(_LUMINANCE, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
            images = (images * weights).sum(dim=1, keepdim=True)
        height, width = images.shape[-2:]
        if (height, width) == self.padded_shape_:
            return images
        return F.pad(images, (0, self.padded_shape_[1] - width, 0, self.padded_shape_[0] - height))

    def _output_dtype(self, source):
        """float64 for float64 images transformed in float64, else float32 (see ``dtype``)."""
        keep = self.dtype == "float64" and source.input_dtype == torch.float64
        return np.float64 if keep else np.float32

    def _features(self, batch, out=None):
        """The features of one batch, ``(n,) + output_shape_``: written into ``out`` when it can.

        Parameters
        ----------
        batch : torch.Tensor
            Images in the computation dtype.
        out : torch.Tensor or None
            Contiguous ``(n,) + output_shape_`` rows of the output array, of any floating dtype.

        Returns
        -------
        torch.Tensor
            ``out`` when every packet is kept with ``pooling="none"`` (the transform writes the
            parts straight into it), else the features, possibly a strided view.
        """
        batch = self._prepare(batch)
        every_packet = self.channel_indices_.size == 2 * 4**self.J
        if self.pooling == "none" and every_packet:
            return dtcwpt2d_parts(batch, self.J, out=out)
        out = dtcwpt_pool(batch, self.J, self.pooling)
        if not every_packet:
            out = out[:, :, torch.as_tensor(self.channel_indices_, device=out.device)]
        if self.pooling == "none":
            out = torch.view_as_real(out).movedim(-1, -3)  # (n, C, k, 2, h, w), a view
        return out.flatten(1, 2)

    def transform(self, X: ArrayLike | torch.utils.data.Dataset) -> np.ndarray:
        """DT-CWPT features of ``X``.

        Parameters
        ----------
        X : array-like, torch.Tensor or torch Dataset
            Images of the shape seen in ``fit`` (see :meth:`fit`), read
            ``batch_size`` at a time.

        Returns
        -------
        ndarray of shape (n, ``prod(output_shape_)``)
            Flattened maps, input map major, then kept packet, (part,) row,
            column; float64 for float64 input with ``dtype="float64"``, else
            float32.

        Raises
        ------
        ValueError
            When the features overflow (NaN or infinity), e.g. for inputs near
            the largest float32.
        """
        source = self._validate_source(X, reset=False, dtype=getattr(torch, self.dtype))
        # _features writes into the output array, or its views are copied once, and cast, into it.
        features = map_batches(
            self._features,
            source,
            batch_size=self.batch_size,
            device=self.device_,
            progress=progress_bar(self.verbose, "DT-CWPT"),
            check_finite=type(self).__name__,
            dtype=self._output_dtype(source),
            sample_shape=self.output_shape_,
        )
        return features.reshape(len(features), -1)

    def inverse_transform(self, X: ArrayLike) -> np.ndarray:
        """Reconstruct images from ``pooling="none"`` features (dropped packets count as zero).

        Parameters
        ----------
        X : array-like of shape (n, ``prod(output_shape_)``)
            Features as ``transform`` returns them.

        Returns
        -------
        ndarray of shape (n, C * H * W)
            Flat images (reshape with ``image_shape_``); exact when all packets
            are kept. float64 for float64 ``X`` with ``dtype="float64"``, else float32.
        """
        check_is_fitted(self)
        if self.pooling != "none" or self.grey is not None:
            raise ValueError(
                "inverse_transform needs pooling='none' and grey=None (modulus, max or real "
                f"features and grey mixing lose information); got pooling={self.pooling!r}, grey={self.grey!r}."
            )
        features = X if isinstance(X, (np.ndarray, torch.Tensor)) else np.asarray(X)  # arrays: not copied
        expected = int(np.prod(self.output_shape_))
        if features.ndim != 2 or features.shape[1] != expected:
            raise ValueError(
                f"X must have shape (n, {expected}) as returned by transform; got {tuple(features.shape)}."
            )
        compute = getattr(torch, self.dtype)
        keep = compute == torch.float64 and str(features.dtype).removeprefix("torch.") == "float64"
        out_dtype = torch.float64 if keep else torch.float32
        n_channels, height, width = self.image_shape_
        n_kept = self.channel_indices_.size
        index = torch.as_tensor(self.channel_indices_)

        def invert(batch):
            parts = batch.to(compute).reshape((-1, n_channels, n_kept) + self.output_shape_[1:])
            coeffs = torch.complex(parts[:, :, :, 0], parts[:, :, :, 1])
            full = coeffs.new_zeros(coeffs.shape[:2] + (2 * 4**self.J,) + coeffs.shape[-2:])
            full[:, :, index.to(full.device)] = coeffs
            return idtcwpt2d(full, self.J)[..., :height, :width].reshape(batch.shape[0], -1).to(out_dtype)

        # Batches of X are cast one at a time (features may be far larger than the images).
        return map_batches(invert, features, batch_size=self.batch_size, device=self.device_)

    def get_feature_names_out(self, input_features: ArrayLike | None = None) -> np.ndarray:
        """Get the names ``dtcwptfeatures_c{map}_xi(+x,+y)[_re|_im]_y{row}_x{col}`` of the features.

        Parameters
        ----------
        input_features : None
            Ignored; present for scikit-learn's API.

        Returns
        -------
        ndarray of str
            One name per feature, in ``transform``'s order.
        """
        check_is_fitted(self)
        names = dtcwpt_packet_info(self.J)["name"][self.channel_indices_]
        n_inputs = 1 if self.grey else self.image_shape_[0]
        h, w = self.output_shape_[-2:]
        parts = ["_re", "_im"] if self.pooling == "none" else [""]
        prefix = type(self).__name__.lower()
        out = [
            f"{prefix}_c{c}_{name}{part}_y{i}_x{j}"
            for c in range(n_inputs)
            for name in names
            for part in parts
            for i in range(h)
            for j in range(w)
        ]
        return np.asarray(out, dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"] if self.dtype == "float64" else ["float32"]
        return tags
