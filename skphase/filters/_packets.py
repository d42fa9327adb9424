"""Metadata of the DT-CWPT output channels: centre frequency, orientation, bandwidth, flags."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from ..utils._images import check_packet_levels

__all__ = ["dtcwpt_packet_info", "select_packets"]


def dtcwpt_packet_info(J: int) -> dict[str, np.ndarray]:
    """Nominal frequency description of the ``2 * 4**J`` complex channels of the 2-D DT-CWPT.

    Channel ``(kx * 2**J + ky) * 2 + s`` is the tensor product of the 1-D packet
    ``kx`` along the width (x) and ``ky`` along the height (y). The 1-D packet
    ``k`` covers ``[k, k + 1] * pi / 2**J``, so its centre is
    ``(k + 1/2) * pi / 2**J`` and its bandwidth ``pi / 2**J`` (radians per sample).
    ``s = 0`` is centred at ``(+xi_kx, +xi_ky)``, ``s = 1`` at ``(+xi_kx, -xi_ky)``.

    Parameters
    ----------
    J : int >= 1
        Number of levels of the packet decomposition.

    Returns
    -------
    dict of ndarray, each of length ``2 * 4**J``
        - ``kx``, ``ky``, ``sign`` (+1 or -1 for the sign of ``xi_y``);
        - ``xi_x``, ``xi_y``: centre frequency (radians per input sample);
        - ``orientation``: ``atan2(xi_y, xi_x)`` in ``(-pi/2, pi/2)``;
        - ``bandwidth``: ``pi / 2**J`` along each axis;
        - ``is_lowpass``: the two channels with ``kx = ky = 0``;
        - ``is_boundary``: other channels touching zero or the Nyquist frequency
          along an axis (``kx`` or ``ky`` in ``{0, 2**J - 1}``), whose pair is not
          analytic there (about 85 % one-sided energy instead of >= 99.7 %);
        - ``is_bandpass``: neither low-pass nor boundary;
        - ``name``: e.g. ``"xi(+0.589,-1.374)"``.

    See Also
    --------
    select_packets : choose channels from this description.
    skphase.nn.dtcwpt2d : the transform whose channels are described.

    Examples
    --------
    >>> info = dtcwpt_packet_info(2)
    >>> len(info["xi_x"]), int(info["is_bandpass"].sum())
    (32, 8)
    >>> str(info["name"][0])
    'xi(+0.393,+0.393)'
    """
    J = check_packet_levels(J)
    P = 2**J
    kx, ky, sign = np.meshgrid(np.arange(P), np.arange(P), np.array([1, -1]), indexing="ij")
    kx, ky, sign = kx.ravel(), ky.ravel(), sign.ravel()
    xi_x = (kx + 0.5) * np.pi / P
    xi_y = sign * (ky + 0.5) * np.pi / P
    edge = np.array([0, P - 1])
    is_lowpass = (kx == 0) & (ky == 0)
    is_boundary = ~is_lowpass & (np.isin(kx, edge) | np.isin(ky, edge))
    names = np.array([f"xi({a:+.3f},{b:+.3f})" for a, b in zip(xi_x, xi_y)])
    return {
        "kx": kx,
        "ky": ky,
        "sign": sign,
        "xi_x": xi_x,
        "xi_y": xi_y,
        "orientation": np.arctan2(xi_y, xi_x),
        "bandwidth": np.full(kx.size, np.pi / P),
        "is_lowpass": is_lowpass,
        "is_boundary": is_boundary,
        "is_bandpass": ~is_lowpass & ~is_boundary,
        "name": names,
    }


def select_packets(J: int, channels: str | ArrayLike = "all") -> np.ndarray:
    """Select the DT-CWPT channels to keep, by name, index or centre frequency.

    Parameters
    ----------
    J : int >= 1
        Number of levels of the packet decomposition.
    channels : {"all", "no_lowpass", "bandpass"} or array-like
        A named selection; integer channel indices; or centre frequencies
        ``[(xi_x, xi_y), ...]`` (radians per sample), each matched to the
        channel whose nominal centre is nearest.

    Returns
    -------
    ndarray of int
        Sorted, unique channel indices.

    See Also
    --------
    dtcwpt_packet_info : the description the selection reads.

    Examples
    --------
    >>> select_packets(2, "bandpass").tolist()
    [10, 11, 12, 13, 18, 19, 20, 21]
    >>> select_packets(2, [(2.0, -1.2)]).tolist()
    [19]
    """
    info = dtcwpt_packet_info(J)
    n = info["xi_x"].size
    if isinstance(channels, str):
        masks = {
            "all": np.ones(n, dtype=bool),
            "no_lowpass": ~info["is_lowpass"],
            "bandpass": info["is_bandpass"],
        }
        if channels not in masks:
            raise ValueError(f"channels must be one of {sorted(masks)} or an array-like, got {channels!r}.")
        selected = np.flatnonzero(masks[channels])
    else:
        values = np.asarray(channels)
        if values.size == 0:
            raise ValueError("channels is empty; keep at least one channel.")
        if values.ndim == 2 and values.shape[1] == 2 and np.issubdtype(values.dtype, np.floating):
            centres = np.stack([info["xi_x"], info["xi_y"]], axis=1)
            distance = np.linalg.norm(centres[None] - values[:, None], axis=2)
            selected = np.unique(distance.argmin(axis=1))
        elif values.ndim == 1 and np.issubdtype(values.dtype, np.integer):
            if values.min() < 0 or values.max() >= n:
                raise ValueError(f"channel indices must lie in [0, {n}) for J={J}; got {values.tolist()}.")
            selected = np.unique(values)
        else:
            raise ValueError(
                "channels must be 'all', 'no_lowpass', 'bandpass', a list of channel indices or a list of "
                f"(xi_x, xi_y) centre frequencies; got an array of shape {values.shape} and dtype {values.dtype}."
            )
    if selected.size == 0:
        raise ValueError(f"channels={channels!r} keeps no channel at J={J} (J=1 has no band-pass packet).")
    return selected
