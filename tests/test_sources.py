"""Inputs of any dtype and storage give the same results, read one batch at a time into one output."""

import numpy as np
import pytest
import torch

from skphase import ConvRFM, ConvRFMRegressor, DTCWPTFeatures, PhaseCollapse, ScatteringTransform
from skphase.utils import as_image_source
from skphase.utils._torch import map_batches

BATCH = 4


def _integer_images(n=10, c=1, size=8, seed=0):
    """Integer-valued float32 images: uint8, float16 and float64 hold them exactly."""
    return np.random.default_rng(seed).integers(0, 16, (n, c, size, size)).astype(np.float32)


def _memmap(tmp_path, X):
    np.save(tmp_path / "images.npy", X)
    return np.load(tmp_path / "images.npy", mmap_mode="r")


def _read_only(X):
    X = X.copy()
    X.flags.writeable = False
    return X


VARIANTS = {
    "uint8": lambda X, tmp_path: X.astype(np.uint8),
    "float16": lambda X, tmp_path: X.astype(np.float16),
    "float64": lambda X, tmp_path: X.astype(np.float64),
    "read-only": lambda X, tmp_path: _read_only(X),
    "memmap": lambda X, tmp_path: _memmap(tmp_path, X),
    "uint8 memmap": lambda X, tmp_path: _memmap(tmp_path, X.astype(np.uint8)),
    "tensor": lambda X, tmp_path: torch.from_numpy(X.copy()),
}

FIXED_TRANSFORMS = {
    "dtcwpt": lambda: DTCWPTFeatures(J=2, device="cpu", batch_size=BATCH),
    "dtcwpt-float32": lambda: DTCWPTFeatures(J=2, pooling="max", dtype="float32", device="cpu", batch_size=BATCH),
    "scattering": lambda: ScatteringTransform(J=2, L=4, device="cpu", batch_size=BATCH),
}


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("make", FIXED_TRANSFORMS.values(), ids=FIXED_TRANSFORMS)
def test_fixed_transforms_read_every_dtype_and_storage_alike(make, variant, tmp_path):
    X = _integer_images()
    reference = make().fit(X).transform(X)
    X_variant = VARIANTS[variant](X, tmp_path)
    out = make().fit(X_variant).transform(X_variant)
    assert out.shape == reference.shape
    np.testing.assert_allclose(out, reference, rtol=1e-6, atol=1e-6)


def test_phase_collapse_fits_and_transforms_every_dtype_and_storage_alike(tmp_path):
    X = _integer_images(n=24)
    y = np.arange(24) % 2
    params = dict(widths=(4,), max_iter=2, batch_size=8, device="cpu", random_state=0)
    reference = PhaseCollapse(**params).fit(X, y).transform(X)
    for variant in VARIANTS:
        X_variant = VARIANTS[variant](X, tmp_path)
        out = PhaseCollapse(**params).fit(X_variant, y).transform(X_variant)
        np.testing.assert_allclose(out, reference, rtol=1e-5, atol=1e-6, err_msg=variant)


def test_uint8_images_are_read_as_their_values_not_rescaled():
    X = _integer_images()
    model = DTCWPTFeatures(J=1, device="cpu").fit(X)
    np.testing.assert_allclose(model.transform(X.astype(np.uint8)), model.transform(X), rtol=1e-6)
    # Rescaling would make these differ by a factor 255.
    assert not np.allclose(model.transform(X / 255), model.transform(X.astype(np.uint8)))


class _ImageDataset(torch.utils.data.Dataset):
    """A map-style Dataset of ``(C, H, W)`` tensors, or ``(tensor, label)`` pairs."""

    def __init__(self, X, labels=None):
        self.X, self.labels = X, labels

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):
        image = torch.from_numpy(self.X[i])
        return image if self.labels is None else (image, int(self.labels[i]))


@pytest.mark.parametrize("with_labels", [False, True])
def test_a_dataset_gives_the_transform_of_its_array(with_labels):
    X = _integer_images(n=9, c=3)
    dataset = _ImageDataset(X, np.arange(9) % 3 if with_labels else None)
    reference = DTCWPTFeatures(J=2, device="cpu").fit(X).transform(X)
    model = DTCWPTFeatures(J=2, device="cpu", batch_size=BATCH).fit(dataset)
    assert model.image_shape_ == (3, 8, 8)
    np.testing.assert_allclose(model.transform(dataset), reference, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(model.transform(X), reference, rtol=1e-6, atol=1e-6)
    scattering = ScatteringTransform(J=1, L=2, device="cpu", batch_size=BATCH)
    np.testing.assert_allclose(scattering.fit(dataset).transform(dataset), scattering.fit(X).transform(X),
                               rtol=1e-6, atol=1e-6)


class _RecordingArray(np.ndarray):
    """An ndarray (or a view of a memmap) that records how many rows each indexing reads."""

    reads = []

    def __getitem__(self, index):
        out = super().__getitem__(index)
        if isinstance(out, np.ndarray) and out.ndim == self.ndim:
            _RecordingArray.reads.append(out.shape[0])
        return out


@pytest.mark.parametrize("memmap", [False, True])
@pytest.mark.parametrize("make", FIXED_TRANSFORMS.values(), ids=FIXED_TRANSFORMS)
def test_transform_reads_at_most_batch_size_images_at_a_time(make, memmap, tmp_path):
    X = _integer_images(n=11)
    data = _memmap(tmp_path, X) if memmap else X.copy()
    recorded = data.view(_RecordingArray)
    _RecordingArray.reads = []
    model = make().fit(recorded)
    assert max(_RecordingArray.reads) <= 1  # fit validates; at most one image probes the output shape
    reference = model.transform(X)
    _RecordingArray.reads = []
    out = model.transform(recorded)
    reads = [rows for rows in _RecordingArray.reads if rows > 0]  # the empty read checks the layout
    assert sum(reads) == len(X)  # every image read once: the reads are recorded
    assert max(reads) <= BATCH
    np.testing.assert_allclose(out, reference, rtol=1e-6)


def test_convrfm_predicts_and_transforms_batch_by_batch():
    X = _integer_images(n=12) / 15
    y = np.arange(12) % 2
    model = ConvRFM(n_iter=1, validation_fraction=0, batch_size=BATCH, device="cpu").fit(X, y)
    reference = model.decision_function(X), model.transform(X)
    recorded = X.copy().view(_RecordingArray)
    _RecordingArray.reads = []
    outputs = model.decision_function(recorded), model.transform(recorded)
    reads = [rows for rows in _RecordingArray.reads if rows > 0]
    assert sum(reads) == 2 * len(X) and max(reads) <= BATCH
    for out, ref in zip(outputs, reference):
        np.testing.assert_allclose(out, ref, rtol=1e-6)


def test_map_batches_fills_one_preallocated_array(monkeypatch):
    source = as_image_source(_integer_images(n=10).astype(np.uint8))

    def features(batch):
        return batch.flatten(1) * 2, batch.amax(dim=(1, 2, 3))

    expected = [features(images) for _, images in source.batches(BATCH)]

    def refuse(*args, **kwargs):
        raise AssertionError("outputs must be written into one array, not concatenated")

    monkeypatch.setattr(np, "concatenate", refuse)
    monkeypatch.setattr(torch, "cat", refuse)
    maps, peaks = map_batches(features, source, batch_size=BATCH, device=torch.device("cpu"))
    monkeypatch.undo()
    for out, parts in zip((maps, peaks), zip(*expected)):
        assert isinstance(out, np.ndarray) and out.flags.owndata and out.flags.c_contiguous
        np.testing.assert_array_equal(out, torch.cat(parts).numpy())


@pytest.mark.parametrize(
    "make, value, constant",
    [
        # A constant image: the low-pass gain of 2 takes 3e38 past the largest float32.
        (lambda: DTCWPTFeatures(J=1, device="cpu"), 3e38, True),  # float64 features, float32 output
        (lambda: DTCWPTFeatures(J=1, dtype="float32", device="cpu"), 3e38, True),
        (lambda: ScatteringTransform(J=1, L=2, device="cpu"), 1e20, False),  # squared moduli overflow: NaN
        (lambda: ScatteringTransform(J=1, L=2, device="cpu"), 1e30, True),  # inf
    ],
)
def test_overflowing_outputs_raise_naming_the_cause(make, value, constant):
    X = _integer_images(n=6) + 1
    X[4] = value if constant else X[4] * (value / 16)
    model = make().set_params(batch_size=BATCH).fit(X)
    with pytest.raises(ValueError, match=r"produced NaN or infinite values for the image at index 4, whose "
                                         r"largest absolute value is .*: the computation overflowed"):
        model.transform(X)


ESTIMATORS = {
    "dtcwpt": lambda: DTCWPTFeatures(J=1, device="cpu"),
    "scattering": lambda: ScatteringTransform(J=1, L=2, device="cpu"),
    "convrfm": lambda: ConvRFM(n_iter=0, device="cpu"),
    "convrfm-regressor": lambda: ConvRFMRegressor(n_iter=0, device="cpu"),
    "phase-collapse": lambda: PhaseCollapse(widths=(4,), max_iter=1, device="cpu"),
}


@pytest.mark.parametrize(
    "X, match",
    [
        (np.zeros((6, 8, 8, 3)), r"channels-last .*X\.transpose\(0, 3, 1, 2\)"),
        (np.zeros((6, 3072)), r"image_shape=\(3, 32, 32\)"),
        ([np.zeros((1, 8, 8))] * 5 + [np.zeros((1, 8, 9))], "one shape|inhomogeneous"),
        (np.full((6, 1, 8, 8), "a"), "must hold numbers"),
    ],
    ids=["channels-last", "flat-colour", "ragged", "strings"],
)
@pytest.mark.parametrize("make", ESTIMATORS.values(), ids=ESTIMATORS)
def test_every_estimator_refuses_ambiguous_or_unreadable_images(make, X, match):
    y = np.arange(6) % 2
    with pytest.raises(ValueError, match=match):
        make().fit(X, y)


@pytest.mark.parametrize("make", ESTIMATORS.values(), ids=ESTIMATORS)
def test_every_estimator_accepts_flat_colour_rows_with_image_shape(make):
    X = _integer_images(n=6, c=3, size=4).reshape(6, -1) / 15
    model = make().set_params(image_shape=(3, 4, 4)).fit(X, np.arange(6) % 2)
    assert model.image_shape_ == (3, 4, 4)
