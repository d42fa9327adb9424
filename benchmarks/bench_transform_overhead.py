"""Every estimator's ``transform`` beside the functional core it wraps.

An estimator's ``transform`` validates its input, converts it one batch at a
time, runs the functional core on each batch and writes the result into one
numpy array. This times that whole path against the core alone on the same
images already in a torch tensor of the computation dtype, for one batch of 256
images (``batch_size=256``) of shape 1 x 32 x 32 and 3 x 224 x 224:

- ``DTCWPTFeatures(J, pooling, dtype)`` against :func:`skphase.nn.dtcwpt2d`
  (``pooling="none"``) or :func:`skphase.nn.dtcwpt_pool`, in float32 and in the
  default float64;
- ``ScatteringPhaseCollapse`` (fitted one epoch on a few images) against its
  ``module_.features`` in eval mode under ``torch.no_grad``.

The two calls alternate, repeat after repeat, and the medians are compared, so
that machine noise hits them alike. The goal is a ratio of at most 1.3.

Usage::

    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_transform_overhead.py [--threads 2] [--repeat 5] [--quick]
        [--shapes 1x32x32 3x224x224]
"""

import argparse
import statistics
import time

import numpy as np
import torch

from skphase import DTCWPTFeatures, ScatteringPhaseCollapse
from skphase.nn import dtcwpt2d, dtcwpt_pool

GOAL = 1.3


def alternate(estimator_call, core_call, repeat):
    """Median seconds of each call, the two alternating after one warm-up of each."""
    estimator_call(), core_call()
    times = {"estimator": [], "core": []}
    for _ in range(repeat):
        for name, call in (("estimator", estimator_call), ("core", core_call)):
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
    return statistics.median(times["estimator"]), statistics.median(times["core"])


def dtcwpt_cases(images, quick):
    """``(label, estimator call, core call)`` for the DT-CWPT transformer."""
    levels = (2,) if quick else (2, 3)
    for dtype in ("float32", "float64"):
        tensor = torch.from_numpy(images).to(getattr(torch, dtype))
        for J in levels:
            for pooling in ("none", "modulus"):
                estimator = DTCWPTFeatures(J=J, pooling=pooling, dtype=dtype, batch_size=len(images)).fit(images)

                def core(tensor=tensor, J=J, pooling=pooling):
                    with torch.no_grad():
                        return dtcwpt2d(tensor, J) if pooling == "none" else dtcwpt_pool(tensor, J, pooling)

                yield (f"DTCWPTFeatures J={J} {pooling} {dtype}",
                       lambda estimator=estimator: estimator.transform(images), core)


def phase_collapse_case(images, y):
    """The learned scattering network's ``transform`` and its ``module_.features``."""
    estimator = ScatteringPhaseCollapse(widths=(16, 32), L=4, max_iter=1, batch_size=len(images), random_state=0)
    estimator.fit(images[:16], y[:16])
    module, tensor = estimator.module_.eval(), torch.from_numpy(images)

    def core():
        with torch.no_grad():
            return module.features(tensor).flatten(1)

    return "ScatteringPhaseCollapse widths (16, 32)", lambda: estimator.transform(images), core


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--quick", action="store_true", help="1 x 32 x 32 only, J = 2, 2 repeats")
    parser.add_argument("--shapes", nargs="+", default=["1x32x32", "3x224x224"], help="image shapes, CxHxW")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    repeat = 2 if args.quick else args.repeat
    shapes = [(1, 32, 32)] if args.quick else [tuple(int(n) for n in shape.split("x")) for shape in args.shapes]
    rng = np.random.default_rng(0)
    print(f"torch {torch.__version__}, CPU, {args.threads} thread(s), batch {args.batch}, median of {repeat}, "
          f"estimator and core alternating; goal: ratio <= {GOAL}")
    print(f"\n{'images':<12}{'case':<44}{'transform s':>12}{'core s':>9}{'ratio':>7}")
    ratios = []
    for shape in shapes:
        images = rng.standard_normal((args.batch,) + shape).astype(np.float32)
        y = np.arange(args.batch) % 2
        cases = list(dtcwpt_cases(images, args.quick)) + [phase_collapse_case(images, y)]
        for label, estimator_call, core_call in cases:
            estimator_seconds, core_seconds = alternate(estimator_call, core_call, repeat)
            ratios.append(estimator_seconds / core_seconds)
            print(f"{'x'.join(map(str, shape)):<12}{label:<44}{estimator_seconds:>12.4f}{core_seconds:>9.4f}"
                  f"{ratios[-1]:>7.2f}")
    print(f"\nlargest ratio {max(ratios):.2f} (goal <= {GOAL}): {'met' if max(ratios) <= GOAL else 'not met'}")


if __name__ == "__main__":
    main()
