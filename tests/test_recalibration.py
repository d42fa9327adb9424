import numpy as np
import pytest
import torch

from skphase import ScatteringPhaseCollapse
from skphase.datasets import load_digits_images
from skphase.nn import PhaseCollapseNet, recalibrate_running_statistics, train_classifier
from skphase.utils._sources import as_image_source


def test_batch_norm_statistics_become_the_average_of_batch_statistics():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 1), torch.nn.BatchNorm2d(3))
    X = 5 + 3 * torch.randn(64, 2, 4, 4)
    net.eval()
    assert recalibrate_running_statistics(net, as_image_source(X), batch_size=16, device="cpu") == 4
    with torch.no_grad():
        features = net[0](X)
    # Equal batches: the average of the batch means is the mean over all images.
    torch.testing.assert_close(net[1].running_mean, features.mean((0, 2, 3)), rtol=1e-5, atol=1e-5)
    batch_vars = torch.stack([features[i:i + 16].var((0, 2, 3), unbiased=True) for i in range(0, 64, 16)])
    torch.testing.assert_close(net[1].running_var, batch_vars.mean(0), rtol=1e-5, atol=1e-5)
    assert net[1].momentum == 0.1 and not net.training


def test_scattering_statistics_follow_the_first_block_exactly():
    torch.manual_seed(0)
    net = PhaseCollapseNet(1, (8, 8), [4], 3, L=2, generator=torch.Generator().manual_seed(0))
    X = torch.rand(24, 1, 8, 8)
    recalibrate_running_statistics(net, as_image_source(X), batch_size=8, device="cpu")
    standardization = next(m for m in net.modules() if type(m).__name__ == "ComplexStandardization")
    # Against the mean of the three batch means computed in train mode, one batch at a time.
    reference = net.__class__(1, (8, 8), [4], 3, L=2, generator=torch.Generator().manual_seed(0))
    reference.load_state_dict(net.state_dict())
    ref_std = next(m for m in reference.modules() if type(m).__name__ == "ComplexStandardization")
    means = []
    with torch.no_grad():
        for start in range(0, 24, 8):
            ref_std.momentum = 1.0  # running statistics := this batch's
            reference.train()(X[start:start + 8])
            means.append(ref_std.running_mean.clone())
    torch.testing.assert_close(standardization.running_mean, torch.stack(means).mean(0), rtol=1e-5, atol=1e-6)


def test_lone_last_image_is_left_out():
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.BatchNorm1d(4))
    assert recalibrate_running_statistics(net, as_image_source(torch.randn(9, 1, 2, 2)), batch_size=4,
                                          device="cpu") == 2


def test_module_without_statistics_is_untouched():
    net = torch.nn.Conv2d(1, 1, 1)
    assert recalibrate_running_statistics(net, as_image_source(torch.randn(4, 1, 2, 2)), batch_size=2,
                                          device="cpu") == 0


def test_tiny_inputs_no_longer_leave_eval_statistics_behind():
    # Images scaled by 1e-6: the running variance of the first blocks started at 1 and, after a
    # short training with momentum 0.1, still held values far from the data's; eval-mode
    # predictions were then near chance although the training loss was low.
    X, y = load_digits_images()
    X = X * 1e-6
    model = ScatteringPhaseCollapse(widths=(8, 16), L=4, max_iter=5, batch_size=32, device="cpu", random_state=0)
    model.fit(X[:600], y[:600])
    assert model.score(X[:600], y[:600]) > 0.9
    assert model.score(X[600:900], y[600:900]) > 0.8


def test_eval_mode_matches_train_mode_after_a_few_steps():
    X, y = load_digits_images()
    model = ScatteringPhaseCollapse(widths=(8, 16), L=4, max_iter=1, batch_size=100, device="cpu",
                                    random_state=0).fit(X[:600], y[:600])
    images = torch.as_tensor(X[:600], dtype=torch.float32)
    with torch.no_grad():
        train_mode = model.module_.train()(images).argmax(1).numpy()
        model.module_.eval()
    eval_mode = model.predict(X[:600])
    assert np.mean(model.classes_[train_mode] == eval_mode) > 0.95


def test_engine_can_skip_recalibration():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 2))
    X, y = torch.randn(32, 1, 2, 2) + 3, torch.arange(32) % 2
    train_classifier(net, X, y, max_iter=1, batch_size=8, recalibrate=False)
    assert not torch.allclose(net[1].running_mean, X.flatten(1).mean(0), atol=0.5)
    train_classifier(net, X, y, max_iter=1, batch_size=8, learning_rate=0.0)
    torch.testing.assert_close(net[1].running_mean, X.flatten(1).mean(0), rtol=1e-4, atol=1e-4)


def test_inputs_too_large_for_float32_raise_at_fit():
    X, y = load_digits_images()
    model = ScatteringPhaseCollapse(widths=(4, 8), L=2, max_iter=2, device="cpu", random_state=0)
    with pytest.raises(FloatingPointError, match="overflowed.*Rescale the images"):
        model.fit(X[:40] * 1e20, y[:40])
