import pytest
import torch

from skphase.nn._resnet import BasicBlock, ResNet, resnet18, resnet20


def _n_parameters(module):
    return sum(p.numel() for p in module.parameters())


def test_parameter_counts_match_the_published_networks():
    # ResNet-20 (He et al. 2016, Table 6: "0.27M"), counted by hand: 3x3 convolutions without bias,
    # two batch-norm parameters per channel, parameter-free shortcuts, a 64 -> 10 classifier.
    convs = 3 * 16 * 9 + 6 * 16 * 16 * 9 + (16 * 32 + 5 * 32 * 32) * 9 + (32 * 64 + 5 * 64 * 64) * 9
    norms = 2 * (16 + 6 * 16 + 6 * 32 + 6 * 64)
    assert _n_parameters(resnet20()) == convs + norms + 64 * 10 + 10 == 269_722
    # The CIFAR ResNet-18 (3x3 stem, projection shortcuts): the usual 11.17 M-parameter network.
    assert _n_parameters(resnet18()) == 11_173_962


@pytest.mark.parametrize("factory", [resnet20, resnet18])
def test_output_shape_for_grey_and_colour_images(factory):
    torch.manual_seed(0)
    assert factory(1, 7)(torch.randn(3, 1, 28, 28)).shape == (3, 7)
    assert factory(3, 10)(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_resnet20_depth_and_map_sizes():
    net = resnet20()
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) + 1 == 20  # 19 convolutions and the classifier: no projection shortcut
    x = net.stem(torch.zeros(1, 3, 32, 32))
    sizes = []
    for stage in net.stages:
        x = stage(x)
        sizes.append(tuple(x.shape[1:]))
    assert sizes == [(16, 32, 32), (32, 16, 16), (64, 8, 8)]


def test_zero_pad_shortcut_is_subsampling_and_zero_channels():
    block = BasicBlock(2, 4, stride=2, shortcut="zero_pad")
    x = torch.randn(1, 2, 6, 6)
    expected = torch.cat([x[:, :, ::2, ::2], torch.zeros(1, 2, 3, 3)], dim=1)
    torch.testing.assert_close(block._shortcut(x), expected)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="shortcut"):
        BasicBlock(2, 4, 2, shortcut="conv")
    with pytest.raises(ValueError, match="stages"):
        ResNet(1, 2, (8, 16), (1, 1, 1))


def test_a_few_steps_reduce_the_training_loss():
    torch.manual_seed(0)
    X = torch.randn(32, 1, 8, 8)
    y = (X[:, 0, :4].mean((1, 2)) > X[:, 0, 4:].mean((1, 2))).long()
    net = resnet20(1, 2)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for _ in range(15):
        loss = torch.nn.functional.cross_entropy(net(X), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
