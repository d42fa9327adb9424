"""Cost of one ConvRFM iteration (kernel, solve, patch AGOP) on 28 x 28 images with 3 x 3 patches.

For each n (default 1000, 4000, 10000) a fresh process times the three steps
of one iteration as ``ConvRFM.fit`` runs them (Laplace patch kernel, float32,
10 classes, all n images in the AGOP), and reports its peak resident memory.
It also times the alternatives a user would pick: the AGOP by autograd
against the closed form (at the smallest n), and the AGOP on a subset of
``--agop-samples`` images. It prints the ratios and how each cost grows with
n (the exponent of n between successive sizes; 2 is quadratic).

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


def _one_iteration(n, threads, agop_samples, with_autograd, queue):
    torch.set_num_threads(threads)
    from skphase.nn._agop import patch_agop_from_patches
    from skphase.nn._patch_kernels import extract_patches, patch_kernel_from_patches, transform_patches

    generator = torch.Generator().manual_seed(0)
    X = torch.rand(n, 1, 28, 28, generator=generator)
    Y = torch.nn.functional.one_hot(torch.randint(10, (n,), generator=generator), 10).float()
    times = {}
    cpu_start = time.process_time()
    start = time.perf_counter()
    patches = extract_patches(X, 3)
    A = transform_patches(patches)
    K = patch_kernel_from_patches(A, kernel="laplace", bandwidth=10.0)
    times["kernel"] = time.perf_counter() - start
    start = time.perf_counter()
    scale = K.max()
    system = K / scale
    system.diagonal().add_(1e-3)
    coef = torch.cholesky_solve(Y, torch.linalg.cholesky(system)) / scale
    times["solve"] = time.perf_counter() - start
    del system, K
    start = time.perf_counter()
    patch_agop_from_patches(patches, patches, coef, kernel="laplace", bandwidth=10.0)
    times["agop"] = time.perf_counter() - start
    times["iteration"] = times["kernel"] + times["solve"] + times["agop"]
    # CPU seconds of all threads: on a machine shared with other jobs, wall time
    # overstates the cost; cpu / threads is the wall time an idle machine would need.
    times["cpu"] = time.process_time() - cpu_start
    if agop_samples and agop_samples < n:
        start = time.perf_counter()
        patch_agop_from_patches(patches[:agop_samples], patches, coef, kernel="laplace", bandwidth=10.0)
        times["agop_subset"] = time.perf_counter() - start
    if with_autograd:
        start = time.perf_counter()
        patch_agop_from_patches(patches, patches, coef, kernel="laplace", bandwidth=10.0, method="autograd")
        times["agop_autograd"] = time.perf_counter() - start
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
    print(f"{'n':>6} {'kernel s':>9} {'solve s':>8} {'AGOP s':>8} {'total s':>8} {'peak GB':>8} "
          f"{'cpu s':>8} {'AGOP(subset) s':>15}")
    results = []
    for i, n in enumerate(sizes):
        queue = context.Queue()
        process = context.Process(target=_one_iteration,
                                  args=(n, args.threads, args.agop_samples, i == 0 and n <= 1000, queue))
        process.start()
        times = queue.get()
        process.join()
        results.append((n, times))
        subset = f"{times['agop_subset']:15.2f}" if "agop_subset" in times else f"{'-':>15}"
        print(f"{n:6d} {times['kernel']:9.2f} {times['solve']:8.2f} {times['agop']:8.2f} "
              f"{times['iteration']:8.2f} {times['peak_rss_gb']:8.2f} {times['cpu']:8.1f} {subset}", flush=True)
    first = results[0][1]
    if "agop_autograd" in first:
        print(f"AGOP at n = {results[0][0]}: autograd {first['agop_autograd']:.2f} s vs closed form "
              f"{first['agop']:.2f} s -> closed form {first['agop_autograd'] / first['agop']:.1f}x faster")
    for (n0, t0), (n1, t1) in zip(results, results[1:]):
        growth = {key: math.log(t1[key] / t0[key]) / math.log(n1 / n0) for key in ("kernel", "solve", "agop")}
        print(f"growth n = {n0} -> {n1}: time x{t1['iteration'] / t0['iteration']:.1f} for n x{n1 / n0:.1f}; "
              "exponents " + ", ".join(f"{k} {v:.2f}" for k, v in growth.items()))
        if "agop_subset" in t1:
            print(f"  AGOP on {args.agop_samples} of {n1} images: {t1['agop'] / t1['agop_subset']:.1f}x faster "
                  "than on all")


if __name__ == "__main__":
    main()
