"""Slow level-by-level cascade of the 2-D DT-CWPT, kept as the reference for agreement tests.

It follows the textbook definition: for each of the four separable trees, at each
level, every node is filtered separately by circular convolution with its
node's two filters (chosen by :func:`skphase.filters._qshift.node_bank`) and then
sub-sampled by 2, first along the width, then along the height. The complex
combination of the four trees is written out again here so the fast path is
checked against an independent computation.
"""

import math

import torch
import torch.nn.functional as F

from skphase.filters._qshift import node_bank, packet_paths, qshift_filters


def _circular_filter_downsample(x, filt, axis):
    """``y[n] = sum_t filt[t] x[(n - t) mod N]`` along ``axis``, then keep even ``n``."""
    x = x.movedim(axis, -1)
    n = x.shape[-1]
    taps = filt.numel()
    shape = x.shape
    flat = x.reshape(-1, 1, n)
    index = torch.remainder(torch.arange(n + taps - 1) - (taps - 1), n)
    padded = flat[..., index]
    y = F.conv1d(padded, filt.flip(0).view(1, 1, -1))[..., ::2]
    return y.reshape(shape[:-1] + (n // 2,)).movedim(-1, axis)


def _level_filters(tree, ancestors, like):
    banks = qshift_filters()
    h0, h1 = (torch.as_tensor(f, dtype=like.dtype) for f in banks[node_bank(tree, ancestors)])
    if not ancestors and tree == "b":  # tree b: level-1 filters delayed by one sample
        h0, h1 = F.pad(h0, (1, 0)), F.pad(h1, (1, 0))
    return h0, h1


def cascade_trees(x, J):
    """Real tree coefficients ``{(tree_x, tree_y): {(path_x, path_y): (n, h, w)}}`` for x of shape (n, H, W)."""
    out = {}
    for tx in "ab":
        for ty in "ab":
            nodes = {((), ()): x}
            for _ in range(J):
                children = {}
                for (px, py), data in nodes.items():
                    fx = _level_filters(tx, px, x)
                    fy = _level_filters(ty, py, x)
                    for bx in (0, 1):
                        along_x = _circular_filter_downsample(data, fx[bx], axis=-1)
                        for by in (0, 1):
                            children[(px + (bx,), py + (by,))] = _circular_filter_downsample(
                                along_x, fy[by], axis=-2
                            )
                nodes = children
            out[(tx, ty)] = nodes
    return out


def cascade_dtcwpt2d(x, J):
    """Reference DT-CWPT of ``x`` (n, H, W): complex ``(n, 2 * 4**J, h, w)`` in the fast path's layout."""
    trees = cascade_trees(x, J)
    paths = packet_paths(J)
    scale = 1.0 / (2.0 * math.sqrt(2.0))
    maps = []
    for px in paths:
        for py in paths:
            aa, ab = trees[("a", "a")][(px, py)], trees[("a", "b")][(px, py)]
            ba, bb = trees[("b", "a")][(px, py)], trees[("b", "b")][(px, py)]
            maps.append(torch.complex(aa - bb, ab + ba) * scale)
            maps.append(torch.complex(aa + bb, ba - ab) * scale)
    return torch.stack(maps, dim=1)
