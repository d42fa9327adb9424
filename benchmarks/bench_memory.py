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

With ``--training`` it measures instead the peak memory of training steps on
the CPU: for ResNet-18 and the paper's CIFAR configuration of the learned
scattering network ("lscat" and "lscat+skip", as they train by default and
with ``memory_efficient=True``: the models of ``bench_phase_collapse.py``),
a fresh process builds the network and one batch of 128 random 3 x 32 x 32
images, runs one warm-up step, resets the peak and runs two more SGD steps;
the peak increase above the resident memory before them is what a step needs
beyond the weights (with ``--compile`` also both variants trained through
``torch.compile``: the warm-up step compiles, and the compiler chooses what the
backward keeps). The goal: at most twice
ResNet-18's. The peak includes glibc's heap, where freed blocks below its
mmap threshold stay; run with ``MALLOC_MMAP_THRESHOLD_=65536`` in the
environment (passed to every process) to count live tensors only.

Run ``python benchmarks/bench_memory.py [--threads N] [--training [--compile]]``; prints one table.
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
TRAINING_GOAL = 2.0  # x ResNet-18's peak
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
    """One measurement, in this (fresh) process; prints ``output_mb peak_increase_mb how``."""
    import torch

    torch.set_num_threads(threads)
    X = np.load(path, mmap_mode="r")[:, None]  # (60000, 1, 28, 28) uint8, still a memmap
    model = _make_estimator(name, X)
    model.transform(X[:256])  # first call: lazy allocations of torch and the model, not per-image memory
    outputs = []
    increase, how = _peak_increase(lambda: outputs.append(model.transform(X[:n])))
    print(f"{outputs[0].nbytes / MB:.1f} {increase / 1024:.1f} {how}")


def _peak_increase(run):
    """Peak resident memory (kB) reached by ``run()`` above the resident memory before it, and how it was read."""
    import resource

    hwm = _reset_peak()
    before = _status_kb("VmRSS") if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    run()
    after = _status_kb("VmHWM") if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return after - before, "VmHWM" if hwm else "ru_maxrss"


def run_training_case(name, threads):
    """One training measurement, in this (fresh) process; prints ``peak_increase_mb how``."""
    import torch

    from bench_phase_collapse import CIFAR_MODELS, COMPILED_MODELS, train_step

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = (CIFAR_MODELS | COMPILED_MODELS)[name]().train()
    images, labels = torch.randn(128, 3, 32, 32), torch.randint(0, 10, (128,))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    train_step(model, optimizer, images, labels)  # momentum buffers, torch's lazy allocations, compilation

    def steps():
        for _ in range(2):
            train_step(model, optimizer, images, labels)

    increase, how = _peak_increase(steps)
    print(f"{increase / 1024:.1f} {how}")


def _run_fresh(arguments, env):
    """Run this script with ``arguments`` in a fresh process; its last printed line, split."""
    result = subprocess.run([sys.executable, os.path.abspath(__file__)] + arguments,
                            capture_output=True, text=True, env=env)
    if result.returncode != 0:
        sys.exit(f"{' '.join(arguments)} failed:\n{result.stderr}")
    return result.stdout.split("\n")[-2].split()


def training_table(threads, env, compiled=False):
    from bench_phase_collapse import CIFAR_MODELS, COMPILED_MODELS

    print(f"Training steps on the CPU, batch 128 of 3 x 32 x 32, one fresh process per network, {threads} "
          f"torch thread(s)\n")
    header = f"{'network':<30}{'peak step +MB':>15}{'x ResNet-18':>13}{'goal':>8}{'met':>5}"
    print(header)
    print("-" * len(header))
    peaks = {}
    for name in list(CIFAR_MODELS) + (list(COMPILED_MODELS) if compiled else []):
        increase, how = _run_fresh(["--threads", str(threads), "--training-case", name], env)
        peaks[name] = float(increase)
        ratio = peaks[name] / peaks["ResNet-18"]
        met = "" if name == "ResNet-18" else ("yes" if ratio <= TRAINING_GOAL else "no")
        goal = "" if name == "ResNet-18" else f"<= {TRAINING_GOAL:g}"
        print(f"{name:<30}{peaks[name]:>15.1f}{ratio:>13.2f}{goal:>8}{met:>5}")
    print(f"\npeak measured with {how}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--training", action="store_true", help="peak memory of training steps instead")
    parser.add_argument("--compile", action="store_true",
                        help="with --training, also both variants trained through torch.compile")
    parser.add_argument("--case", nargs=3, metavar=("PATH", "ESTIMATOR", "N"), help=argparse.SUPPRESS)
    parser.add_argument("--training-case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        path, name, n = args.case
        run_case(path, name, int(n), args.threads)
        return
    if args.training_case:
        run_training_case(args.training_case, args.threads)
        return
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
    if args.training:
        training_table(args.threads, env, compiled=args.compile)
        return
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
                output_mb, increase_mb, how = _run_fresh(
                    ["--threads", str(args.threads), "--case", path, name, str(n)], env)
                output_mb, increase_mb = float(output_mb), float(increase_mb)
                met = "yes" if increase_mb <= output_mb + GOAL_MB else "no"
                print(f"{name:<16}{n:>8}{output_mb:>11.1f}{increase_mb:>14.1f}{increase_mb - output_mb:>14.1f}"
                      f"{f'<= output + {GOAL_MB} MB':>22}{met:>5}")
        print(f"\npeak measured with {how}")


if __name__ == "__main__":
    main()
