"""Phase collapse versus phase-preserving non-linearities in a learned scattering network.

Reproduces the central comparison of Guth, Zarka & Mallat, "Phase Collapse in
Neural Networks" (ICLR 2022): the same learned scattering network (fixed
Morlet wavelets, learned complex 1x1 projections, no biases) is trained with
each non-linearity, and the modulus, which collapses the phase of the wavelet
coefficients, is compared with phase-preserving maps such as complex
soft-thresholding. The fixed scattering transform with a logistic regression
("Scat") is the non-learned baseline.

Every network gets the same budget (epochs and a wall-clock limit per model).
The script prints a table (test accuracy, training time) and saves a bar chart.

Usage
-----
Default, scikit-learn's digits (no download, a few minutes on 2 CPU cores)::

    python examples/plot_phase_collapse_vs_thresholding.py

Full Fashion-MNIST (Debian package dataset-fashion-mnist, or files in the data home): every network
gets 9 epochs or 30 minutes, whichever ends first (the learning rate then anneals over the time);
on 2 CPU cores the modulus trains its 9 epochs in 18-20 minutes, the phase-preserving maps take
25-28 minutes, about 2.5 hours for the seven networks (modulus 93.08 %, best phase-preserving map
90.92 %, see docs/results.rst)::

    python examples/plot_phase_collapse_vs_thresholding.py --dataset fashion-mnist --max-time 1800
"""

import argparse
import os
import time

import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skphase import ScatteringPhaseCollapse, ScatteringTransform
from skphase import paper_config
from skphase.datasets import load_cifar10, load_digits_images, load_fashion_mnist
from skphase.utils import retain_freed_memory

PHASE_COLLAPSING = ("modulus",)
PHASE_PRESERVING = ("soft_threshold", "modulus_collapse", "sigmoid", "tanh")
OTHERS = ("relu", "identity")

#: Colour of each kind of model in the figures of the examples that compare them (their legend).
KIND_COLOURS = {"fixed": "tab:gray", "phase collapse": "tab:blue", "phase preserving": "tab:orange",
                "other": "tab:purple", "ResNet": "tab:green"}


def kind_of(nonlinearity):
    """The family of a learned network's non-linearity, as the table and the figure name it."""
    if nonlinearity in PHASE_COLLAPSING:
        return "phase collapse"
    return "phase preserving" if nonlinearity in PHASE_PRESERVING else "other"


def legend_of_kinds(ax, kinds, top):
    """The colours of ``kinds`` in a legend band above bars whose labels reach ``top``."""
    from matplotlib.patches import Patch

    ax.set_ylim(0, 1.35 * top)
    ax.legend(handles=[Patch(color=KIND_COLOURS[k], label=k) for k in kinds], loc="upper center", ncol=len(kinds),
              fontsize=8)


def budget_text(max_iter, max_time):
    """The training budget of every network, as the tables and figures state it."""
    return f"{max_iter} epoch{'s' * (max_iter != 1)}" + (f" or {max_time:.0f} s" if max_time else "")

# Network and training budget per dataset: the same for every non-linearity.
CONFIGS = {
    "digits": dict(
        network=dict(widths=(32, 64), L=8, batch_size=64, learning_rate_init=0.05, max_iter=30),
        scattering=dict(J=2, L=8),
    ),
    "fashion-mnist": dict(
        # L = 8 orientations: after 4 epochs 92.5 % test accuracy, where L = 4 reached 91.0 %, at about
        # twice the cost per epoch. Weight decay 1e-3: 92.46 % on a validation split (50,000 / 10,000
        # training images, 4 epochs) against 92.24 % with 5e-4, which overfits over 9 epochs.
        network=dict(widths=(64, 128, 256), L=8, batch_size=128, learning_rate_init=0.05, weight_decay=1e-3,
                     max_iter=9),
        scattering=dict(J=2, L=8),
    ),
    # The paper's CIFAR-10 network and training (skphase.paper_config), with the non-linearity swapped.
    "cifar10": dict(
        network={k: v for k, v in paper_config("cifar10").items() if k != "nonlinearity"},
        scattering=dict(J=2, L=8),
    ),
}


def load(dataset, n_train, seed, data_home=None):
    if dataset == "cifar10":  # the user's local copy, see skphase.datasets.load_cifar10
        X_train, y_train = load_cifar10("train", data_home=data_home)
        X_test, y_test = load_cifar10("test", data_home=data_home)
    elif dataset == "digits":
        X, y = load_digits_images()
        X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.4, stratify=y, random_state=seed)
    else:
        X_train, y_train = load_fashion_mnist("train")
        X_test, y_test = load_fashion_mnist("test")
    if n_train is not None and n_train < len(y_train):
        X_train, _, y_train, _ = train_test_split(X_train, y_train, train_size=n_train, stratify=y_train,
                                                  random_state=seed)
    return X_train, y_train, X_test, y_test


def train_network(nonlinearity, params, X_train, y_train, X_test, y_test, seed, verbose):
    model = ScatteringPhaseCollapse(nonlinearity=nonlinearity, random_state=seed, verbose=verbose, **params)
    model.fit(X_train, y_train)
    return dict(model=nonlinearity, kind=kind_of(nonlinearity), accuracy=model.score(X_test, y_test),
                seconds=model.training_time_, epochs=model.n_iter_, stopped_by=model.stopped_by_)


def train_scattering(params, X_train, y_train, X_test, y_test):
    start = time.perf_counter()
    model = make_pipeline(ScatteringTransform(**params), StandardScaler(), LogisticRegression(max_iter=1000, C=0.1))
    model.fit(X_train, y_train)
    return dict(model="Scat (fixed)", kind="fixed", accuracy=model.score(X_test, y_test),
                seconds=time.perf_counter() - start, epochs=0, stopped_by="-")


def plot(results, title, path):
    """Bar chart of the test error of every model, coloured by kind; returns the figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["model"] for r in results]
    errors = [100 * (1 - r["accuracy"]) for r in results]
    fig, ax = plt.subplots(figsize=(8, 4.4))
    ax.bar(names, errors, color=[KIND_COLOURS[r["kind"]] for r in results])
    for i, error in enumerate(errors):
        ax.text(i, error, f"{error:.1f}", ha="center", va="bottom", fontsize=8)
    legend_of_kinds(ax, dict.fromkeys(r["kind"] for r in results), top=max(errors))
    ax.set_ylabel("test error (%)")
    ax.set_xlabel("non-linearity of the learned network, or the fixed scattering baseline")
    ax.set_title(title, fontsize=10)
    ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"saved {path}")
    return fig


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=sorted(CONFIGS), default="digits")
    parser.add_argument("--data-home", help="folder holding cifar-10-batches-py (default: $SKPHASE_DATA)")
    parser.add_argument("--nonlinearities", nargs="+",
                        default=list(PHASE_COLLAPSING + PHASE_PRESERVING + OTHERS))
    parser.add_argument("--epochs", type=int, help="override the dataset's number of epochs")
    parser.add_argument("--max-time", type=float, help="wall-clock training budget per model, in seconds")
    parser.add_argument("--n-train", type=int, help="train on a stratified subset of this size")
    parser.add_argument("--no-scat", action="store_true", help="skip the fixed scattering baseline")
    parser.add_argument("--quick", action="store_true",
                        help="3 epochs (unless --epochs) on 500 images (unless --n-train): a smoke run")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", choices=("float32", "bfloat16", "float16"), default="float32",
                        help="arithmetic of the networks' forward passes: bfloat16 (CPU or CUDA) and float16 "
                             "(CUDA only) run the products under autocast, statistics and loss in float32")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--verbose", type=int, default=0)
    parser.add_argument("--out", default="phase_collapse_vs_thresholding.png")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    retain_freed_memory()  # on the CPU, large freed activations are reused instead of page-faulted in again

    config = CONFIGS[args.dataset]
    params = dict(config["network"], device=args.device, precision=args.precision)
    n_train = args.n_train
    if args.quick:
        params["max_iter"], n_train = 3, n_train or 500
    if args.epochs is not None:
        params["max_iter"] = args.epochs
    if args.max_time is not None:
        params["max_time"] = args.max_time
    X_train, y_train, X_test, y_test = load(args.dataset, n_train, args.seed, args.data_home)
    print(f"{args.dataset}: {len(y_train)} training and {len(y_test)} test images of shape {X_train.shape[1:]}")
    print(f"network: {params}  ({args.threads} torch thread(s))\n")

    results = []
    for nonlinearity in args.nonlinearities:
        result = train_network(nonlinearity, params, X_train, y_train, X_test, y_test, args.seed, args.verbose)
        results.append(result)
        print(f"  {nonlinearity:<18} test accuracy {100 * result['accuracy']:6.2f} %  "
              f"({result['seconds']:.0f} s, {result['epochs']} epochs, stopped by {result['stopped_by']})",
              flush=True)
    if not args.no_scat:
        results.append(train_scattering(config["scattering"], X_train, y_train, X_test, y_test))

    print(f"\n{'model':<18}{'kind':<18}{'test acc (%)':>13}{'train time (s)':>16}{'epochs':>8}")
    for r in results:
        print(f"{r['model']:<18}{r['kind']:<18}{100 * r['accuracy']:>13.2f}{r['seconds']:>16.0f}{r['epochs']:>8}")
    by_name = {r["model"]: r["accuracy"] for r in results}
    preserving = [n for n in PHASE_PRESERVING if n in by_name]
    if "modulus" in by_name and preserving:
        best = max(preserving, key=by_name.get)
        verdict = "yes" if by_name["modulus"] > by_name[best] else "no"
        print(f"\nmodulus beats every phase-preserving non-linearity: {verdict} "
              f"(modulus {100 * by_name['modulus']:.2f} % vs best phase-preserving {best} "
              f"{100 * by_name[best]:.2f} %)")
    title = (f"Learned scattering on {args.dataset}: test error by non-linearity\n"
             f"{len(y_train)} training / {len(y_test)} test images, "
             f"{budget_text(params['max_iter'], params.get('max_time'))} per network, seed {args.seed}")
    plot(results, title, os.path.abspath(args.out))


if __name__ == "__main__":
    main()
