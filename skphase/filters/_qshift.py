"""Q-shift filters and the packet filters of the 2-D dual-tree complex wavelet packet transform.

Where the numbers come from
---------------------------
The only published numbers used are the ten taps of Kingsbury's Q-shift
low-pass filter ``qshift_a`` (:data:`QSHIFT_A_H0`), from

    N. G. Kingsbury, "Design of Q-shift complex wavelets for image processing
    using frequency domain energy minimisation", Proc. IEEE ICIP 2003,
    and the filter tables distributed with his DT-CWT toolbox
    (the same values are printed in the Python ``dtcwt`` package).

Everything else is derived in code: the high-pass filter by the orthonormal
alternating flip, tree b's filters by time reversal (the Q-shift pair has a
half-sample relative delay), and the composite filter of every packet by the
noble identities (the filter of level ``j`` up-sampled by ``2**(j-1)``).

The packet scheme (Bayram & Selesnick, "On the dual-tree complex wavelet
packet and M-band transforms", IEEE Trans. Signal Process. 2008), as checked
numerically here (see ``tests/test_dtcwpt.py``):

* level 1: both trees use ``qshift_a``; tree b's filters are delayed by one sample;
* deeper levels, the bank of a node depends on the deepest high-pass split
  among its ancestors: none (the wavelet low-pass chain) or a level-1
  high-pass split -> tree a uses ``qshift_a`` and tree b its time reverse
  ``qshift_b``; a high-pass split at level >= 2 -> both trees use the same
  filters (``qshift_a``), which keeps an existing Hilbert pair a Hilbert pair.

With these choices every band-pass packet pair ``psi_a + i psi_b`` puts
99.75-99.87 % of its energy on positive frequencies (J = 2, 3); the low-pass
and Nyquist-boundary packets about 83-85 %. Swapping the trees' filters below
the level-1 high-pass node instead drops some band-pass packets below 70 %
in this delay convention (tree b lagging tree a).
"""

from __future__ import annotations

import functools

import numpy as np

from ..utils._images import check_packet_levels

__all__ = [
    "QSHIFT_A_H0",
    "qshift_filters",
    "packet_paths",
    "node_bank",
    "packet_filters_1d",
]

#: Kingsbury's 10-tap Q-shift low-pass analysis filter ``qshift_a`` (tree a),
#: sum sqrt(2), orthonormal to its even shifts (published numbers, see module docstring).
QSHIFT_A_H0 = np.array(
    [
        0.0511304052838317,
        -0.0139753702468888,
        -0.109836051665971,
        0.263839561058938,
        0.766628467793037,
        0.563655710127052,
        0.000873622695217097,
        -0.100231219507476,
        -0.00168968127252815,
        -0.00618188189211644,
    ]
)


def qshift_filters() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The orthonormal Q-shift analysis banks of the two trees.

    Returns
    -------
    dict
        ``{"a": (h0a, h1a), "b": (h0b, h1b)}`` float64 arrays of 10 taps, with
        ``h1[n] = (-1)**n h0[L-1-n]`` (alternating flip) and ``h0b = h0a[::-1]``.

    See Also
    --------
    packet_filters_1d : the packet filters built from these banks.

    Examples
    --------
    >>> banks = qshift_filters()
    >>> round(float(banks["a"][0].sum() ** 2), 6)
    2.0
    >>> bool(np.allclose(banks["b"][0], banks["a"][0][::-1]))
    True
    """
    h0a = QSHIFT_A_H0.copy()
    sign = (-1.0) ** np.arange(h0a.size)
    h0b = h0a[::-1].copy()
    return {"a": (h0a, sign * h0a[::-1]), "b": (h0b, sign * h0b[::-1])}


def packet_paths(J: int) -> list[tuple[int, ...]]:
    """Split sequences of the ``2**J`` packets of one tree, in increasing frequency.

    Packet ``k`` (band ``[k pi / 2**J, (k+1) pi / 2**J]``) is reached by the
    Gray code of ``k``: a high-pass split mirrors the band order below it.

    Parameters
    ----------
    J : int >= 1
        Number of levels of the packet decomposition.

    Returns
    -------
    list of tuple of int
        ``paths[k][j]`` is 0 (low-pass) or 1 (high-pass) at level ``j + 1``.

    See Also
    --------
    packet_filters_1d : the filters of the packets, in this order.

    Examples
    --------
    >>> packet_paths(2)
    [(0, 0), (0, 1), (1, 1), (1, 0)]
    """
    J = check_packet_levels(J)
    paths = []
    for k in range(2**J):
        gray = k ^ (k >> 1)
        paths.append(tuple((gray >> (J - 1 - j)) & 1 for j in range(J)))
    return paths


def node_bank(tree, ancestors):
    """Which Q-shift bank ("a" or "b") splits a node of ``tree``.

    Parameters
    ----------
    tree : {"a", "b"}
    ancestors : tuple of int
        The split decisions (0 low, 1 high) that lead to the node; empty for the input.

    Returns
    -------
    str
        ``"a"`` or ``"b"``; level 1 always ``"a"`` (tree b's one-sample delay is
        applied separately, see :func:`packet_filters_1d`).
    """
    if tree not in ("a", "b"):
        raise ValueError(f"tree must be 'a' or 'b', got {tree!r}.")
    if not ancestors:
        return "a"
    highs = [level for level, bit in enumerate(ancestors, start=1) if bit == 1]
    if highs and highs[-1] >= 2:
        return "a"  # identical filters in both trees below a level>=2 high-pass split
    return tree  # wavelet chain and below the level-1 high-pass split: the Q-shift pair


@functools.lru_cache(maxsize=16)
def _packet_filters_1d(J):
    banks = qshift_filters()
    taps = banks["a"][0].size
    length = (2**J - 1) * (taps - 1) + 2  # composite length plus tree b's one-sample delay
    out = np.zeros((2, 2**J, length))
    for t, tree in enumerate("ab"):
        for k, path in enumerate(packet_paths(J)):
            composite = np.array([1.0])
            for level, bit in enumerate(path):
                filt = banks[node_bank(tree, path[:level])][bit]
                upsampled = np.zeros((filt.size - 1) * 2**level + 1)
                upsampled[:: 2**level] = filt
                composite = np.convolve(composite, upsampled)
            start = 1 if tree == "b" else 0  # level-1 delay of tree b
            out[t, k, start : start + composite.size] = composite
    out.setflags(write=False)
    return out


def packet_filters_1d(J: int) -> np.ndarray:
    """Composite 1-D analysis filters of every packet of both trees.

    Packet ``k`` of tree ``t`` at level ``J`` is ``y[n] = sum_m c[t, k, m] x[2**J n - m]``
    (circular convolution followed by sub-sampling by ``2**J``).

    Parameters
    ----------
    J : int >= 1
        Number of levels of the packet decomposition.

    Returns
    -------
    ndarray of shape (2, 2**J, (2**J - 1) * 9 + 2), float64, read-only
        Trees a, b; packets in increasing frequency (see :func:`packet_paths`).

    See Also
    --------
    packet_paths : the order of the packets.
    qshift_filters : the two-channel banks the packets are built from.

    Examples
    --------
    >>> packet_filters_1d(2).shape
    (2, 4, 29)
    """
    return _packet_filters_1d(check_packet_levels(J))

