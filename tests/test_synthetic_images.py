"""Star task and noise-frame task: shapes, balance, reproducibility, placement."""

import numpy as np
import pytest

from skphase.datasets._synthetic_images import make_noisy_frame_task, make_star_task, star_pattern


def test_star_pattern_is_the_authors_seven_by_seven_star():
    star = star_pattern()
    assert star.shape == (7, 7) and star.dtype == np.float32
    assert set(np.unique(star)) == {0.0, 1.0} and star.sum() == 28
    # Mirror-symmetric, one pixel at the top point, the full width on the arms' row.
    np.testing.assert_array_equal(star, star[:, ::-1])
    np.testing.assert_array_equal(star.sum(1), [1, 3, 7, 5, 3, 5, 4])
    # It fills its box: every row and every column holds a star pixel.
    assert star.any(0).all() and star.any(1).all()


def _star_corners(X, y, channel=0):
    """Top-left corner of the star box in each positive noise-free image."""
    return np.array([np.argwhere(image[channel] != 0).min(0) for image in X[y == 1]])


def test_star_task_balanced_reproducible_and_star_where_label_says():
    X, y = make_star_task(41, random_state=0, noise_std=0.0, star_value=2.0)
    X2, y2 = make_star_task(41, random_state=0, noise_std=0.0, star_value=2.0)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)
    assert X.shape == (41, 3, 32, 32) and X.dtype == np.float32 and y.dtype == np.int64 and y.sum() == 20
    # Shuffled, not in blocks of one class.
    assert 0 < y[:20].sum() < 20
    # Without noise, positives hold exactly one star (28 pixels of value 2) in channels 0 and 1 only.
    for image, (r, c) in zip(X[y == 1], _star_corners(X, y)):
        for channel in (0, 1):
            expected = np.zeros((32, 32), np.float32)
            expected[r : r + 7, c : c + 7] = 2.0 * star_pattern()
            np.testing.assert_array_equal(image[channel], expected)
        assert not image[2].any()
    assert not X[y == 0].any()


def test_star_task_offsets_follow_the_authors_range():
    X, y = make_star_task(2000, random_state=0, noise_std=0.0)
    corners = _star_corners(X, y)
    # The authors' offsets: rows 3..20 and columns 7..24, every value drawn.
    np.testing.assert_array_equal(np.unique(corners[:, 0]), np.arange(3, 21))
    np.testing.assert_array_equal(np.unique(corners[:, 1]), np.arange(7, 25))
    # None: anywhere the star fits.
    X, y = make_star_task(400, image_size=10, noise_std=0.0, corner_range=None, random_state=0)
    corners = _star_corners(X, y)
    np.testing.assert_array_equal(np.unique(corners), np.arange(4))
    X, y = make_star_task(50, noise_std=0.0, corner_range=((5, 5), (0, 2)), random_state=0)
    corners = _star_corners(X, y)
    assert (corners[:, 0] == 5).all() and set(corners[:, 1]) == {0, 1, 2}


def test_star_task_noise_level_and_star_replaces_noise():
    X, y = make_star_task(200, random_state=1)
    assert abs(X[y == 0].std() - 0.3) < 0.01
    assert abs(X[:, 2].std() - 0.3) < 0.01
    assert not np.array_equal(X, make_star_task(200, random_state=2)[0])
    # The star's pixels are set to 1 (no noise on them), at the same place in both channels.
    clean, _ = make_star_task(200, random_state=1, noise_std=0.0)
    on_star = clean[:, :2] != 0
    np.testing.assert_array_equal(X[:, :2][on_star], 1.0)
    np.testing.assert_array_equal(on_star[:, 0], on_star[:, 1])


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
    with pytest.raises(ValueError, match="star_channels"):
        make_star_task(4, star_channels=(3,))
    with pytest.raises(ValueError, match="does not fit"):
        make_star_task(4, image_size=6)
    with pytest.raises(ValueError, match="corner_range"):
        make_star_task(4, image_size=16)
    with pytest.raises(ValueError, match="corner_range"):
        make_star_task(4, corner_range=((3, 2), (0, 0)))
    with pytest.raises(ValueError, match="n_samples"):
        make_star_task(0)
    with pytest.raises(ValueError, match="NaN"):
        make_noisy_frame_task(np.full((2, 1, 4, 4), np.nan))
