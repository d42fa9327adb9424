"""ConvRFM's bandwidth="auto" against the fixed bandwidth 10 of the RFM papers, on the star task and digits.

``bandwidth="auto"`` sets the Laplace kernel's ``L`` to 5 times the median distance between
patches at one position of two training images. Prints, per task and seed, the test accuracy
after each AGOP iteration (iteration 0 is the fixed kernel) for both choices, and the same with
the images scaled by 255 (as uint8 pixels would be), where only "auto" keeps its accuracy.

Usage::

    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_convrfm_bandwidth.py [--seeds 3] [--n-test 1000]
"""

import argparse

import torch

from skphase import ConvRFM
from skphase.datasets import load_digits_images, make_star_task


def staged(bandwidth, patch_size, X_train, y_train, X_test, y_test):
    model = ConvRFM(patch_size=patch_size, n_iter=2, bandwidth=bandwidth, device="cpu", random_state=0)
    model.fit(X_train, y_train)
    scores = model.staged_score(X_test, y_test)
    return " -> ".join(f"{s:.3f}" for s in scores) + f" (L = {model.bandwidth_:.3g})", max(scores[1:])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--n-test", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    tasks = []
    for seed in range(args.seeds):
        X, y = make_star_task(50 + args.n_test, random_state=seed)
        tasks.append((f"star (n_train 50, 11x11 patches), seed {seed}", 11, X[:50], y[:50], X[50:], y[50:]))
    X, y = load_digits_images()
    tasks.append(("digits (n_train 500, 3x3 patches)", 3, X[:500], y[:500], X[500:500 + args.n_test],
                  y[500:500 + args.n_test]))
    print("test accuracy per AGOP iteration (0 = fixed kernel)")
    for name, patch, X_train, y_train, X_test, y_test in tasks:
        print(name)
        for scale in (1.0, 255.0):
            for bandwidth in ("auto", 10.0):
                try:
                    text, best = staged(bandwidth, patch, scale * X_train, y_train, scale * X_test, y_test)
                    text += f"  best after AGOP {best:.3f}"
                except ValueError as error:  # the fixed bandwidth on 0-255 images: the kernel vanishes
                    text = f"fit failed: {str(error)[:60]}..."
                print(f"  images x{scale:<5g} bandwidth={bandwidth!s:<5} {text}", flush=True)


if __name__ == "__main__":
    main()
