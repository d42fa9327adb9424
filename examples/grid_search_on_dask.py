"""The non-linearity grid search of the phase-collapse study, run on a dask cluster.

Every non-linearity of :data:`skphase.nn.NONLINEARITIES` is tried in the
learned scattering network of ``plot_phase_collapse_vs_thresholding.py`` (same
network and training budget per dataset), followed by a logistic regression,
with 3-fold cross-validation: ``GridSearchCV`` hands its fits to the cluster
through joblib's dask backend. With ``device="auto"`` each worker trains on its
own GPU when the machine has some (see docs/cluster.rst, "Running on a cluster"), and
torch in each worker uses the worker's threads.

Usage
-----
A local cluster of 2 worker processes, 1 thread each (scikit-learn's digits)::

    python examples/grid_search_on_dask.py

A smoke run (2 epochs on 300 digits)::

    python examples/grid_search_on_dask.py --quick

An existing cluster (``dask scheduler`` / ``dask worker``, dask-jobqueue, dask-kubernetes)::

    python examples/grid_search_on_dask.py --scheduler tcp://10.0.0.5:8786 --dataset fashion-mnist
"""

import argparse
import logging
import os
import sys
import time

import joblib
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

from skphase import PhaseCollapse
from skphase.nn import NONLINEARITIES
from skphase.utils import resolve_device

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from plot_phase_collapse_vs_thresholding import CONFIGS, load  # noqa: E402  (the study's settings)


def make_search(network, device, seed):
    pipe = Pipeline([
        ("pc", PhaseCollapse(**network, device=device, random_state=seed)),
        ("clf", LogisticRegression(max_iter=1000)),
    ])
    # refit=False: every fit runs on the cluster, none on this process.
    return GridSearchCV(pipe, {"pc__nonlinearity": list(NONLINEARITIES)}, cv=3, n_jobs=-1, refit=False)


def print_table(cv_results):
    order = np.argsort(-cv_results["mean_test_score"], kind="stable")
    print(f"\n{'non-linearity':<18}{'mean test acc (%)':>18}{'std (%)':>9}{'fit time (s)':>14}")
    for i in order:
        print(f"{cv_results['param_pc__nonlinearity'][i]:<18}{100 * cv_results['mean_test_score'][i]:>18.2f}"
              f"{100 * cv_results['std_test_score'][i]:>9.2f}{cv_results['mean_fit_time'][i]:>14.1f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2, help="worker processes of the local cluster")
    parser.add_argument("--threads-per-worker", type=int, default=1)
    parser.add_argument("--scheduler", help="address of an existing dask scheduler to use instead")
    parser.add_argument("--dataset", choices=sorted(CONFIGS), default="digits")
    parser.add_argument("--quick", action="store_true", help="2 epochs on 300 training images: a smoke run")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from dask.distributed import Client, LocalCluster  # the `distributed` extra

    network = dict(CONFIGS[args.dataset]["network"])
    n_train = None
    if args.quick:
        network["max_iter"], n_train = 2, 300
    X_train, y_train, _, _ = load(args.dataset, n_train, args.seed)

    if args.scheduler:
        cluster, client = None, Client(args.scheduler)
    else:
        cluster = LocalCluster(n_workers=args.workers, threads_per_worker=args.threads_per_worker,
                               processes=True, dashboard_address=None, silence_logs=logging.ERROR)
        client = Client(cluster)
    try:
        workers = client.scheduler_info()["workers"]
        threads = sum(w["nthreads"] for w in workers.values())
        print(f"{args.dataset}: {len(y_train)} training images of shape {X_train.shape[1:]}; "
              f"{len(workers)} worker(s), {threads} thread(s) in all")
        # What device=... resolves to inside each worker (one GPU per worker when there are GPUs).
        devices = {address: client.submit(resolve_device, args.device, workers=[address], pure=False).result()
                   for address in workers}
        print("device per worker: " + ", ".join(f"{a} -> {d}" for a, d in devices.items()))
        print(f"network: {network}, device={args.device!r}; {len(NONLINEARITIES)} non-linearities x 3 folds\n")
        search = make_search(network, args.device, args.seed)
        start = time.perf_counter()
        with joblib.parallel_backend("dask"):
            search.fit(X_train, y_train)
        print(f"grid search: {time.perf_counter() - start:.1f} s of wall time")
        print_table(search.cv_results_)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


if __name__ == "__main__":
    main()
