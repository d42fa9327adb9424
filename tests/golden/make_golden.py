"""Regenerate ``golden.npz``: reference outputs of the learned scattering network and the DT-CWPT.

Run from the repository root, only when a change of the numbers is intended::

    OMP_NUM_THREADS=1 python tests/golden/make_golden.py

``tests/test_golden.py`` recomputes every array (:func:`network_outputs`, :func:`dtcwpt_outputs`)
and compares. The inputs are stored with the outputs, so that the comparison depends only on the
code under test: the seeded initialisation of the networks, the filters, the layout of the
activations and the fused kernels.
"""

import pathlib

import numpy as np
import torch
import torch.nn.functional as F

from skphase.nn import PhaseCollapseNet, dtcwpt2d

PATH = pathlib.Path(__file__).with_name("golden.npz")

#: Networks covering both wavelet-filtering paths (banded for 24 x 24 and 32 x 32 maps, dense
#: below; the dense one with fewer and with more than 8 channels), real and complex outputs of
#: rho, both variants and the factorized filter banks.
NETWORKS = {
    "net_modulus_skip": dict(in_channels=1, image_size=(32, 32), widths=(8, 16), L=4,
                             nonlinearity="modulus", variant="lscat+skip", factorized=False),
    "net_threshold_factorized": dict(in_channels=3, image_size=(16, 16), widths=(6, 8), L=4,
                                     nonlinearity="soft_threshold", variant="lscat", factorized=True),
    "net_modulus_lscat": dict(in_channels=1, image_size=(24, 24), widths=(4, 8, 8), L=6,
                              nonlinearity="modulus", variant="lscat", factorized=True),
}
N_IMAGES, N_CLASSES, SEED = 2, 10, 0
#: DT-CWPT levels of one 32 x 32 image.
DTCWPT_LEVELS = (2, 3)


def make_inputs():
    """The stored inputs, ``{name: array}``: images of each network and of the DT-CWPT."""
    generator = torch.Generator().manual_seed(SEED)
    inputs = {}
    for name, config in NETWORKS.items():
        shape = (N_IMAGES, config["in_channels"], *config["image_size"])
        inputs[f"{name}__images"] = torch.rand(shape, generator=generator).numpy()
    inputs["dtcwpt__images"] = torch.randn(1, 1, 32, 32, generator=generator).numpy()
    return inputs


def network_outputs(name, images):
    """Train-mode logits, features and gradients, then eval-mode logits and input gradient, of a seeded network."""
    config = dict(NETWORKS[name])
    net = PhaseCollapseNet(config.pop("in_channels"), config.pop("image_size"), config.pop("widths"), N_CLASSES,
                           generator=torch.Generator().manual_seed(SEED), **config)
    images = torch.from_numpy(images).requires_grad_()
    features = net.train().features(images)
    logits = net.classify(features)
    F.cross_entropy(logits, torch.arange(N_IMAGES) % N_CLASSES).backward()
    out = {"train_logits": logits, "train_features": features, "train_images_grad": images.grad}
    # Every block parameter's gradient (the head's weight, large and plain nn.Linear, left out), and the
    # running statistics after the step: their names are also those of checkpoints.
    out.update({f"grad__{key}": p.grad for key, p in net.named_parameters() if key != "head.weight"})
    out.update({f"buffer__{key}": b for key, b in net.named_buffers() if "running" in key})
    images.grad = None
    out["eval_logits"] = net.eval()(images)
    F.cross_entropy(out["eval_logits"], torch.arange(N_IMAGES) % N_CLASSES).backward()
    out["eval_images_grad"] = images.grad
    return {f"{name}__{key}": value.detach().numpy() for key, value in out.items()}


def dtcwpt_outputs(images):
    """The DT-CWPT of ``images`` at each of :data:`DTCWPT_LEVELS`."""
    images = torch.from_numpy(images)
    return {f"dtcwpt__J{J}": dtcwpt2d(images, J).numpy() for J in DTCWPT_LEVELS}


def compute(inputs):
    """Every golden array from the stored ``inputs`` (as :func:`make_inputs` returns them)."""
    outputs = dtcwpt_outputs(inputs["dtcwpt__images"])
    for name in NETWORKS:
        outputs.update(network_outputs(name, inputs[f"{name}__images"]))
    return outputs


def main():
    torch.set_num_threads(1)
    inputs = make_inputs()
    np.savez_compressed(PATH, **inputs, **compute(inputs))
    print(f"wrote {PATH} ({PATH.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
