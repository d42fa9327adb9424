"""Forward time of the 2-D DT-CWPT: skphase's separable fast path vs a level-by-level cascade vs PyWavelets.

Alternatives timed in one run, on the same float32 batches:

- ``skphase``: :func:`skphase.nn.dtcwpt2d` (two strided convolutions with the
  composite filters of every packet of both trees, all packets in the channel axis);
- ``cascade``: the straightforward level-by-level DT-CWPT kept in
  ``tests/_dtcwpt_reference.py`` (every node of the four trees filtered and
  sub-sampled separately); same output to float precision;
- ``pywt``: PyWavelets' ``WaveletPacket2D`` (real packets of one tree only, the
  library a user would reach for; ``db5``, 10 taps like ``qshift_a``,
  ``mode="periodization"``), looping over images and channels, all ``4**J``
  nodes of level J read.

Run ``python benchmarks/bench_dtcwpt.py [--quick] [--threads N]``; prints times and ratios.
"""

import argparse
import os
import sys
import time

import pywt
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from _dtcwpt_reference import cascade_dtcwpt2d  # noqa: E402

from skphase.nn import dtcwpt2d  # noqa: E402


def best_time(fn, repeat):
    fn()  # warm-up (allocations, kernels)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def pywt_packets(x, J):
    images = x.reshape(-1, x.shape[-2], x.shape[-1]).numpy()
    for image in images:
        packet = pywt.WaveletPacket2D(image, "db5", mode="periodization", maxlevel=J)
        _ = [node.data for node in packet.get_level(J, order="natural")]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller batches")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    shapes = [(256, 1, 32, 32), (64, 3, 224, 224)]
    if args.quick:
        shapes = [(64, 1, 32, 32), (8, 3, 224, 224)]
    print(f"torch {torch.__version__}, {args.threads} thread(s), float32, best of {args.repeat}; "
          f"pywt {pywt.__version__}")
    print(f"{'input':<18} {'J':>2} {'skphase s':>10} {'cascade s':>10} {'pywt s':>9} "
          f"{'cascade/skphase':>16} {'pywt/skphase':>13} {'max |diff|':>11}")
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for shape in shapes:
            x = torch.randn(shape, generator=generator)
            flat = x.reshape(-1, shape[-2], shape[-1])
            for J in (2, 3):
                fast = best_time(lambda: dtcwpt2d(x, J), args.repeat)
                slow = best_time(lambda: cascade_dtcwpt2d(flat, J), max(1, args.repeat - 1))
                wave = best_time(lambda: pywt_packets(x, J), 1)
                diff = (dtcwpt2d(x[:2], J).reshape(-1) - cascade_dtcwpt2d(flat[: 2 * shape[1]], J).reshape(-1))
                label = "x".join(str(s) for s in shape)
                print(f"{label:<18} {J:>2} {fast:>10.4f} {slow:>10.4f} {wave:>9.4f} {slow / fast:>16.1f} "
                      f"{wave / fast:>13.1f} {float(diff.abs().max()):>11.2e}")


if __name__ == "__main__":
    main()
