r"""Learned scattering beside ResNets: the paper's Table 1 on the data at hand.

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

With ``--separation`` it also tests the second half of the paper's claim, "iterated phase
collapses progressively improve the separation of class means, as opposed to thresholding":
after every block of each learned scattering network it measures, on the test images, the
accuracy of the nearest class mean (class means from the training images) and the Fisher ratio
(:func:`skphase.metrics.layerwise_class_separation`), prints that table and saves a second PNG.

Usage
-----
A smoke run on scikit-learn's digits (no download, about a minute)::

    python examples/plot_phase_collapse_vs_resnet.py --quick

Full Fashion-MNIST at the main example's setting (9 epochs or 30 minutes per network)::

    python examples/plot_phase_collapse_vs_resnet.py --dataset fashion-mnist --max-time 1800

The paper's CIFAR-10 configuration (300 epochs, x0.1 every 70) on a GPU, from a local copy of
CIFAR-10 in ``$SKPHASE_DATA/cifar-10-batches-py``::

    python examples/plot_phase_collapse_vs_resnet.py --dataset cifar10 --device cuda

Class separation block by block of the modulus and soft-thresholding LScat + skip networks::

    python examples/plot_phase_collapse_vs_resnet.py --dataset fashion-mnist \
        --models "LScat+skip" "LScat+skip soft-threshold" --separation

At equal wall-clock time instead of equal epochs: ``--equal-time`` trains the ResNets for as long
as LScat + skip took in the same run (listed before them), or for ``--equal-time SECONDS``, their
learning rate annealed batch by batch over that time, stopping at the batch where it ends::

    python examples/plot_phase_collapse_vs_resnet.py --dataset fashion-mnist --epochs 2 \
        --models "LScat+skip" ResNet-20 --equal-time

``--compile`` trains every network through ``torch.compile`` (faster steps after a compilation
of a few minutes per network; see ``ScatteringPhaseCollapse(compile=True)``).

Long runs may be split: ``--models`` trains a subset and ``--results FILE`` keeps every result
(one JSON line per model) so that the table gathers runs made one after the other; runs of a model
with other ``--seed`` values are averaged (mean and standard deviation over seeds, error bars in the
figure), and ``--models`` with no name prints the table of the saved runs without training.
"""

import argparse
import json
import os
import time

import numpy as np
import torch

from plot_phase_collapse_vs_thresholding import (CONFIGS, KIND_COLOURS, budget_text, kind_of, legend_of_kinds, load,
                                                 train_scattering)
from plot_class_separation import plot as plot_separation
from plot_class_separation import print_table as print_separation_table
from skphase import ScatteringPhaseCollapse
from skphase.metrics import layerwise_class_separation
from skphase.nn import evaluate_accuracy, resnet18, resnet20, train_classifier
from skphase.utils import make_generator, resolve_device, retain_freed_memory
from skphase.utils._progress import epoch_progress
from skphase.utils._sources import as_image_source

#: name -> ScatteringPhaseCollapse parameters; ResNets and Scat are built apart.
SCATTERING_MODELS = {
    "LScat": dict(variant="lscat", nonlinearity="modulus"),
    "LScat+skip": dict(variant="lscat+skip", nonlinearity="modulus"),
    "LScat+skip soft-threshold": dict(variant="lscat+skip", nonlinearity="soft_threshold"),
}
RESNETS = {"ResNet-20": resnet20, "ResNet-18": resnet18}
MODELS = ("Scat", *SCATTERING_MODELS, *RESNETS)
#: Suffix of the ResNets trained for LScat+skip's time (``--equal-time``), and the epochs they may run
#: at most, as a multiple of the configuration's: the time ends first.
EQUAL_TIME = " (equal time)"
EQUAL_TIME_MAX_EPOCHS = 10
RESULT_NAMES = MODELS + tuple(name + EQUAL_TIME for name in RESNETS)

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
    model_params = SCATTERING_MODELS[name]
    model = ScatteringPhaseCollapse(**params, **model_params, device=args.device, random_state=args.seed,
                                    verbose=args.verbose, precision=args.precision, compile=args.compile)
    model.fit(X_train, y_train)
    result = dict(model=name, kind=kind_of(model_params["nonlinearity"]), accuracy=model.score(X_test, y_test),
                  seconds=model.training_time_, loop_seconds=model.training_time_ - model.recalibration_time_,
                  epochs=model.n_iter_,
                  parameters=sum(p.numel() for p in model.module_.parameters()))
    if args.separation:
        rows = layerwise_class_separation(model, X_train, y_train, X_test=X_test, y_test=y_test,
                                          batch_size=params["batch_size"], random_state=args.seed)
        result["separation"] = [{k: _plain(v) for k, v in row.items()} for row in rows]
    return result


def train_resnet(name, params, data, args, time_budget=None):
    """A ResNet through the training loop of ScatteringPhaseCollapse, with the same settings.

    With ``time_budget`` (seconds) it trains for that long instead of the configuration's epochs: the
    learning rate follows the same schedule batch by batch over the time, and training stops at the
    batch where the time ends; the epochs reported are then fractional.
    """
    X_train, y_train, X_test, y_test = data
    classes, codes = np.unique(y_train, return_inverse=True)
    device = resolve_device(args.device)
    torch.manual_seed(args.seed)  # the ResNets' initial weights
    net = RESNETS[name](X_train.shape[1], len(classes)).to(device)
    max_iter, max_time = params["max_iter"], params["max_time"]
    if time_budget is not None:
        max_iter, max_time = EQUAL_TIME_MAX_EPOCHS * max_iter, time_budget
    result = train_classifier(
        net, as_image_source(X_train), torch.as_tensor(codes), optimizer=params["optimizer"],
        max_iter=max_iter, batch_size=params["batch_size"], learning_rate=params["learning_rate_init"],
        momentum=params["momentum"], weight_decay=params["weight_decay"], schedule=params["schedule"],
        schedule_params=params["schedule_params"], augmentation=params["augmentation"],
        max_time=max_time, generator=make_generator(args.seed), device=device, precision=args.precision,
        compile=args.compile, progress=epoch_progress(args.verbose, max_iter),
        schedule_every="epoch" if time_budget is None else "batch",
    )
    test_codes = torch.as_tensor(np.searchsorted(classes, y_test))
    accuracy = evaluate_accuracy(net, as_image_source(X_test), test_codes, batch_size=params["batch_size"],
                                 device=device, precision=args.precision)
    epochs = result.n_iter
    if time_budget is not None:  # the last epoch was cut where the time ended
        epochs = round(result.n_batches / result.batches_per_epoch, 2)
    return dict(model=name + ("" if time_budget is None else EQUAL_TIME), kind="ResNet", accuracy=accuracy,
                seconds=result.elapsed, loop_seconds=result.elapsed - result.recalibration_time, epochs=epochs,
                parameters=sum(p.numel() for p in net.parameters()))


def equal_time_budget(args, results):
    """Seconds the ResNets train for with ``--equal-time``: given, or LScat+skip's in this run.

    The time of the training loop: every network then gets its own final statistics pass.
    """
    if args.equal_time:
        return args.equal_time
    for result in results:
        if result["model"] == "LScat+skip":
            return result["loop_seconds"]
    raise SystemExit("--equal-time without SECONDS needs LScat+skip before the ResNets in --models.")


def train_fixed_scattering(dataset, data):
    X_train, y_train, X_test, y_test = data
    result = train_scattering(CONFIGS[dataset]["scattering"], X_train, y_train, X_test, y_test)
    return dict(result, model="Scat", parameters=None)


def summarise(results):
    """One row per model: test error over the seeds run (mean, standard deviation), parameters, time, epochs.

    Runs of one model gathered from a results file count together only when they share the settings and
    precision (and compilation) of that model's newest run (so a run at another budget replaces, not joins, the earlier
    ones), and a seed run twice counts once (its newest run).
    """
    def setting(r):
        return r.get("settings"), r.get("precision", "float32"), r.get("compile", False)

    rows = []
    for name in dict.fromkeys(r["model"] for r in results):
        newest = [r for r in results if r["model"] == name][-1]
        by_seed = {r.get("seed", 0): r for r in results if r["model"] == name and setting(r) == setting(newest)}
        runs = list(by_seed.values())
        errors = np.array([100 * (1 - r["accuracy"]) for r in runs])
        rows.append(dict(model=name, kind=newest["kind"], parameters=newest["parameters"], error=errors.mean(),
                         error_sd=errors.std(ddof=1) if len(runs) > 1 else 0.0, errors=errors,
                         seeds=[r.get("seed", 0) for r in runs], seconds=np.mean([r["seconds"] for r in runs]),
                         loop_seconds=np.mean([r.get("loop_seconds", r["seconds"]) for r in runs]),
                         epochs=newest["epochs"], separation=newest.get("separation")))
    return rows


def print_table(rows, params):
    print(f"\n{'model':<28}{'kind':<18}{'test err (%)':>16}{'seeds':>6}{'parameters':>12}{'time (s)':>10}{'epochs':>8}")
    for r in rows:
        n_params = f"{r['parameters'] / 1e6:.2f} M" if r["parameters"] else "-"
        spread = f" +- {r['error_sd']:.2f}" if len(r["seeds"]) > 1 else ""
        print(f"{r['model']:<28}{r['kind']:<18}{r['error']:>8.2f}{spread:>8}{len(r['seeds']):>6}{n_params:>12}"
              f"{r['seconds']:>10.0f}{r['epochs']:>8}")
    by_name = {r["model"]: r for r in rows}
    skip, resnet20, resnet18 = (by_name.get(name) for name in ("LScat+skip", "ResNet-20", "ResNet-18"))
    if skip and resnet20:
        same = "equal epochs" if skip["epochs"] == resnet20["epochs"] else "UNEQUAL epochs"
        verdict = "yes" if skip["error"] <= resnet20["error"] else "no"
        print(f"\nLScat+skip error <= ResNet-20 error ({same}: {skip['epochs']} vs {resnet20['epochs']}): "
              f"{verdict} ({skip['error']:.2f} % vs {resnet20['error']:.2f} %, mean of {len(skip['seeds'])} and "
              f"{len(resnet20['seeds'])} seed(s))")
    equal = by_name.get("ResNet-20" + EQUAL_TIME)
    if skip and equal:
        verdict = "yes" if skip["error"] <= equal["error"] else "no"
        print(f"LScat+skip error <= ResNet-20 error at equal wall-clock time (training loops of "
              f"{skip['loop_seconds']:.0f} s and {equal['loop_seconds']:.0f} s: {skip['epochs']} and "
              f"{equal['epochs']} epochs): {verdict} ({skip['error']:.2f} % vs {equal['error']:.2f} %)")
    if skip and resnet18:
        print(f"gap to ResNet-18: {skip['error'] - resnet18['error']:+.2f} points "
              f"({resnet18['epochs']} epochs in {resnet18['seconds']:.0f} s for ResNet-18, "
              f"{skip['epochs']} in {skip['seconds']:.0f} s for LScat+skip)")
    print(f"budget: {budget_text(params['max_iter'], params['max_time'])} per network")


def _plain(value):
    """A JSON-friendly copy of a separation table's cell."""
    return value.item() if isinstance(value, np.generic) else value


def separation_verdict(results):
    """Print the separation table of every measured network and what holds of the paper's claim.

    The claim, for the modulus: nearest-class-mean (NCM) accuracy rises block after block, ends above
    the input's, and stays above soft-thresholding's at every block.
    """
    tables = {r["model"]: r["separation"] for r in results if r.get("separation")}
    if not tables:
        return []
    rows = [{**row, "network": name} for name, table in tables.items() for row in table]
    print()
    print_separation_table(rows)
    ncm = {name: np.array([row["ncm_accuracy"] for row in table]) for name, table in tables.items()}
    for name, values in ncm.items():
        print(f"{name}: NCM accuracy rises block after block: {bool(np.all(np.diff(values) > 0))}; "
              f"last block above the input: {bool(values[-1] > values[0])} "
              f"({values[0]:.3f} -> {values[-1]:.3f})")
    modulus, thresholding = ncm.get("LScat+skip"), ncm.get("LScat+skip soft-threshold")
    if modulus is not None and thresholding is not None:
        above = modulus[1:] > thresholding[1:]
        print(f"modulus NCM accuracy above soft-thresholding's at every block: {bool(above.all())} "
              f"(blocks: {', '.join(f'{a:.3f} vs {b:.3f}' for a, b in zip(modulus[1:], thresholding[1:]))})")
    return rows


def plot(rows, title, path):
    """Bar chart of every model's test error (mean and spread over seeds), coloured by kind; returns the figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.4))
    positions = np.arange(len(rows))
    ax.bar(positions, [r["error"] for r in rows], color=[KIND_COLOURS[r["kind"]] for r in rows],
           yerr=[r["error_sd"] for r in rows], capsize=3)
    tops = [max(r["error"] + r["error_sd"], *r["errors"]) for r in rows]
    for i, (r, top) in enumerate(zip(rows, tops)):
        # One dot per seed, so that the spread behind each bar is visible.
        ax.plot(np.full(len(r["errors"]), i), r["errors"], "k.", markersize=3)
        seeds = f"{len(r['seeds'])} seed{'s' * (len(r['seeds']) > 1)}"
        ax.text(i, top, f"{r['error']:.2f}\n({seeds})", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(positions, [r["model"] for r in rows])
    legend_of_kinds(ax, dict.fromkeys(r["kind"] for r in rows), top=max(tops))
    ax.set_ylabel("test error (%): mean, sd over seeds, dots")
    ax.set_xlabel("model")
    ax.set_title(title, fontsize=9)
    ax.tick_params(axis="x", rotation=20)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"saved {path}")
    return fig


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=sorted(CONFIGS), default="digits")
    parser.add_argument("--data-home", help="folder holding cifar-10-batches-py (default: $SKPHASE_DATA)")
    parser.add_argument("--models", nargs="*", choices=MODELS, default=list(MODELS),
                        help="models to train; none, with --results, prints the table of the saved runs")
    parser.add_argument("--epochs", type=int, help="override the configuration's number of epochs")
    parser.add_argument("--max-time", type=float, help="wall-clock training budget per network, in seconds")
    parser.add_argument("--equal-time", nargs="?", type=float, const=0.0, metavar="SECONDS",
                        help="train the ResNets for LScat+skip's time in this run (listed before them) or for "
                             "SECONDS, the schedule run batch by batch over that time, instead of for the epochs")
    parser.add_argument("--n-train", type=int, help="train on a subset of this size")
    parser.add_argument("--quick", action="store_true", help="2 epochs (unless --epochs) on 500 images: a smoke run")
    parser.add_argument("--precision", default="float32", choices=("float32", "bfloat16", "float16"))
    parser.add_argument("--compile", action="store_true",
                        help="train every network through torch.compile: faster steps after a compilation of "
                             "minutes (a C++ compiler on the CPU, Triton on CUDA)")
    parser.add_argument("--separation", action="store_true",
                        help="measure class separation after every block of the learned scattering networks")
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
    print(f"settings: {params}  precision {args.precision}{', compiled' if args.compile else ''}, "
          f"{args.threads} torch thread(s)\n", flush=True)

    results = []
    for name in args.models:
        start = time.perf_counter()
        if name == "Scat":
            result = train_fixed_scattering(args.dataset, data)
        elif name in RESNETS:
            budget = None if args.equal_time is None else equal_time_budget(args, results)
            result = train_resnet(name, params, data, args, time_budget=budget)
        else:
            result = train_learned_scattering(name, {k: params[k] for k in TRAINING_KEYS} | _network(params),
                                              data, args)
        result.update(dataset=args.dataset, settings=repr(params), seed=args.seed, precision=args.precision,
                      compile=args.compile, wall=time.perf_counter() - start)
        results.append(result)
        print(f"  {name:<28} test error {100 * (1 - result['accuracy']):6.2f} %  ({result['seconds']:.0f} s, "
              f"{result['epochs']} epochs)", flush=True)
        if args.results:
            with open(args.results, "a") as handle:
                handle.write(json.dumps(result) + "\n")
    if args.results:
        with open(args.results) as handle:
            saved = [json.loads(line) for line in handle if line.strip()]
        results = [r for name in RESULT_NAMES for r in saved if r["dataset"] == args.dataset and r["model"] == name]
    rows = summarise(results)
    print_table(rows, params)
    title = (f"{args.dataset}, {len(data[1])} training / {len(data[3])} test images: test error, "
             f"{budget_text(params['max_iter'], params['max_time'])} per network")
    plot(rows, title, os.path.abspath(args.out))
    separation_rows = separation_verdict(rows)
    if separation_rows:
        root, extension = os.path.splitext(os.path.abspath(args.out))
        plot_separation(separation_rows, f"{root}_separation{extension}",
                        title=f"{args.dataset}: class separation after each block on the test images ({title})")


def _network(params):
    """The architecture part of the parameters (widths, L, factorized)."""
    return {k: params[k] for k in ("widths", "L", "factorized") if k in params}


if __name__ == "__main__":
    main()
