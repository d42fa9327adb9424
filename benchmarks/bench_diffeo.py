"""Deforming a data set by random max-entropy diffeomorphisms: batched torch vs a per-image scipy loop.

The per-image loop is what a user would write with numpy and scipy: draw the sine-series
coefficients, build the displacement field, and call ``scipy.ndimage.map_coordinates`` (bilinear,
border clamped) on every channel. skphase draws all fields at once and deforms the whole set in one
call (``grid_sample``, worked through in cache-sized chunks inside ``random_deform``). Both produce the
same images for the same fields (checked below).

Run::

    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_diffeo.py            # 10,000 images 3x32x32
    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_diffeo.py --quick    # 1,000 images
"""

import argparse
import math
import time

import numpy as np
import torch
from scipy import ndimage

from skphase.nn import deform, random_deform, sample_displacement, temperature_from_displacement


def scipy_loop(images, temperature, cutoff, rng):
    """Deform each image with its own field, the way a numpy/scipy user would."""
    n, channels, size, _ = images.shape
    k = np.arange(1, cutoff + 1)
    r2 = k[:, None] ** 2 + k[None, :] ** 2
    std = np.where(np.sqrt(r2) < cutoff + 0.5, np.sqrt(temperature / r2), 0.0)
    sines = np.sin(np.pi * np.linspace(0, 1, size)[:, None] * k[None, :])
    grid_r, grid_c = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    out = np.empty_like(images)
    for i in range(n):
        coef = rng.standard_normal((2, cutoff, cutoff)) * std
        dx = size * sines @ coef[0] @ sines.T
        dy = size * sines @ coef[1] @ sines.T
        coords = np.stack([np.clip(grid_r - dy, 0, size - 1), np.clip(grid_c - dx, 0, size - 1)])
        for ch in range(channels):
            out[i, ch] = ndimage.map_coordinates(images[i, ch], coords, order=1, mode="nearest")
    return out


def torch_batched(images, temperature, cutoff, generator, batch_size):
    """Deform the set in calls of ``batch_size`` images (0: a single call), into one output tensor."""
    if not batch_size or batch_size >= images.shape[0]:
        return random_deform(images, cutoff=cutoff, temperature=temperature, generator=generator)
    # Filling a preallocated tensor, not torch.cat of the pieces: cat would allocate and page-fault
    # a second data-set-sized tensor, which costs about as much as the deformation itself.
    out = torch.empty_like(images)
    for start in range(0, images.shape[0], batch_size):
        out[start:start + batch_size] = random_deform(
            images[start:start + batch_size], cutoff=cutoff, temperature=temperature, generator=generator
        )
    return out


def same_field_agreement(images, temperature, cutoff):
    """Max |torch - scipy| on a few images deformed by identical fields."""
    tau = sample_displacement(8, images.shape[-1], cutoff=cutoff, temperature=temperature,
                              generator=torch.Generator().manual_seed(0))
    ours = deform(torch.as_tensor(images[:8]), tau).numpy()
    size = images.shape[-1]
    rr, cc = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    worst = 0.0
    for i in range(8):
        src_r = np.clip(rr - tau[i, 1].numpy(), 0, size - 1)
        src_c = np.clip(cc - tau[i, 0].numpy(), 0, size - 1)
        coords = np.stack([src_r, src_c])
        for ch in range(images.shape[1]):
            ref = ndimage.map_coordinates(images[i, ch], coords, order=1, mode="nearest")
            worst = max(worst, float(np.abs(ref - ours[i, ch]).max()))
    return worst


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-images", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--channels", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=0,
                        help="images per random_deform call; 0 (default): the whole set in one call")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of the torch path (best kept)")
    parser.add_argument("--scipy-repeats", type=int, default=2, help="timed runs of the scipy loop (best kept)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true", help="1,000 images (unless --n-images)")
    if parser.parse_known_args()[0].quick:
        parser.set_defaults(n_images=1_000)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cutoff = 3
    temperature = temperature_from_displacement(1.0, args.size, cutoff)
    rng = np.random.default_rng(0)
    images = rng.random((args.n_images, args.channels, args.size, args.size), dtype=np.float32)
    device = torch.device(args.device)

    print(f"Deforming {args.n_images} images of {args.channels}x{args.size}x{args.size}, cut-off {cutoff}, "
          f"T = {temperature:.3g} (1-pixel typical displacement); torch threads = {args.threads}, device = {device}")
    print(f"max |torch - scipy| on identical fields: {same_field_agreement(images, temperature, cutoff):.2e}")

    x = torch.as_tensor(images, device=device)
    generator = torch.Generator(device=device).manual_seed(0)
    torch_batched(x[:64], temperature, cutoff, generator, args.batch_size)  # warm-up
    times = []
    for _ in range(args.repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        torch_batched(x, temperature, cutoff, generator, args.batch_size)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    t_torch = min(times)

    # Best of a few runs for both paths: on a shared machine the slowest runs measure the neighbours.
    times = []
    for repeat in range(args.scipy_repeats):
        start = time.perf_counter()
        scipy_loop(images, temperature, cutoff, np.random.default_rng(repeat))
        times.append(time.perf_counter() - start)
    t_scipy = min(times)

    print(f"{'method':<38}{'seconds':>10}{'images/s':>12}")
    label = f"scipy map_coordinates loop (best of {args.scipy_repeats})"
    print(f"{label:<38}{t_scipy:>10.3f}{args.n_images / t_scipy:>12.0f}")
    print(f"{'skphase batched torch (best of ' + str(args.repeats) + ')':<38}{t_torch:>10.3f}"
          f"{args.n_images / t_torch:>12.0f}")
    print(f"speed-up (scipy / torch): {t_scipy / t_torch:.1f}x")
    assert math.isfinite(t_torch)


if __name__ == "__main__":
    main()
