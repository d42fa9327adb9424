"""Layer by layer: how trained networks become stable to deformations, not to noise.

Petrini, Favero, Geiger & Wyart (NeurIPS 2021) and Tomasini et al. (2022) measure, for every
layer f of a network, the sensitivity to random max-entropy diffeomorphisms D_f, to noise of the
same norm G_f, and the relative stability R_f = D_f / G_f. At initialisation R is about 1; with
training it falls by decades at the output, D falls with depth and G rises.

This script measures D, G and R on Fashion-MNIST test images at every block of

- two plain CNNs defined here: an all-convolutional one (convolution, batch normalisation and ReLU
  blocks that subsample by stride 2, a linear head on the last maps), and a VGG-like one (the same
  blocks with 2 x 2 max pooling instead of strides, global average pooling, a linear head). Max
  pooling and averaging already make the VGG-like network more stable to deformations than to noise
  at initialisation (R well below 1), so its R has less far to fall with training;
- the learned scattering networks of skphase (``ScatteringPhaseCollapse``) with the modulus and with
  soft-thresholding,

at initialisation and after a short training run, prints the table and saves a PNG.

Every model trains with random crops (zero padding by 3 pixels) and horizontal flips by default
(``--augmentation``), the standard recipe for image classifiers: a network trained on shifted
copies of its images learns to ignore small displacements, and the papers relate the test error to
the relative stability (error ~ sqrt(R)). Without augmentation, 6 epochs of Adam leave R at the
output about 0.1 of its value at initialisation, more or less depending on the seed; with it, well
below (see docs/results.rst for the figures).

Run::

    OMP_WAIT_POLICY=PASSIVE python examples/plot_diffeo_sensitivity.py --quick   # about a minute
    OMP_WAIT_POLICY=PASSIVE python examples/plot_diffeo_sensitivity.py           # about 25 minutes on 2 cores
    python examples/plot_diffeo_sensitivity.py --epochs 30 --spc-epochs 20 --device cuda   # longer
"""

import argparse
import time

import numpy as np
import torch
from torch import nn

from skphase import ScatteringPhaseCollapse
from skphase.datasets import load_fashion_mnist
from skphase.metrics import layerwise_sensitivity
from skphase.nn import train_classifier
from skphase.utils import retain_freed_memory

#: Coverage of the bootstrap intervals of D, G and R (table and error bars).
CONFIDENCE = 0.95


class ConvBlock(nn.Sequential):
    """3 x 3 convolution (with ``stride``), batch normalisation, ReLU, and 2 x 2 max pooling when ``pool``.

    One layer, measured whole.
    """

    is_representation_layer = True

    def __init__(self, c_in, c_out, pool=False, stride=1):
        layers = [nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]
        if pool:
            layers.append(nn.MaxPool2d(2))
        super().__init__(*layers)


class AllConvCNN(nn.Module):
    """An all-convolutional CNN: four blocks (three subsample by stride 2), a linear head on the 4 x 4 maps."""

    def __init__(self, widths=(32, 64, 128, 128), n_classes=10, image_size=28):
        super().__init__()
        strides = (1, 2, 2, 2)
        chans = (1,) + tuple(widths)
        self.blocks = nn.ModuleList([ConvBlock(chans[i], chans[i + 1], stride=strides[i]) for i in range(len(widths))])
        side = image_size
        for stride in strides:
            side = (side - 1) // stride + 1
        self.head = nn.Linear(widths[-1] * side * side, n_classes)

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        return self.head(x.flatten(1))


class PlainCNN(nn.Module):
    """A VGG-like CNN: four convolutional blocks (three max-pool by 2), global average pooling, linear head."""

    def __init__(self, widths=(32, 64, 128, 128), n_classes=10):
        super().__init__()
        pools = (False, True, True, True)
        chans = (1,) + tuple(widths)
        self.blocks = nn.ModuleList([ConvBlock(chans[i], chans[i + 1], pools[i]) for i in range(len(widths))])
        self.head = nn.Linear(widths[-1], n_classes)

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        return self.head(x.mean(dim=(2, 3)))


def train_cnn(model, X, y, *, epochs, batch_size, lr, device, seed, augmentation="crop+flip"):
    """Adam on cross-entropy, learning rate annealed to 0 (cosine) over the run; returns the time in seconds.

    The annealed end point is a settled network, not wherever the last steps
    of a constant learning rate left it; the rate is set before every batch.
    ``augmentation`` is that of :func:`skphase.nn.augment_batch` (None, "crop"
    or "crop+flip"), drawn on the CPU generator seeded by ``seed``.
    """
    model.to(device)
    result = train_classifier(model, torch.as_tensor(X), torch.as_tensor(y), optimizer=torch.optim.Adam,
                              learning_rate=lr, weight_decay=0.0, schedule="cosine", schedule_every="batch",
                              max_iter=epochs, batch_size=batch_size, augmentation=augmentation, device=device,
                              generator=torch.Generator().manual_seed(seed))
    return result.elapsed


@torch.no_grad()
def accuracy(model, X, y, device):
    model.eval()
    pred = torch.cat([model(torch.as_tensor(X[i:i + 512]).to(device)).argmax(1).cpu() for i in range(0, len(X), 512)])
    return float((pred.numpy() == y).mean())


def measure(name, stage, model, X_test, args, accuracy_value):
    rows = layerwise_sensitivity(
        model, X_test, include_output=True, displacement=args.delta, cutoff=args.cutoff,
        batch_size=args.batch_size, n_bootstraps=args.n_bootstraps, confidence=CONFIDENCE, random_state=args.seed,
    )
    for row in rows:
        row.update(model=name, stage=stage, accuracy=accuracy_value)
    return rows


def print_table(rows):
    interval = f"R {CONFIDENCE:.0%} CI"
    print(f"{'model':<30}{'stage':<8}{'layer':<10}{'D':>9}{'G':>9}{'R':>9}  {interval:<20}{'test acc':>9}")
    for r in rows:
        ci = f"[{r['R_low']:.3g}, {r['R_high']:.3g}]"
        acc = "" if r["accuracy"] is None else f"{r['accuracy']:.3f}"
        print(f"{r['model']:<30}{r['stage']:<8}{r['layer']:<10}{r['D']:>9.4f}{r['G']:>9.4f}{r['R']:>9.4f}"
              f"  {ci:<20}{acc:>9}")


def plot(rows, path, settings):
    """D, G and R layer by layer, at initialisation and trained, one row of panels per model; returns the figure.

    ``settings`` (data, epochs, deformations) is printed under the title.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(r["model"] for r in rows))
    fig, axes = plt.subplots(len(models), 3, figsize=(12, 3.2 * len(models)), squeeze=False)
    for m, model in enumerate(models):
        for stage, style in (("init", "--"), ("trained", "-")):
            sub = [r for r in rows if r["model"] == model and r["stage"] == stage]
            depth = np.arange(len(sub))
            for q, ax in zip("DGR", axes[m]):
                values = np.array([r[q] for r in sub])
                low = np.array([r[f"{q}_low"] for r in sub])
                high = np.array([r[f"{q}_high"] for r in sub])
                ax.errorbar(depth, values, yerr=[values - low, high - values], ls=style, marker="o", label=stage,
                            capsize=2)
                ax.set_xticks(depth, [r["layer"].replace("blocks.", "b") for r in sub], fontsize=7)
                ax.set_yscale("log")
                ax.set_title(f"{model}: {q}", fontsize=9)
        axes[m, 0].legend(fontsize=8)
    for row in axes:
        for q, ax in zip("DGR", row):
            ax.set_ylabel(q, fontsize=8)
    for ax in axes[-1]:
        ax.set_xlabel("layer", fontsize=8)
    fig.suptitle("Sensitivity to diffeomorphisms (D), to matched noise (G), and R = D / G, per layer "
                 f"(error bars: {CONFIDENCE:.0%} bootstrap intervals over the test images)\n{settings}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"saved {path}")
    return fig


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="4000 training and 300 test images, one epoch, 200 bootstraps "
                             "(flags given explicitly win)")
    parser.add_argument("--n-train", type=int, default=60_000)
    parser.add_argument("--n-test", type=int, default=1_000, help="test images on which D, G, R are measured")
    parser.add_argument("--epochs", type=int, default=6, help="training epochs of each plain CNN")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--augmentation", default="crop+flip", choices=["none", "crop", "crop+flip"],
                        help="training augmentation of every model (random crops, horizontal flips)")
    parser.add_argument("--delta", type=float, default=1.0, help="typical displacement of the diffeos, pixels")
    parser.add_argument("--cutoff", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--n-bootstraps", type=int, default=500)
    parser.add_argument("--spc-epochs", type=int, default=3, help="training epochs of ScatteringPhaseCollapse")
    parser.add_argument("--no-spc", action="store_true", help="skip ScatteringPhaseCollapse")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="diffeo_sensitivity.png")
    if parser.parse_known_args()[0].quick:
        parser.set_defaults(n_train=4_000, n_test=300, epochs=1, spc_epochs=1, n_bootstraps=200)
    args = parser.parse_args()
    augmentation = None if args.augmentation == "none" else args.augmentation
    torch.set_num_threads(args.threads)
    retain_freed_memory()  # large freed activations are reused, not page-faulted in again
    torch.manual_seed(args.seed)
    X, y = load_fashion_mnist("train", n_samples=args.n_train, random_state=args.seed)
    X_test, y_test = load_fashion_mnist("test", n_samples=args.n_test, random_state=args.seed)
    print(f"Fashion-MNIST: {len(X)} training images, D/G/R on {len(X_test)} test images; diffeos with "
          f"delta = {args.delta} px, cut-off c = {args.cutoff}; augmentation {args.augmentation}; "
          f"device {args.device}, {args.threads} threads")

    rows = []
    for name, architecture in (("all-conv CNN", AllConvCNN), ("VGG-like CNN", PlainCNN)):
        torch.manual_seed(args.seed)
        cnn = architecture().to(args.device)
        rows += measure(name, "init", cnn, X_test, args, accuracy(cnn, X_test, y_test, args.device))
        seconds = train_cnn(cnn, X, y, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                            device=args.device, seed=args.seed, augmentation=augmentation)
        acc = accuracy(cnn, X_test, y_test, args.device)
        print(f"{name}: {args.epochs} epoch(s) in {seconds:.0f} s, test accuracy {acc:.3f}", flush=True)
        rows += measure(name, "trained", cnn, X_test, args, acc)

    if not args.no_spc:
        for nonlinearity in ("modulus", "soft_threshold"):
            name = f"PhaseCollapse {nonlinearity}"
            for stage, epochs in (("init", 0), ("trained", args.spc_epochs)):
                est = ScatteringPhaseCollapse(
                    widths=(32, 64, 128), nonlinearity=nonlinearity, max_iter=epochs, batch_size=args.batch_size,
                    augmentation=augmentation, device=args.device, random_state=args.seed,
                )
                start = time.perf_counter()
                est.fit(X, y)
                acc = est.score(X_test, y_test) if epochs else None
                if epochs:
                    seconds = time.perf_counter() - start
                    print(f"{name}: {epochs} epoch(s) in {seconds:.0f} s, test accuracy {acc:.3f}")
                rows += measure(name, stage, est, X_test, args, acc)

    print_table(rows)
    print("\nR at the output, trained / init:")
    for model in dict.fromkeys(r["model"] for r in rows):
        r0, r1 = (next(r for r in rows if r["model"] == model and r["stage"] == s and r["layer"] == "output")
                  for s in ("init", "trained"))
        trend = [r["D"] for r in rows if r["model"] == model and r["stage"] == "trained" and r["layer"] != "input"]
        falls = all(b <= a for a, b in zip(trend, trend[1:]))
        print(f"  {model:<28} R {r0['R']:.3f} -> {r1['R']:.4f}  (ratio {r1['R'] / r0['R']:.3f});"
              f" trained D by depth {' > '.join(f'{d:.3f}' for d in trend)}"
              f" ({'falls' if falls else 'does not fall'} monotonically)")
    plot(rows, args.out, settings=(
        f"Fashion-MNIST: {len(y)} training images, D, G, R on {len(y_test)} test images; CNNs trained "
        f"{args.epochs} epoch(s), PhaseCollapse {args.spc_epochs}; augmentation {args.augmentation}; diffeos "
        f"delta = {args.delta:g} px, c = {args.cutoff}; seed {args.seed}"))


if __name__ == "__main__":
    main()
