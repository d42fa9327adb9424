"""Training and inference throughput of the phase-collapse network next to ResNet-18.

Times, in one run, the paper's CIFAR configuration of ScatteringPhaseCollapse
(8 blocks, widths 64, 128, 256, 512 x 5, L = 4, factorized filters, batch 128,
3 x 32 x 32 images) in both variants, each also with ``memory_efficient=True``
(less memory, one more filtering pass), and a CIFAR ResNet-18 in plain torch,
alternating the models step by step so that machine noise hits them alike;
prints images per second and the ratio to ResNet-18. Then times skphase's
fixed wavelet-modulus filtering against kymatio's Scattering2D (J=1).

With ``--compile`` it also trains both variants through ``torch.compile`` (the
first step compiles, untimed; its time is printed apart); their inference is not
timed (it would compile again, for eval mode).

With ``--products`` it times instead, at the shapes of every block of both CIFAR
networks, the two ways the CPU can run the 1x1 projections: as oneDNN
convolutions over channels-last rows or as BLAS matrix products, forward and
backward. Which is faster depends on the CPU; :mod:`skphase.nn._fused_ops`
chooses by its instruction set (``CONVOLUTION_DEVICES``: oneDNN with AVX-512),
and this prints the evidence for the machine at hand.

Usage::

    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_phase_collapse.py [--steps 3] [--threads 2] [--compile]
        [--products]
"""

import argparse
import time

import torch
import torch.nn.functional as F

from skphase.nn import PhaseCollapseNet, WaveletFilter, safe_modulus
from skphase.nn import _fused_ops
from skphase.nn._standardized_projection import ComplexStandardization
from skphase.nn._resnet import resnet18
from skphase.utils import retain_freed_memory
from skphase.utils._kymatio import import_kymatio

CIFAR_WIDTHS = (64, 128, 256, 512, 512, 512, 512, 512)



def cifar_network(variant, memory_efficient=False):
    """The paper's CIFAR configuration of the learned scattering network, for 10 classes."""
    return PhaseCollapseNet(3, (32, 32), CIFAR_WIDTHS, 10, L=4, factorized=True, variant=variant,
                            memory_efficient=memory_efficient)


#: The networks compared, each built on call: ResNet-18 and the paper's CIFAR configuration, as it
#: trains by default and with ``memory_efficient=True`` (the filtering run again in the backward).
CIFAR_MODELS = {
    "ResNet-18": resnet18,
    "PhaseCollapse lscat": lambda: cifar_network("lscat"),
    "PhaseCollapse lscat+skip": lambda: cifar_network("lscat+skip"),
    "lscat, memory_efficient": lambda: cifar_network("lscat", memory_efficient=True),
    "lscat+skip, memory_efficient": lambda: cifar_network("lscat+skip", memory_efficient=True),
}

#: Both variants trained through ``torch.compile`` (``--compile``), each built on call; the first
#: training step compiles.
COMPILED_MODELS = {
    f"{variant}, compiled": (lambda variant=variant: torch.compile(cifar_network(variant), dynamic=False))
    for variant in ("lscat", "lscat+skip")
}


def multiply_accumulates(model, images, *, useful=False):
    """Multiply-accumulates per image of the forward pass: convolutions, linear layers and matrix products.

    With ``useful=True`` the wavelet filtering of a scattering block counts the filter taps of a
    direct convolution (``k * k`` per output and input part) instead of the entries of the matrices
    it is computed with: the work any implementation of the network must do.
    """
    counts = []

    def conv_hook(module, inputs, output):
        counts.append(output.numel() // output.shape[0] * module.in_channels // module.groups
                      * module.kernel_size[0] * module.kernel_size[1])

    def linear_hook(module, inputs, output):
        counts.append(output.numel() // output.shape[0] * module.in_features)

    handles = [m.register_forward_hook(conv_hook) for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    handles += [m.register_forward_hook(linear_hook) for m in model.modules() if isinstance(m, torch.nn.Linear)]
    if isinstance(model, PhaseCollapseNet):
        # The blocks are matrix products: count them from their operand shapes.
        for block in model.blocks:
            handles.append(block.register_forward_hook(_block_counter(block, counts, useful)))
    with torch.no_grad():
        model.eval()(images[:1])
    for handle in handles:
        handle.remove()
    return sum(counts)


def _block_counter(block, counts, useful):
    def hook(module, inputs, output):
        x = inputs[0]
        n, height, width, channels = x.shape
        wavelets = block.wavelets
        _, n_filters, k, _ = wavelets.bank.shape  # n_filters = 2 (1 + L) real outputs per input part
        parts = 2 if wavelets.complex_input else 1
        maps = channels // parts
        out_h, out_w = output.shape[1:3]
        if useful:
            counts.append(maps * out_h * out_w * n_filters * parts * k * k)
        else:  # the matrix products of the path the filter takes for this input
            counts.append(maps * wavelets.multiply_adds(height, width, maps))
        proj = block.proj.real_matrix()
        counts.append(out_h * out_w * proj.shape[0] * proj.shape[1])  # projection P
    return hook


def train_step(model, optimizer, images, labels):
    loss = F.cross_entropy(model(images), labels)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def synchronize(device):
    """Wait for the queued GPU work, so that the clock reads the time it took."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_models(models, images, labels, steps, train):
    """Seconds per step of each model, the models alternating step by step."""
    optimizers = {name: torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9) for name, m in models.items()}
    totals = dict.fromkeys(models, 0.0)
    for step in range(steps + 1):  # step 0 warms up
        for name, model in models.items():
            synchronize(images.device)
            start = time.perf_counter()
            if train:
                model.train()
                train_step(model, optimizers[name], images, labels)
            else:
                with torch.no_grad():
                    model.eval()(images)
            synchronize(images.device)
            if step:
                totals[name] += time.perf_counter() - start
    return {name: total / steps for name, total in totals.items()}


def projection_shapes(model, images):
    """``(rows, inputs, outputs)`` of every block's 1x1 projection in a training forward pass."""
    shapes = []

    def hook(module, inputs, output):
        if len(inputs) > 1 and inputs[1] is not None:
            shapes.append((inputs[0].shape[0], inputs[0].shape[1], output.shape[1]))

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, ComplexStandardization)]
    with torch.no_grad():
        model.train()(images)
    for handle in handles:
        handle.remove()
    return shapes


def time_products(shapes, steps):
    """Milliseconds of each 1x1 product, forward and backward, as oneDNN convolution and as BLAS.

    The two paths alternate call by call, so that machine noise hits them alike.
    """
    paths = {"oneDNN": ("cpu",), "BLAS": ()}
    rows_out = []
    for rows, inputs, outputs in shapes:
        x, weight, grad = torch.randn(rows, inputs), torch.randn(outputs, inputs), torch.randn(rows, outputs)
        totals = {(path, way): 0.0 for path in paths for way in ("forward", "backward")}
        for step in range(steps + 1):  # step 0 warms up
            for path, devices in paths.items():
                _fused_ops.CONVOLUTION_DEVICES = devices
                for way, call in (("forward", lambda: _fused_ops.pointwise_linear(x, weight)),
                                  ("backward", lambda: _fused_ops._pointwise_linear_grads(grad, x, weight, (True, True)))):
                    start = time.perf_counter()
                    call()
                    if step:
                        totals[path, way] += (time.perf_counter() - start) * 1e3 / steps
        rows_out.append(((rows, inputs, outputs), totals))
    return rows_out


def print_products(args):
    """The ``--products`` table: both product paths at the CIFAR networks' block shapes."""
    chosen = _fused_ops.CONVOLUTION_DEVICES
    images = torch.randn(args.batch_size, 3, 32, 32)
    shapes = []
    for name in ("PhaseCollapse lscat", "PhaseCollapse lscat+skip"):
        shapes += [s for s in projection_shapes(CIFAR_MODELS[name](), images) if s not in shapes]
    timings = time_products(shapes, args.steps)
    _fused_ops.CONVOLUTION_DEVICES = chosen
    print(f"torch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}, {args.threads} "
          f"thread(s): 1x1 projections of the CIFAR networks, ms per call")
    print(f"\n{'rows x in -> out':<24}{'fwd oneDNN':>11}{'fwd BLAS':>10}{'bwd oneDNN':>12}{'bwd BLAS':>10}")
    sums = dict.fromkeys(timings[0][1], 0.0)
    for (rows, inputs, outputs), totals in timings:
        print(f"{f'{rows} x {inputs} -> {outputs}':<24}{totals['oneDNN', 'forward']:>11.1f}"
              f"{totals['BLAS', 'forward']:>10.1f}{totals['oneDNN', 'backward']:>12.1f}{totals['BLAS', 'backward']:>10.1f}")
        for key, value in totals.items():
            sums[key] += value
    for way in ("forward", "backward"):
        print(f"{way}: BLAS / oneDNN time over all shapes {sums['BLAS', way] / sums['oneDNN', way]:.2f}")
    print(f"chosen on this CPU: {'oneDNN' if 'cpu' in chosen else 'BLAS'}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per model (after one warm-up)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--compile", action="store_true",
                        help="also train both variants through torch.compile")
    parser.add_argument("--products", action="store_true",
                        help="time the CPU's two paths for the 1x1 projections instead")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    retain_freed_memory()  # large freed activations are reused, not page-faulted in again
    torch.manual_seed(0)
    if args.products:
        print_products(args)
        return
    images = torch.randn(args.batch_size, 3, 32, 32).to(device)
    labels = torch.randint(0, 10, (args.batch_size,)).to(device)
    models = {name: build().to(device) for name, build in CIFAR_MODELS.items()}
    if args.compile:
        models |= {name: build().to(device) for name, build in COMPILED_MODELS.items()}
    print(f"torch {torch.__version__}, {device}, {args.threads} thread(s), batch {args.batch_size}, 3x32x32, "
          f"{args.steps} timed steps")
    eager = {name: getattr(m, "_orig_mod", m) for name, m in models.items()}  # the modules under torch.compile
    macs = {name: multiply_accumulates(m, images) for name, m in eager.items()}
    useful = {name: multiply_accumulates(m, images, useful=True) for name, m in eager.items()}
    compile_seconds = {}
    for name, model in models.items():
        if model is not eager[name]:  # the first step compiles
            start = time.perf_counter()
            train_step(model.train(), torch.optim.SGD(model.parameters(), lr=0.01), images, labels)
            synchronize(device)
            compile_seconds[name] = time.perf_counter() - start
    train = time_models(models, images, labels, args.steps, train=True)
    infer = time_models({name: m for name, m in models.items() if name not in compile_seconds}, images, labels,
                        args.steps, train=False)
    reference = "ResNet-18"
    print("\nGMAC/img: multiply-accumulates of the forward pass as computed, and the useful ones (direct "
          "convolution taps)")
    print(f"\n{'model':<30}{'GMAC/img':>10}{'useful':>8}{'train img/s':>13}{'x ResNet':>10}{'infer img/s':>13}"
          f"{'x ResNet':>10}")
    for name in models:
        train_rate = args.batch_size / train[name]
        inference = (f"{args.batch_size / infer[name]:>13.1f}{infer[reference] / infer[name]:>10.2f}"
                     if name in infer else f"{'-':>13}{'-':>10}")
        print(f"{name:<30}{macs[name] / 1e9:>10.3f}{useful[name] / 1e9:>8.3f}{train_rate:>13.1f}"
              f"{train[reference] / train[name]:>10.2f}{inference}")
    for name, seconds in compile_seconds.items():
        print(f"{name}: first step (compilation) {seconds:.0f} s")

    # Fixed filtering: first-order wavelet modulus at the finest scale.
    Scattering2D = import_kymatio("kymatio.torch").Scattering2D

    kymatio = Scattering2D(J=1, shape=(32, 32), L=4, max_order=1).to(device)
    wavelets = WaveletFilter(4, "standard", complex_input=False).to(device)
    channels_last = images.permute(0, 2, 3, 1).contiguous()

    def ours():
        re, im = wavelets(channels_last)
        return safe_modulus(re, im)

    timings = {}
    for name, fn in (("skphase W + modulus", ours), ("kymatio Scattering2D J=1", lambda: kymatio(images))):
        with torch.no_grad():
            fn()
            synchronize(device)
            start = time.perf_counter()
            for _ in range(args.steps):
                fn()
            synchronize(device)
            timings[name] = (time.perf_counter() - start) / args.steps
    print(f"\n{'fixed transform (forward)':<30}{'img/s':>10}{'x kymatio':>11}")
    for name, seconds in timings.items():
        print(f"{name:<30}{args.batch_size / seconds:>10.1f}{timings['kymatio Scattering2D J=1'] / seconds:>11.2f}")


if __name__ == "__main__":
    main()
