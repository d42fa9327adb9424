"""Cost of one ConvRFM iteration (kernel, solve, patch AGOP) on 28 x 28 images with 3 x 3 patches.

For each n (default 1000, 4000, 10000) a fresh process times the three steps
of one iteration as ``ConvRFM.fit`` runs them by default (Laplace patch
kernel, float32, 10 classes, the AGOP on ``--agop-samples`` = 1000 of the n
images, ConvRFM's ``agop_max_samples``, with all n as centres), in wall and
CPU seconds, and reports its peak resident memory. It also times the
alternatives a user would pick: the AGOP on all n images, and by autograd
against the closed form (at the smallest n). It prints the ratios and how
each cost grows with n (the exponent of n between successive sizes, from CPU
seconds; 2 is quadratic).

Run ``python benchmarks/bench_convrfm.py`` (``--quick`` for small n).
Set OMP_WAIT_POLICY=PASSIVE on shared machines.
"""

import argparse
import math
import os
import multiprocessing as mp
import resource
import time

import torch


def _timed(times, key, fn):
    """Run ``fn``; record its wall time and the CPU seconds of all threads under ``key``."""
    cpu, wall = time.process_time(), time.perf_counter()
    result = fn()
    times[key] = time.perf_counter() - wall
    times[key + "_cpu"] = time.process_time() - cpu
    return result


def _one_iteration(n, threads, agop_samples, with_autograd, queue):
    torch.set_num_threads(threads)
    from skphase.nn._agop import patch_agop_from_patches
    from skphase.nn._patch_kernels import extract_patches, patch_kernel_from_patches, transform_patches

    generator = torch.Generator().manual_seed(0)
    X = torch.rand(n, 1, 28, 28, generator=generator)
    Y = torch.nn.functional.one_hot(torch.randint(10, (n,), generator=generator), 10).float()
    times = {}
    patches = extract_patches(X, 3)
    K = _timed(times, "kernel",
               lambda: patch_kernel_from_patches(transform_patches(patches), kernel="laplace", bandwidth=10.0))

    def solve():
        scale = K.max()
        system = K / scale
        system.diagonal().add_(1e-3)
        return torch.cholesky_solve(Y, torch.linalg.cholesky(system)) / scale

    coef = _timed(times, "solve", solve)
    del K
    # ConvRFM's default: the AGOP on agop_max_samples (1000) of the n images, all n as centres.
    rows = patches[:agop_samples] if agop_samples and agop_samples < n else patches
    _timed(times, "agop", lambda: patch_agop_from_patches(rows, patches, coef, kernel="laplace", bandwidth=10.0))
    if rows is not patches:
        _timed(times, "agop_all",
               lambda: patch_agop_from_patches(patches, patches, coef, kernel="laplace", bandwidth=10.0))
    for suffix in ("", "_cpu"):
        times["iteration" + suffix] = sum(times[k + suffix] for k in ("kernel", "solve", "agop"))
    if with_autograd:
        _timed(times, "agop_autograd", lambda: patch_agop_from_patches(
            rows, patches, coef, kernel="laplace", bandwidth=10.0, method="autograd"))
    times["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    queue.put(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="n = 250, 500, 1000")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 4000, 10000])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--agop-samples", type=int, default=1000)
    args = parser.parse_args()
    sizes = [250, 500, 1000] if args.quick else args.sizes
    context = mp.get_context("spawn")  # a fresh process per size: its peak memory is that size's
    load = os.getloadavg()[0]
    print(f"load average before the run: {load:.2f} on {os.cpu_count()} CPU(s)")
    print(f"one ConvRFM iteration, 28x28 images, 3x3 patches (P = 676), Laplace kernel, float32, "
          f"{args.threads} thread(s)")
    print("wall seconds (cpu seconds of all threads); cpu / threads is the wall time on an idle machine")
    print(f"{'n':>6} {'kernel':>15} {'solve':>13} {'AGOP':>15} {'iteration':>15} {'peak GB':>8} "
          f"{'AGOP on all n':>15}")
    results = []
    for i, n in enumerate(sizes):
        queue = context.Queue()
        process = context.Process(target=_one_iteration,
                                  args=(n, args.threads, args.agop_samples, i == 0 and n <= 1000, queue))
        process.start()
        times = queue.get()
        process.join()
        results.append((n, times))

        def cell(key, width=15):
            return f"{times[key]:7.1f} ({times[key + '_cpu']:5.1f})".rjust(width) if key in times else "-".rjust(width)

        print(f"{n:6d} {cell('kernel')} {cell('solve', 13)} {cell('agop')} {cell('iteration')} "
              f"{times['peak_rss_gb']:8.2f} {cell('agop_all')}", flush=True)
    first = results[0][1]
    if "agop_autograd" in first:
        print(f"AGOP at n = {results[0][0]}: autograd {first['agop_autograd']:.2f} s vs closed form "
              f"{first['agop']:.2f} s -> closed form {first['agop_autograd'] / first['agop']:.1f}x faster")
    for (n0, t0), (n1, t1) in zip(results, results[1:]):
        growth = {key: math.log(t1[key + "_cpu"] / t0[key + "_cpu"]) / math.log(n1 / n0)
                  for key in ("kernel", "solve", "agop")}
        print(f"growth n = {n0} -> {n1}: cpu time x{t1['iteration_cpu'] / t0['iteration_cpu']:.1f} for "
              f"n x{n1 / n0:.1f}; exponents " + ", ".join(f"{k} {v:.2f}" for k, v in growth.items()))
    for n, t in results:
        if "agop_all" in t:
            print(f"n = {n}: AGOP on {args.agop_samples} images {t['agop_all_cpu'] / t['agop_cpu']:.1f}x cheaper "
                  "(cpu) than on all n")


if __name__ == "__main__":
    main()
