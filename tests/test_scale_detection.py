import numpy as np
import pytest

from skphase.datasets._scale_detection import make_scale_detection


def _distances(positions, size, periodic):
    delta = np.abs(positions[:, 0] - positions[:, 1]).astype(float)
    if periodic:
        delta = np.minimum(delta, size - delta)
    return np.sqrt((delta**2).sum(axis=1))


def test_2d_task_as_in_the_paper():
    X, y, pos = make_scale_detection(400, random_state=0, return_positions=True)
    assert X.shape == (400, 1, 28, 28) and X.dtype == np.float32 and y.dtype == np.int64
    assert np.bincount(y).tolist() == [200, 200]
    # exactly two active pixels of value d^2/2, where the positions say
    assert np.all((X > 0).reshape(400, -1).sum(axis=1) == 2)
    assert np.all(X[X > 0] == 28**2 / 2)
    rows = np.arange(400)
    for k in range(2):
        assert np.all(X[rows, 0, pos[:, k, 0], pos[:, k, 1]] == 392)
    dist = _distances(pos, 28, periodic=False)
    assert np.all(dist[y == 1] < 13) and np.all(dist[y == 0] >= 15)
    assert dist[y == 1].max() > 12 and dist[y == 0].min() < 16  # the classes reach the band edges
    assert not np.all(y[:200] == 1)  # shuffled


def test_1d_task_periodic_distance():
    X, y, pos = make_scale_detection(300, dim=1, size=64, xi=16, gap=4, random_state=1, return_positions=True)
    assert X.shape == (300, 1, 64)
    assert np.all(X[X > 0] == 32)
    dist = _distances(pos, 64, periodic=True)
    assert np.all(dist[y == 1] < 14) and np.all(dist[y == 0] >= 18) and dist.max() <= 32
    _, _, pos_open = make_scale_detection(300, dim=1, size=64, xi=16, gap=4, periodic=False, random_state=1,
                                          return_positions=True)
    assert _distances(pos_open, 64, periodic=False).max() > 32


def test_reproducible_and_odd_counts():
    a = make_scale_detection(11, random_state=3)
    b = make_scale_detection(11, random_state=3)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert np.bincount(a[1]).tolist() == [5, 6]


def test_impossible_configurations_raise():
    with pytest.raises(ValueError, match="largest distance"):
        make_scale_detection(10, size=10, xi=14)
    with pytest.raises(ValueError, match="no pair of distinct pixels"):
        make_scale_detection(10, xi=1.5, gap=2)
    with pytest.raises(ValueError, match="dim"):
        make_scale_detection(10, dim=3)
    with pytest.raises(ValueError, match="n_samples"):
        make_scale_detection(1)


@pytest.mark.parametrize("kwargs, match", [
    ({"xi": float("nan")}, "xi must be finite"),
    ({"gap": float("nan")}, "gap must be finite"),
    ({"gap": -1.0}, "gap must be >= 0"),
    ({"value": float("nan")}, "value must be finite"),
    ({"xi": "14"}, "xi must be a real number"),
])
def test_non_finite_or_bad_numbers_raise_instead_of_looping(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_scale_detection(10, **kwargs)
