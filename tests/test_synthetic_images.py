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
    # The authors' noise level by default: 0.5 * sqrt(sigma), sigma = 1.
    assert abs(np.nanstd(outside) - 0.5) < 0.05


def _outside_window(X, offsets, height, width):
    """The frame's pixels outside each pasted image, as a flat array."""
    mask = np.ones(X.shape, bool)
    for m, (r, c) in zip(mask, offsets):
        m[:, r : r + height, c : c + width] = False
    return X[mask]


def test_noisy_frame_default_is_the_authors_mnist_task():
    # 28 x 28 images in [0, 1] in a 42 x 42 frame of N(0, 0.5^2) noise, corners in [0, 13].
    images = np.random.RandomState(0).rand(3000, 28, 28).astype(np.float32)
    X, offsets = make_noisy_frame_task(images, return_offsets=True, random_state=0)
    assert X.shape == (3000, 1, 42, 42) and X.dtype == np.float32
    assert offsets.shape == (3000, 2) and offsets.dtype == np.int64
    # torch.randint(high=42 - 28) in the authors' generator: every corner 0..13 is drawn, 14 never.
    np.testing.assert_array_equal(np.unique(offsets[:, 0]), np.arange(14))
    np.testing.assert_array_equal(np.unique(offsets[:, 1]), np.arange(14))
    # Rows and columns are drawn independently (not on the diagonal only).
    assert (offsets[:, 0] != offsets[:, 1]).mean() > 0.8
    # The image replaces the noise (no noise added on it) ...
    for image, frame, (r, c) in zip(images[:50], X[:50], offsets[:50]):
        np.testing.assert_array_equal(frame[0, r : r + 28, c : c + 28], image)
    # ... and the rest is zero-mean Gaussian noise of standard deviation 0.5.
    noise = _outside_window(X, offsets, 28, 28)
    assert abs(noise.std() - 0.5) < 0.005 and abs(noise.mean()) < 0.005
    assert abs(np.mean(np.abs(noise)) - 0.5 * np.sqrt(2 / np.pi)) < 0.005
    # The last row and column of the frame always hold noise; the first may hold the image.
    X = make_noisy_frame_task(np.full((500, 28, 28), 7.0), random_state=2)
    assert np.all(X[:, 0, -1, :] != 7.0) and np.all(X[:, 0, :, -1] != 7.0)
    assert np.any(X[:, 0, 0, 0] == 7.0)


def test_noisy_frame_noise_level_and_corner_ranges():
    images = np.zeros((2000, 1, 5, 5), np.float32)
    X, offsets = make_noisy_frame_task(images, frame_size=9, noise_std=2.0, corner_range=None,
                                       return_offsets=True, random_state=1)
    # None: anywhere the image fits, the last corner included.
    np.testing.assert_array_equal(np.unique(offsets), np.arange(5))
    assert abs(_outside_window(X, offsets, 5, 5).std() - 2.0) < 0.03
    X, offsets = make_noisy_frame_task(images, frame_size=(9, 12), corner_range=((1, 2), (0, 6)),
                                       return_offsets=True, random_state=1)
    assert set(offsets[:, 0]) == {1, 2} and set(offsets[:, 1]) == set(range(7))
    # "paper" on a non-square frame: each axis excludes its own last corner.
    _, offsets = make_noisy_frame_task(images, frame_size=(9, 12), return_offsets=True, random_state=1)
    np.testing.assert_array_equal(np.unique(offsets[:, 0]), np.arange(4))
    np.testing.assert_array_equal(np.unique(offsets[:, 1]), np.arange(7))
    # An image as large as the frame has one place; noise_std=0 gives a clean frame.
    X, offsets = make_noisy_frame_task(np.ones((4, 1, 5, 5)), frame_size=5, return_offsets=True, random_state=0)
    assert not offsets.any() and np.all(X == 1)
    X = make_noisy_frame_task(np.ones((4, 1, 5, 5)), frame_size=7, noise_std=0.0, random_state=0)
    assert X.sum() == 4 * 25 and set(np.unique(X)) == {0.0, 1.0}


def test_noisy_frame_reproducible():
    images = np.random.RandomState(0).rand(20, 1, 6, 6)
    first = make_noisy_frame_task(images, np.arange(20), frame_size=10, return_offsets=True, random_state=7)
    second = make_noisy_frame_task(images, np.arange(20), frame_size=10, return_offsets=True, random_state=7)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    other = make_noisy_frame_task(images, frame_size=10, return_offsets=True, random_state=8)
    assert not np.array_equal(first[0], other[0]) and not np.array_equal(first[2], other[1])
    # A RandomState seeds it too, reproducibly.
    a = make_noisy_frame_task(images, frame_size=10, random_state=np.random.RandomState(3))
    b = make_noisy_frame_task(images, frame_size=10, random_state=np.random.RandomState(3))
    np.testing.assert_array_equal(a, b)


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
    with pytest.raises(ValueError, match="corner_range"):
        make_noisy_frame_task(np.zeros((2, 1, 4, 4)), frame_size=6, corner_range=((0, 3), (0, 0)))
    with pytest.raises(ValueError, match="corner_range"):
        make_noisy_frame_task(np.zeros((2, 1, 4, 4)), frame_size=6, corner_range=((1, 0), (0, 0)))
    with pytest.raises(ValueError, match="corner_range"):
        make_noisy_frame_task(np.zeros((2, 1, 4, 4)), frame_size=6, corner_range="anywhere")
    with pytest.raises(ValueError, match="corner_range"):
        make_noisy_frame_task(np.zeros((2, 1, 4, 4)), frame_size=6, corner_range=(0, 1))
    with pytest.raises(ValueError, match="noise_std"):
        make_noisy_frame_task(np.zeros((2, 1, 4, 4)), noise_std=-1.0)


@pytest.mark.parametrize("kwargs, match", [
    ({"star_value": float("nan")}, "star_value must be finite"),
    ({"noise_std": float("inf")}, "noise_std must be finite"),
    ({"noise_std": -0.1}, "noise_std must be >= 0"),
])
def test_star_task_rejects_non_finite_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_star_task(4, **kwargs)
