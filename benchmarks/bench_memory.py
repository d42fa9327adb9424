"""Peak memory of ``transform`` on images read from a memmap: does it stay near the size of the output?

Writes 60,000 random uint8 28 x 28 images (Fashion-MNIST's size) to a temporary
``.npy`` file, then, for each case, starts a fresh Python process (so that the
peaks of two cases never mix) that opens the file with
``np.load(..., mmap_mode="r")``, fits the estimator, and measures the peak
resident memory reached by ``transform`` of the first ``n`` images of the
memmap above the resident memory just before it:

- ``PhaseCollapse``: widths (16, 32), ``max_iter=1``, fitted on 300 images;
- ``DTCWPTFeatures``: ``J=2``, modulus pooling.

The peak is the kernel's high-water mark ``VmHWM`` of ``/proc/self/status``,
reset to the current resident size (``/proc/self/clear_refs``) before
``transform``; where that reset is refused, ``ru_maxrss`` before and after.
Resident memory counts the memmap's pages read from the file (47 MB for all
60,000 images) as well as the output, which ``transform`` returns as one
float32 array. The goal: a peak increase of at most the output plus 150 MB,
whatever ``n``; a transform that converted the whole input to float first
would exceed it by 188 MB (float32) or 376 MB (float64) at ``n = 60,000``.

Run ``python benchmarks/bench_memory.py [--threads N]``; prints one table.
"""

import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np

N_IMAGES = 60_000
SIZES = (6_000, 60_000)
ESTIMATORS = ("PhaseCollapse", "DTCWPTFeatures")
GOAL_MB = 150
MB = 2**20


def _status_kb(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def _reset_peak():
    """Reset VmHWM to the current resident size; False where the kernel refuses."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


def _make_estimator(name, X):
    from skphase import DTCWPTFeatures, PhaseCollapse

    if name == "DTCWPTFeatures":
        return DTCWPTFeatures(J=2, pooling="modulus", device="cpu").fit(X[:300])
    y = np.arange(300) % 10
    return PhaseCollapse(widths=(16, 32), max_iter=1, device="cpu", random_state=0).fit(X[:300], y)


def run_case(path, name, n, threads):
    """One measurement, in this (fresh) process; prints ``output_mb peak_increase_mb``."""
    import resource

    import torch

    torch.set_num_threads(threads)
    X = np.load(path, mmap_mode="r")[:, None]  # (60000, 1, 28, 28) uint8, still a memmap
    model = _make_estimator(name, X)
    model.transform(X[:256])  # first call: lazy allocations of torch and the model, not per-image memory
    hwm = _reset_peak()
    before = _status_kb("VmRSS") if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = model.transform(X[:n])
    after = _status_kb("VmHWM") if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"{out.nbytes / MB:.1f} {(after - before) / 1024:.1f} {'VmHWM' if hwm else 'ru_maxrss'}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--case", nargs=3, metavar=("PATH", "ESTIMATOR", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        path, name, n = args.case
        run_case(path, name, int(n), args.threads)
        return
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "images.npy")
        images = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(N_IMAGES, 28, 28))
        rng = np.random.default_rng(0)
        for start in range(0, N_IMAGES, 10_000):  # written in chunks: this process stays small too
            images[start:start + 10_000] = rng.integers(0, 256, (10_000, 28, 28), dtype=np.uint8)
        images.flush()
        del images
        print(f"{N_IMAGES} uint8 28 x 28 images in a .npy memmap; one fresh process per case, "
              f"{args.threads} torch thread(s)\n")
        header = f"{'estimator':<16}{'n':>8}{'output MB':>11}{'peak RSS +MB':>14}{'+MB - output':>14}" \
                 f"{'goal':>22}{'met':>5}"
        print(header)
        print("-" * len(header))
        for name in ESTIMATORS:
            for n in SIZES:
                command = [sys.executable, os.path.abspath(__file__), "--threads", str(args.threads),
                           "--case", path, name, str(n)]
                result = subprocess.run(command, capture_output=True, text=True, env=env)
                if result.returncode != 0:
                    sys.exit(f"{name} on {n} images failed:\n{result.stderr}")
                output_mb, increase_mb, how = result.stdout.split()[-3:]
                output_mb, increase_mb = float(output_mb), float(increase_mb)
                met = "yes" if increase_mb <= output_mb + GOAL_MB else "no"
                print(f"{name:<16}{n:>8}{output_mb:>11.1f}{increase_mb:>14.1f}{increase_mb - output_mb:>14.1f}"
                      f"{f'<= output + {GOAL_MB} MB':>22}{met:>5}")
        print(f"\npeak measured with {how}")


if __name__ == "__main__":
    main()
