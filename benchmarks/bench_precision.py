"""Mixed precision: throughput of the learned scattering network, accuracy of the fixed transforms.

1. Training (SGD step with cross-entropy, batch 128) and inference throughput of
   the network of the main example (``--config fashion-mnist``: widths 64, 128,
   256, L = 8, "lscat+skip", 1 x 28 x 28 images) or of the paper's CIFAR
   configuration (``--config cifar``: 8 blocks, widths 64, 128, 256, 512 x 5,
   L = 4, factorized filters, 3 x 32 x 32), in float32 and under autocast
   (``--precision bfloat16``, or float16 on CUDA). The two models start from the
   same weights and alternate step by step in one run, so that machine noise
   hits them alike; the table gives medians over the rounds and the ratios. The
   forward passes are compared too: relative error of the logits and of each
   block's output under autocast against float32, in eval mode.
2. The fixed transforms (``--features``, on by default): relative error against
   float64 and time of the DT-CWPT features (modulus and max pooling) and of
   kymatio's scattering, float32 against autocast, on tiles of scikit-learn's
   two sample photographs (32 x 32 tiles and 224 x 224 crops, grey).

Usage::

    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_precision.py [--config fashion-mnist|cifar]
        [--steps 5] [--threads 2] [--device cpu] [--precision bfloat16] [--no-features]
"""

import argparse
import copy
import os
import statistics
import sys
import time
import warnings

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_phase_collapse import CIFAR_WIDTHS, synchronize  # noqa: E402

from skphase.nn import PhaseCollapseNet  # noqa: E402
from skphase.nn._dtcwpt import dtcwpt_pool  # noqa: E402
from skphase.utils import retain_freed_memory  # noqa: E402
from skphase.utils._precision import PRECISIONS, autocast, check_precision  # noqa: E402

CONFIGS = {
    "fashion-mnist": dict(image_shape=(1, 28, 28), network=dict(widths=(64, 128, 256), L=8, factorized=False)),
    "cifar": dict(image_shape=(3, 32, 32), network=dict(widths=CIFAR_WIDTHS, L=4, factorized=True)),
}


def build_network(config, variant, seed=0):
    """The network of ``config``, seeded like the estimator's."""
    settings = CONFIGS[config]
    channels, height, width = settings["image_shape"]
    return PhaseCollapseNet(channels, (height, width), n_classes=10, variant=variant,
                            generator=torch.Generator().manual_seed(seed), **settings["network"])


def train_step(model, optimizer, images, labels, device, precision):
    """One SGD step as the estimator's training loop takes it: forward under autocast, float32 loss."""
    with autocast(device, precision):
        logits = model(images)
    loss = F.cross_entropy(logits.float(), labels)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def median_step_times(models, step, rounds, device):
    """Median seconds of ``step(name, model)`` per model, the models alternating; one warm-up round."""
    times = {name: [] for name in models}
    for round_ in range(rounds + 1):
        for name, model in models.items():
            synchronize(device)
            start = time.perf_counter()
            step(name, model)
            synchronize(device)
            if round_:
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def relative_error(value, reference):
    value, reference = value.double(), reference.double()
    return ((value - reference).norm() / reference.norm()).item()


def forward_errors(models, images, device, precision):
    """Relative error of each block's output and of the logits under autocast, against float32 (eval mode)."""
    outputs = {}
    for name, model in models.items():
        model.eval()
        with torch.no_grad(), autocast(device, name):
            blocks = model.features(images, all_blocks=True)
            outputs[name] = blocks + [model.classify(blocks[-1])]
    return [relative_error(low, ref) for low, ref in zip(outputs[precision], outputs["float32"])]


def bench_network(args, device):
    channels, height, width = CONFIGS[args.config]["image_shape"]
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(args.batch_size, channels, height, width, generator=generator).to(device)
    labels = torch.randint(0, 10, (args.batch_size,), generator=generator).to(device)
    reference = build_network(args.config, args.variant).to(device)
    models = {"float32": reference, args.precision: copy.deepcopy(reference)}
    optimizers = {name: torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9) for name, m in models.items()}
    errors = forward_errors(models, images, device, args.precision)  # before training moves the copies apart

    def training(name, model):
        model.train()
        train_step(model, optimizers[name], images, labels, device, name)

    def inference(name, model):
        model.eval()
        with torch.no_grad(), autocast(device, name):
            model(images)

    train = median_step_times(models, training, args.steps, device)
    infer = median_step_times(models, inference, args.steps, device)
    print(f"\nnetwork: --config {args.config}, variant {args.variant}, batch {args.batch_size}, "
          f"{args.steps} rounds (medians)")
    print(f"{'precision':<12}{'train img/s':>13}{'x float32':>11}{'infer img/s':>13}{'x float32':>11}")
    for name in models:
        print(f"{name:<12}{args.batch_size / train[name]:>13.1f}{train['float32'] / train[name]:>11.2f}"
              f"{args.batch_size / infer[name]:>13.1f}{infer['float32'] / infer[name]:>11.2f}")
    blocks = ", ".join(f"{e:.1e}" for e in errors[:-1])
    print(f"forward in {args.precision} vs float32 (eval, same weights), relative error: blocks {blocks}; "
          f"logits {errors[-1]:.1e}")


def sample_tiles():
    """Grey tiles of scikit-learn's two sample photographs: 32 x 32 tiles and 224 x 224 crops, in [0, 1]."""
    from sklearn.datasets import load_sample_images

    photos = [np.asarray(image, dtype=np.float64).mean(axis=2) / 255 for image in load_sample_images().images]
    small = [p[i:i + 32, j:j + 32] for p in photos for i in range(0, 416, 32) for j in range(0, 416, 32)]
    large = [p[i:i + 224, j:j + 224] for p in photos for i in (0, 192) for j in (0, 192, 384)]
    return {"32x32 tiles": torch.tensor(np.stack(small))[:, None],
            "224x224 crops": torch.tensor(np.stack(large))[:, None]}


def bench_features(args, device):
    precisions = ("float32", args.precision)
    print(f"\nfixed transforms: relative error against float64, time per batch (medians of {args.steps} rounds)")
    low = {"bfloat16": "bf16", "float16": "f16"}[args.precision]
    print(f"{'transform':<34}{'images':>16}{'error f32':>11}{'error ' + low:>11}{'ms f32':>9}{'ms ' + low:>9}")
    transforms = {
        f"DT-CWPT J={J} {pooling}": (lambda J, pooling: lambda x: dtcwpt_pool(x, J, pooling))(J, pooling)
        for J in (2, 3) for pooling in ("modulus", "max")
    }
    for images_name, images64 in sample_tiles().items():
        images64 = images64.to(device)
        images = images64.float()
        cases = dict(transforms)
        if images_name == "32x32 tiles":
            from skphase.utils._kymatio import import_kymatio

            scattering = import_kymatio("kymatio.torch").Scattering2D(J=2, shape=(32, 32), L=8).to(device)
            cases["kymatio Scattering2D J=2 L=8"] = scattering
        for name, transform in cases.items():
            with torch.no_grad():
                if name.startswith("kymatio"):
                    reference = None  # kymatio runs in float32 only: the float32 output is the reference
                else:
                    reference = transform(images64)
                outputs = {}
                for precision in precisions:
                    with autocast(device, precision):
                        outputs[precision] = transform(images)
                times = median_step_times(
                    dict.fromkeys(precisions), lambda p, _: _timed(transform, images, device, p), args.steps, device
                )
            if reference is None:
                reference = outputs["float32"]
            errors = [relative_error(outputs[p], reference) for p in precisions]
            print(f"{name:<34}{f'{images.shape[0]} x {images_name}':>16}{errors[0]:>11.1e}{errors[1]:>11.1e}"
                  f"{1e3 * times[precisions[0]]:>9.1f}{1e3 * times[precisions[1]]:>9.1f}")
    print("(kymatio: error against its own float32 output; torch has no bfloat16 FFT and autocast leaves it "
          "in float32)")


def _timed(transform, images, device, precision):
    with autocast(device, precision):
        transform(images)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", choices=sorted(CONFIGS), default="fashion-mnist")
    parser.add_argument("--variant", default="lscat+skip", choices=("lscat", "lscat+skip"))
    parser.add_argument("--precision", choices=PRECISIONS[1:], default="bfloat16")
    parser.add_argument("--steps", type=int, default=5, help="timed rounds per model (after one warm-up)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--no-features", action="store_true", help="skip the fixed transforms")
    args = parser.parse_args()
    device = torch.device(args.device)
    check_precision(args.precision, device)
    torch.set_num_threads(args.threads)
    retain_freed_memory()  # large freed activations are reused, not page-faulted in again
    warnings.filterwarnings("ignore", module="kymatio")
    print(f"torch {torch.__version__}, {device}, {args.threads} thread(s)")
    bench_network(args, device)
    if not args.no_features:
        bench_features(args, device)


if __name__ == "__main__":
    main()
