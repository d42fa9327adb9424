"""Phase collapse separates class means: class separation block by block, modulus vs thresholding.

Guth, Zarka & Mallat ("Phase Collapse in Neural Networks", ICLR 2022) argue that the complex
modulus, which collapses the phase of wavelet coefficients, is what makes class means separate
progressively through the layers of a learned scattering network, while a phase-preserving
soft-thresholding (sparsity) separates them much less. This script trains two
``ScatteringPhaseCollapse`` networks on Fashion-MNIST that differ only by their non-linearity
(and keeps untrained copies as references), then measures after every block, on held-out images:

- the Fisher ratio tr(S_B) / tr(S_W) of between-class to within-class variance,
- the Calinski-Harabasz score,
- the accuracy of the nearest class mean (class means from the training images),
- the accuracy of a linear probe (ridge classifier, count-sketched for wide layers),

streaming over batches, prints the table and saves a PNG.

Run::

    OMP_WAIT_POLICY=PASSIVE python examples/plot_class_separation.py --quick   # about a minute
    OMP_WAIT_POLICY=PASSIVE python examples/plot_class_separation.py           # a few minutes on 2 cores
    python examples/plot_class_separation.py --n-train 60000 --epochs 30 --device cuda   # closer to the paper
"""

import argparse
import sys
import time

import numpy as np
import torch

import skphase
from skphase.datasets import load_fashion_mnist
from skphase.metrics import layerwise_class_separation
from skphase.utils import retain_freed_memory

MEASURES = ("fisher_ratio", "calinski_harabasz", "ncm_accuracy", "probe_accuracy")


def print_table(rows):
    print(f"{'network':<26}{'layer':<10}{'features':>9}{'Fisher':>9}{'CH':>10}{'NCM acc':>9}{'probe acc':>10}")
    for r in rows:
        print(f"{r['network']:<26}{r['layer']:<10}{r['n_features']:>9}{r['fisher_ratio']:>9.3f}"
              f"{r['calinski_harabasz']:>10.1f}{r['ncm_accuracy']:>9.3f}{r['probe_accuracy']:>10.3f}")


def plot(rows, path, title):
    """One panel per separation measure, one line per network, block by block; returns the figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(MEASURES), figsize=(4 * len(MEASURES), 3.4))
    for network in dict.fromkeys(r["network"] for r in rows):
        sub = [r for r in rows if r["network"] == network]
        style = "--" if "init" in network else "-"
        for q, ax in zip(MEASURES, axes):
            ax.plot(range(len(sub)), [r[q] for r in sub], style, marker="o", label=network)
            ax.set_xticks(range(len(sub)), [r["layer"].replace("blocks.", "block ") for r in sub], fontsize=7)
            ax.set_title(q.replace("_", " "), fontsize=9)
            ax.set_xlabel("representation", fontsize=8)
    for ax, label in zip(axes, ("ratio (log scale)", "score (log scale)", "held-out accuracy", "held-out accuracy")):
        ax.set_ylabel(label, fontsize=8)
    axes[0].set_yscale("log")
    axes[1].set_yscale("log")
    axes[-1].legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"saved {path}")
    return fig


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="3000 training and 500 held-out images, one epoch (flags given explicitly win)")
    parser.add_argument("--n-train", type=int, default=10_000)
    parser.add_argument("--n-test", type=int, default=2_000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--widths", type=int, nargs="+", default=[32, 64, 128])
    parser.add_argument("--nonlinearities", nargs="+", default=["modulus", "soft_threshold"])
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="class_separation.png")
    if parser.parse_known_args()[0].quick:
        parser.set_defaults(n_train=3_000, n_test=500, epochs=1)
    args = parser.parse_args()
    if not hasattr(skphase, "ScatteringPhaseCollapse"):
        sys.exit("This example needs skphase.ScatteringPhaseCollapse, which this installation does not provide.")
    torch.set_num_threads(args.threads)
    retain_freed_memory()  # large freed activations are reused, not page-faulted in again
    X, y = load_fashion_mnist("train", n_samples=args.n_train, random_state=args.seed)
    X_test, y_test = load_fashion_mnist("test", n_samples=args.n_test, random_state=args.seed)
    print(f"Fashion-MNIST: {len(X)} training images (class means, probes), {len(X_test)} held-out images; "
          f"widths {tuple(args.widths)}, {args.epochs} epoch(s), device {args.device}, {args.threads} threads")

    rows = []
    for nonlinearity in args.nonlinearities:
        for epochs in (0, args.epochs):
            network = f"{nonlinearity} ({'trained' if epochs else 'init'})"
            est = skphase.ScatteringPhaseCollapse(
                widths=tuple(args.widths), nonlinearity=nonlinearity, max_iter=epochs, batch_size=args.batch_size,
                device=args.device, random_state=args.seed,
            )
            start = time.perf_counter()
            est.fit(X, y)
            if epochs:
                print(f"{network}: trained in {time.perf_counter() - start:.0f} s, "
                      f"test accuracy of its own head {est.score(X_test, y_test):.3f}")
            start = time.perf_counter()
            table = layerwise_class_separation(
                est, X, y, X_test=X_test, y_test=y_test, batch_size=args.batch_size, random_state=args.seed,
            )
            print(f"{network}: separation measured in {time.perf_counter() - start:.0f} s")
            rows += [{**r, "network": network} for r in table]
    print_table(rows)
    print("\nLast block vs input (trained networks):")
    for nonlinearity in args.nonlinearities:
        sub = [r for r in rows if r["network"] == f"{nonlinearity} (trained)"]
        first, last = sub[0], sub[-1]
        gains = ", ".join(f"{q} {first[q]:.3g} -> {last[q]:.3g}" for q in MEASURES)
        ncm = np.array([r["ncm_accuracy"] for r in sub])
        rises = bool(np.all(np.diff(ncm) >= 0))
        print(f"  {nonlinearity:<16} {gains}; NCM accuracy rises block after block: {rises}")
    plot(rows, args.out, title=(
        f"Class separation after each block on {len(y_test)} held-out Fashion-MNIST images (class means and probes "
        f"from {len(y)} training images; widths {tuple(args.widths)}, {args.epochs} epoch(s), seed {args.seed})"))


if __name__ == "__main__":
    main()
