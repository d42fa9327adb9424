"""Star task and noise-frame task: shapes, balance, reproducibility, placement."""

import numpy as np
import pytest

from skphase.datasets._synthetic_images import make_noisy_frame_task, make_star_task, star_pattern


def test_star_task_balanced_reproducible_and_star_where_label_says():
    X, y = make_star_task(40, random_state=0, noise_std=0.0, star_size=5, amplitude=2.0)
    X2, y2 = make_star_task(40, random_state=0, noise_std=0.0, star_size=5, amplitude=2.0)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)
    assert X.shape == (40, 3, 32, 32) and X.dtype == np.float32 and y.sum() == 20
    # Without noise, positives hold exactly one star (17 pixels of height 2) in channels 0 and 1 only.
    totals = X.sum(axis=(2, 3))
    np.testing.assert_allclose(totals[y == 1][:, :2], 2.0 * star_pattern(5).sum())
    np.testing.assert_allclose(totals[y == 1][:, 2], 0.0)
    np.testing.assert_allclose(totals[y == 0], 0.0)
    # Stars are at different places in different images.
    where = [tuple(np.argwhere(image[0] > 0).min(0)) for image in X[y == 1]]
    assert len(set(where)) > 5


def test_star_task_noise_level():
    X, y = make_star_task(200, random_state=1)
    assert abs(X[y == 0].std() - 0.3) < 0.01
    assert not np.array_equal(X, make_star_task(200, random_state=2)[0])


def test_noisy_frame_pastes_images_at_their_offsets():
    images = np.random.RandomState(0).rand(6, 2, 5, 4).astype(np.float32)
    X, labels, offsets = make_noisy_frame_task(images, np.arange(6), frame_size=(9, 11), return_offsets=True,
                                               random_state=3)
    assert X.shape == (6, 2, 9, 11)
    np.testing.assert_array_equal(labels, np.arange(6))
    for image, frame, (r, c) in zip(images, X, offsets):
        np.testing.assert_array_equal(frame[:, r : r + 5, c : c + 4], image)
    assert offsets[:, 0].max() <= 4 and offsets[:, 1].max() <= 7
    assert len({tuple(o) for o in offsets}) > 1
    outside = X.copy()
    for frame, (r, c) in zip(outside, offsets):
        frame[:, r : r + 5, c : c + 4] = np.nan
    assert abs(np.nanstd(outside) - 1.0) < 0.1


def test_noisy_frame_accepts_flat_and_3d_input():
    X = make_noisy_frame_task(np.zeros((3, 16)), frame_size=6, noise_std=0.0, random_state=0)
    assert X.shape == (3, 1, 6, 6) and np.all(X == 0)
    assert make_noisy_frame_task(np.zeros((3, 4, 4)), frame_size=5, random_state=0).shape == (3, 1, 5, 5)


def test_bad_inputs():
    with pytest.raises(ValueError, match="smaller than the images"):
        make_noisy_frame_task(np.zeros((2, 1, 8, 8)), frame_size=6)
    with pytest.raises(ValueError, match="labels"):
        make_noisy_frame_task(np.zeros((2, 1, 8, 8)), np.zeros(3))
    with pytest.raises(ValueError, match="odd"):
        make_star_task(4, star_size=4)
    with pytest.raises(ValueError, match="star_channels"):
        make_star_task(4, star_channels=(3,))
    with pytest.raises(ValueError, match="does not fit"):
        make_star_task(4, image_size=3, star_size=5)
    with pytest.raises(ValueError, match="NaN"):
        make_noisy_frame_task(np.full((2, 1, 4, 4), np.nan))
