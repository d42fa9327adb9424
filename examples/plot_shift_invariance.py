"""Max pooling vs complex modulus on dual-tree wavelet packets: where max pooling breaks shift invariance.

Reproduces the central finding of Leterme, Polisano, Perrier and Alahari,
"On the shift invariance of max pooling feature maps in convolutional neural
networks" (arXiv 2209.11740): after a Gabor-like filter ``W`` (here the
channels of the 2-D dual-tree complex wavelet packet transform, J levels,
``m = 2**(J-1)``), max pooling of the real part at stride ``m`` approximates the
modulus at stride ``2m``, and how well depends on the filter frequency through
``gamma_q(m xi)``.

1. Natural images shipped with scikit-image: the per-channel normalised error
   between the max-pool and modulus paths, against the predictor ``gamma_1``
   (at the nominal centre frequency, and averaged over the band the channel
   passes, weighted by the filter response and the images' power spectrum);
   Spearman correlation over the band-pass channels; the one-pixel shift
   instability of both paths.
2. Fashion-MNIST: ``DTCWPTFeatures(pooling="modulus")`` vs ``"max"`` followed by a
   logistic regression: test accuracy and mean flip rate under one-pixel shifts.

Run ``python examples/plot_shift_invariance.py [--quick] [--out FILE.png]``.
"""

import argparse
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from scipy.stats import pearsonr, spearmanr  # noqa: E402
from skimage import color, data  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from skphase.datasets import load_fashion_mnist  # noqa: E402
from skphase.estimators import DTCWPTFeatures  # noqa: E402
from skphase.filters import dtcwpt_packet_info  # noqa: E402
from skphase.metrics import (  # noqa: E402
    dtcwpt_gamma, gamma_q, maxpool_modulus_error, mean_flip_rate, shift_sensitivity,
)
from skphase.nn import DTCWPT2d  # noqa: E402

NATURAL = ["camera", "astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "brick", "grass",
           "gravel", "text", "moon", "page", "horse", "hubble_deep_field", "motorcycle_left", "retina"]


def natural_crops(names, size, max_per_image=None):
    """Grey crops of ``size x size`` (non-overlapping) from scikit-image's bundled photos, in [0, 1]."""
    crops = []
    for name in names:
        try:
            image = getattr(data, name)()
        except Exception:  # an image needing the optional pooch download: skip it
            continue
        if image.ndim == 3:
            image = color.rgb2gray(image[..., :3])
        image = image.astype(np.float32)
        image = (image - image.min()) / max(float(image.max() - image.min()), 1e-9)
        tiles = [image[i : i + size, j : j + size]
                 for i in range(0, image.shape[0] - size + 1, size)
                 for j in range(0, image.shape[1] - size + 1, size)]
        crops.extend(tiles[:max_per_image])
    return np.stack(crops)[:, None]


def frequency_study(X, J):
    info = dtcwpt_packet_info(J)
    m = 2 ** (J - 1)
    bandpass = info["is_bandpass"]
    error = np.sqrt(maxpool_modulus_error(X, J=J))
    nominal = gamma_q(m * np.stack([info["xi_x"], info["xi_y"]], axis=1))
    weighted = dtcwpt_gamma(J, X=X)
    rho_nominal = spearmanr(error[bandpass], nominal[bandpass])[0]
    rho_weighted = spearmanr(error[bandpass], weighted[bandpass])[0]
    shifts = {p: shift_sensitivity(DTCWPT2d(J=J, pooling=p), torch.from_numpy(X))["per_channel"]
              for p in ("modulus", "max")}
    rho_shift = spearmanr(shifts["max"][bandpass] - shifts["modulus"][bandpass], weighted[bandpass])[0]
    print(f"\nNatural images: {X.shape[0]} crops of {X.shape[-1]}x{X.shape[-1]}, J={J} (m={m}), "
          f"{bandpass.sum()} band-pass channels")
    print(f"  sqrt(normalised error) max-pool vs modulus: mean {error[bandpass].mean():.3f}, "
          f"range [{error[bandpass].min():.3f}, {error[bandpass].max():.3f}]")
    print(f"  Spearman(error, gamma_1 at the nominal centre)           = {rho_nominal:+.3f}")
    print(f"  Spearman(error, gamma_1 averaged over the channel's band) = {rho_weighted:+.3f}  "
          f"(Pearson {pearsonr(error[bandpass], weighted[bandpass])[0]:+.3f}; "
          f"Spearman over all {error.size} channels {spearmanr(error, weighted)[0]:+.3f})")
    print(f"  one-pixel shift: relative change modulus {shifts['modulus'][bandpass].mean():.3f}, "
          f"max pool {shifts['max'][bandpass].mean():.3f} (band-pass mean)")
    print(f"  Spearman(max-pool minus modulus shift change, weighted gamma) = {rho_shift:+.3f}")
    return info, error, nominal, weighted, rho_weighted, m


def fashion_study(n_train, n_test, J):
    X_train, y_train = load_fashion_mnist("train", n_samples=n_train, random_state=0)
    X_test, y_test = load_fashion_mnist("test", n_samples=n_test, random_state=0)
    print(f"\nFashion-MNIST: {n_train} train / {n_test} test, DTCWPTFeatures(J={J}) + logistic regression")
    print(f"  {'pooling':<8} {'accuracy':>9} {'flip rate':>10} {'fit+predict s':>14}")
    rows = {}
    for pooling in ("modulus", "max"):
        start = time.perf_counter()
        pipe = make_pipeline(
            DTCWPTFeatures(J=J, pooling=pooling, device="cpu"),
            StandardScaler(),
            LogisticRegression(max_iter=300, C=0.05),
        ).fit(X_train, y_train)
        accuracy = pipe.score(X_test, y_test)
        flips = mean_flip_rate(pipe, X_test, mode="zero")
        rows[pooling] = (accuracy, flips)
        print(f"  {pooling:<8} {accuracy:>9.4f} {flips:>10.4f} {time.perf_counter() - start:>14.1f}")
    return rows


def plot(info, error, nominal, weighted, rho, m, J, out, images):
    """The predictor gamma_1, the measured error per channel, and the two against each other; returns the figure.

    ``images`` says which images the error was measured on (printed under the title).
    """
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    grid = np.linspace(-np.pi, np.pi, 241)
    wx, wy = np.meshgrid(grid, grid, indexing="xy")
    gamma_map = gamma_q(m * np.stack([wx, wy], axis=-1))
    shown = axes[0].imshow(gamma_map, extent=(-np.pi, np.pi, -np.pi, np.pi), origin="lower", cmap="magma")
    axes[0].scatter(info["xi_x"], info["xi_y"], s=6, c="cyan")
    axes[0].set(title=f"gamma_1(m xi), m={m}, and channel centres", xlabel="xi_x", ylabel="xi_y")
    fig.colorbar(shown, ax=axes[0])
    scatter = axes[1].scatter(info["xi_x"], info["xi_y"], c=error, cmap="magma", s=40, marker="s")
    axes[1].set(title="measured sqrt(error) max-pool vs modulus", xlabel="xi_x", ylabel="xi_y",
                xlim=(-np.pi, np.pi), ylim=(-np.pi, np.pi))
    fig.colorbar(scatter, ax=axes[1])
    bp = info["is_bandpass"]
    axes[2].scatter(weighted[bp], error[bp], s=14, label="band-pass")
    axes[2].scatter(weighted[~bp], error[~bp], s=8, alpha=0.4, label="low-pass / boundary")
    axes[2].set(title=f"error vs band-averaged gamma_1\n(Spearman {rho:+.2f} over band-pass channels)",
                xlabel="predicted gamma_1", ylabel="measured sqrt(normalised error)")
    axes[2].legend()
    fig.suptitle(f"DT-CWPT J={J}: max pooling approximates the modulus except where gamma_1 is large\n{images}")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"\nsaved {out}")
    return fig


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer images, smaller Fashion-MNIST subsets")
    parser.add_argument("--out", default="plot_shift_invariance.png")
    parser.add_argument("--J", type=int, default=3)
    args = parser.parse_args()
    torch.manual_seed(0)
    X = natural_crops(NATURAL, 128, max_per_image=6 if args.quick else None)
    info, error, nominal, weighted, rho, m = frequency_study(X, args.J)
    fashion_study(*((2000, 1000) if args.quick else (6000, 2000)), J=2)
    images = f"error measured on {len(X)} grey {X.shape[-1]}x{X.shape[-1]} crops of scikit-image's photos"
    plot(info, error, nominal, weighted, rho, m, args.J, args.out, images)


if __name__ == "__main__":
    main()
