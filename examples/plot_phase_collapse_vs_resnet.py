"""Learned scattering beside ResNets: the paper's Table 1 on the data at hand.

Guth, Zarka & Mallat (ICLR 2022, Table 1) claim that iterated phase collapses reach the
accuracy of ResNets: on CIFAR-10, LScat + skip has 7.7 % error against 8.8 % for ResNet-20,
while the fixed scattering transform ("Scat") has 27.7 % and replacing the modulus by
soft-thresholding gives 22.5 % (Table 2). This script trains, on one dataset and with one
training loop (:func:`skphase.nn.train_classifier`: the same optimiser, schedule,
augmentation, epochs and time budget for every network), the models of that table:

- Scat: the fixed scattering transform (kymatio) + a logistic regression;
- LScat and LScat + skip with the modulus (:class:`skphase.ScatteringPhaseCollapse`);
- LScat + skip with complex soft-thresholding (the best phase-preserving map of
  ``plot_phase_collapse_vs_thresholding.py`` on Fashion-MNIST);
- ResNet-20 (He et al.'s CIFAR network) and ResNet-18 (CIFAR variant), from :mod:`skphase.nn`;

then prints the table (test error, parameters, training time, epochs) and saves a bar chart.

Usage
-----
A smoke run on scikit-learn's digits (no download, about a minute)::

    python examples/plot_phase_collapse_vs_resnet.py --quick

Full Fashion-MNIST at the main example's setting (9 epochs or 30 minutes per network)::

    python examples/plot_phase_collapse_vs_resnet.py --dataset fashion-mnist --max-time 1800

The paper's CIFAR-10 configuration (300 epochs, x0.1 every 70) on a GPU, from a local copy of
CIFAR-10 in ``$SKPHASE_DATA/cifar-10-batches-py``::

    python examples/plot_phase_collapse_vs_resnet.py --dataset cifar10 --device cuda

Long runs may be split: ``--models`` trains a subset and ``--results FILE`` keeps every result
(one JSON line per model) so that the table gathers runs made one after the other.
"""

import argparse
import json
import os
import time

import numpy as np
import torch

from plot_phase_collapse_vs_thresholding import CONFIGS, load, train_scattering
from skphase import ScatteringPhaseCollapse
from skphase.nn import evaluate_accuracy, resnet18, resnet20, train_classifier
from skphase.utils import make_generator, resolve_device, retain_freed_memory
from skphase.utils._progress import epoch_progress
from skphase.utils._sources import as_image_source

#: name -> (kind, ScatteringPhaseCollapse parameters); ResNets and Scat are built apart.
SCATTERING_MODELS = {
    "LScat": ("phase collapse", dict(variant="lscat", nonlinearity="modulus")),
    "LScat+skip": ("phase collapse", dict(variant="lscat+skip", nonlinearity="modulus")),
    "LScat+skip soft-threshold": ("phase preserving", dict(variant="lscat+skip", nonlinearity="soft_threshold")),
}
RESNETS = {"ResNet-20": resnet20, "ResNet-18": resnet18}
MODELS = ("Scat", *SCATTERING_MODELS, *RESNETS)

#: Training settings shared by every network (the ResNets get the same ones).
TRAINING_KEYS = ("optimizer", "learning_rate_init", "momentum", "weight_decay", "batch_size", "schedule",
                 "schedule_params", "augmentation", "max_iter", "max_time")
DEFAULT_TRAINING = dict(optimizer="sgd", momentum=0.9, weight_decay=1e-4, schedule="cosine", schedule_params=None,
                        augmentation=None, max_time=None)


def settings(dataset, args):
    """Network and training parameters for ``dataset``, with the command line's overrides."""
    params = {**DEFAULT_TRAINING, **CONFIGS[dataset]["network"]}
    params.pop("variant", None)  # set per model below
    if args.quick:
        params["max_iter"] = 2
    if args.epochs is not None:
        params["max_iter"] = args.epochs
    if args.max_time is not None:
        params["max_time"] = args.max_time
    return params


def load_data(dataset, args):
    n_train = 500 if args.quick and args.n_train is None else args.n_train
    X_train, y_train, X_test, y_test = load(dataset, n_train, args.seed, args.data_home)
    if args.quick:
        X_test, y_test = X_test[:1000], y_test[:1000]
    return X_train, y_train, X_test, y_test


def train_learned_scattering(name, params, data, args):
    X_train, y_train, X_test, y_test = data
    kind, model_params = SCATTERING_MODELS[name]
    model = ScatteringPhaseCollapse(**params, **model_params, device=args.device, random_state=args.seed,
                                    verbose=args.verbose, precision=args.precision)
    model.fit(X_train, y_train)
    return dict(model=name, kind=kind, accuracy=model.score(X_test, y_test), seconds=model.training_time_,
                epochs=model.n_iter_, parameters=sum(p.numel() for p in model.module_.parameters()))


def train_resnet(name, params, data, args):
    """A ResNet through the training loop of ScatteringPhaseCollapse, with the same settings."""
    X_train, y_train, X_test, y_test = data
    classes, codes = np.unique(y_train, return_inverse=True)
    device = resolve_device(args.device)
    torch.manual_seed(args.seed)  # the ResNets' initial weights
    net = RESNETS[name](X_train.shape[1], len(classes)).to(device)
    result = train_classifier(
        net, as_image_source(X_train), torch.as_tensor(codes), optimizer=params["optimizer"],
        max_iter=params["max_iter"], batch_size=params["batch_size"], learning_rate=params["learning_rate_init"],
        momentum=params["momentum"], weight_decay=params["weight_decay"], schedule=params["schedule"],
        schedule_params=params["schedule_params"], augmentation=params["augmentation"],
        max_time=params["max_time"], generator=make_generator(args.seed), device=device, precision=args.precision,
        progress=epoch_progress(args.verbose, params["max_iter"]),
    )
    test_codes = torch.as_tensor(np.searchsorted(classes, y_test))
    accuracy = evaluate_accuracy(net, as_image_source(X_test), test_codes, batch_size=params["batch_size"],
                                 device=device, precision=args.precision)
    return dict(model=name, kind="ResNet", accuracy=accuracy, seconds=result.elapsed, epochs=result.n_iter,
                parameters=sum(p.numel() for p in net.parameters()))


def train_fixed_scattering(dataset, data):
    X_train, y_train, X_test, y_test = data
    result = train_scattering(CONFIGS[dataset]["scattering"], X_train, y_train, X_test, y_test)
    return dict(result, model="Scat", kind="fixed", parameters=None)


def print_table(results, params):
    print(f"\n{'model':<28}{'kind':<18}{'test err (%)':>13}{'parameters':>12}{'time (s)':>10}{'epochs':>8}")
    for r in results:
        n_params = f"{r['parameters'] / 1e6:.2f} M" if r["parameters"] else "-"
        print(f"{r['model']:<28}{r['kind']:<18}{100 * (1 - r['accuracy']):>13.2f}{n_params:>12}"
              f"{r['seconds']:>10.0f}{r['epochs']:>8}")
    error = {r["model"]: 100 * (1 - r["accuracy"]) for r in results}
    epochs = {r["model"]: r["epochs"] for r in results}
    if "LScat+skip" in error and "ResNet-20" in error:
        same = "equal epochs" if epochs["LScat+skip"] == epochs["ResNet-20"] else "UNEQUAL epochs"
        verdict = "yes" if error["LScat+skip"] <= error["ResNet-20"] else "no"
        print(f"\nLScat+skip error <= ResNet-20 error ({same}: {epochs['LScat+skip']} vs {epochs['ResNet-20']}): "
              f"{verdict} ({error['LScat+skip']:.2f} % vs {error['ResNet-20']:.2f} %)")
    if "LScat+skip" in error and "ResNet-18" in error:
        print(f"gap to ResNet-18: {error['LScat+skip'] - error['ResNet-18']:+.2f} points "
              f"({epochs['ResNet-18']} epochs for ResNet-18)")
    print(f"budget: {params['max_iter']} epochs" + (f" or {params['max_time']:.0f} s" if params["max_time"] else "")
          + " per network")


def plot(results, title, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    colours = {"fixed": "tab:gray", "phase collapse": "tab:blue", "phase preserving": "tab:orange",
               "ResNet": "tab:green"}
    errors = [100 * (1 - r["accuracy"]) for r in results]
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.bar([r["model"] for r in results], errors, color=[colours[r["kind"]] for r in results])
    for i, error in enumerate(errors):
        ax.text(i, error, f"{error:.1f}", ha="center", va="bottom", fontsize=8)
    kinds = dict.fromkeys(r["kind"] for r in results)
    ax.legend(handles=[Patch(color=colours[k], label=k) for k in kinds], fontsize=8)
    ax.set_ylabel("test error (%)")
    ax.set_xlabel("model")
    ax.set_title(title, fontsize=9)
    ax.tick_params(axis="x", rotation=20)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"saved {path}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=sorted(CONFIGS), default="digits")
    parser.add_argument("--data-home", help="folder holding cifar-10-batches-py (default: $SKPHASE_DATA)")
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--epochs", type=int, help="override the configuration's number of epochs")
    parser.add_argument("--max-time", type=float, help="wall-clock training budget per network, in seconds")
    parser.add_argument("--n-train", type=int, help="train on a subset of this size")
    parser.add_argument("--quick", action="store_true", help="2 epochs (unless --epochs) on 500 images: a smoke run")
    parser.add_argument("--precision", default="float32", choices=("float32", "bfloat16", "float16"))
    parser.add_argument("--results", help="JSON-lines file: results are appended, and the table shows all of it")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--verbose", type=int, default=0)
    parser.add_argument("--out", default="phase_collapse_vs_resnet.png")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    retain_freed_memory()

    params = settings(args.dataset, args)
    data = load_data(args.dataset, args)
    print(f"{args.dataset}: {len(data[1])} training and {len(data[3])} test images of shape {data[0].shape[1:]}")
    print(f"settings: {params}  precision {args.precision}, {args.threads} torch thread(s)\n", flush=True)

    results = []
    for name in args.models:
        start = time.perf_counter()
        if name == "Scat":
            result = train_fixed_scattering(args.dataset, data)
        elif name in RESNETS:
            result = train_resnet(name, params, data, args)
        else:
            result = train_learned_scattering(name, {k: params[k] for k in TRAINING_KEYS} | _network(params),
                                              data, args)
        result.update(dataset=args.dataset, settings=repr(params), wall=time.perf_counter() - start)
        results.append(result)
        print(f"  {name:<28} test error {100 * (1 - result['accuracy']):6.2f} %  ({result['seconds']:.0f} s, "
              f"{result['epochs']} epochs)", flush=True)
        if args.results:
            with open(args.results, "a") as handle:
                handle.write(json.dumps(result) + "\n")
    if args.results:
        with open(args.results) as handle:
            saved = [json.loads(line) for line in handle if line.strip()]
        latest = {r["model"]: r for r in saved if r["dataset"] == args.dataset}
        results = [latest[name] for name in MODELS if name in latest]
    print_table(results, params)
    title = (f"{args.dataset}: test error, {params['max_iter']} epochs"
             + (f" or {params['max_time']:.0f} s" if params["max_time"] else "") + " per network, seed "
             + str(args.seed))
    plot(results, title, os.path.abspath(args.out))


def _network(params):
    """The architecture part of the parameters (widths, L, factorized)."""
    return {k: params[k] for k in ("widths", "L", "factorized") if k in params}


if __name__ == "__main__":
    main()
