"""GridSearchCV over PhaseCollapse on a local dask cluster (joblib's dask backend) matches a serial run."""

import logging

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

from skphase import PhaseCollapse
from skphase.datasets import load_digits_images

distributed = pytest.importorskip("distributed")
joblib = pytest.importorskip("joblib")


def _search():
    pipe = Pipeline([
        ("pc", PhaseCollapse(widths=(4, 8), batch_size=64, device="cpu", random_state=0, max_iter=2)),
        ("clf", LogisticRegression(max_iter=200)),
    ])
    grid = {"pc__nonlinearity": ["modulus", "soft_threshold", "relu"]}
    return GridSearchCV(pipe, grid, cv=2, n_jobs=2)


def _executed_tasks(dask_worker):
    return dask_worker.state.executed_count


@pytest.mark.timeout(120)
def test_grid_search_on_a_local_cluster_matches_serial():
    X, y = load_digits_images()
    X, y = X[:160], y[:160]
    serial = _search().set_params(n_jobs=None).fit(X, y)

    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=logging.ERROR)
    try:
        with distributed.Client(cluster) as client:
            assert set(client.run(_executed_tasks).values()) == {0}
            with joblib.parallel_backend("dask"):
                parallel = _search().fit(X, y)
            ran = client.run(_executed_tasks)
    finally:
        cluster.close()

    assert len(ran) == 2 and min(ran.values()) >= 1, ran  # both workers ran some of the fits
    scores = parallel.cv_results_["mean_test_score"]
    assert np.isfinite(scores).all() and scores.min() > 0.3  # real fits, better than chance (0.1)
    np.testing.assert_allclose(scores, serial.cv_results_["mean_test_score"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(parallel.cv_results_["std_test_score"], serial.cv_results_["std_test_score"],
                               rtol=0, atol=1e-12)
    assert parallel.best_params_ == serial.best_params_
