"""ConvRFM: features learned through the patch AGOP, and the feature ansatz of a trained CNN.

Reproduces, at reduced scale on a CPU, the central figures of Radhakrishnan et
al., "Mechanism of feature learning in convolutional neural networks":

1. the star task (n_train = 50, 11 x 11 patches): test accuracy of the fixed
   convolutional kernel (iteration 0) and after one patch-AGOP step, averaged
   over seeds (the paper, one seed: 77.95 % -> 94.83 %);
2. Fashion-MNIST pasted at a random place in a 42 x 42 frame of N(0, 1) noise
   (3 x 3 patches): test accuracy per AGOP iteration (the paper, on MNIST:
   52.0 -> 59.4 % over 4 iterations);
3. the learned 3 x 3 filters (top eigenvectors of ConvRFM's M and of a small
   CNN's W^T W, both fitted on Fashion-MNIST), side by side;
4. the feature-ansatz correlation per conv layer of that CNN, trained vs untrained.

Run ``python examples/plot_convrfm_features.py`` (``--quick`` for a smoke run,
``--star-only`` for part 1 alone); it prints every figure it measures and saves
``convrfm_features.png``.
"""

import argparse
import copy
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from skphase.datasets import load_fashion_mnist, make_noisy_frame_task, make_star_task  # noqa: E402
from skphase.estimators import ConvRFM  # noqa: E402
from skphase.metrics import nfa_correlation  # noqa: E402


def star_experiment(seeds, n_test):
    """Test accuracy of iteration 0 (fixed kernel) and 1 (one AGOP step) for each seed.

    The authors' protocol (aradha/agop_feature_learning,
    kernel_machine_agop/conv_rfm/CRFM_star.ipynb): one balanced, shuffled pool
    of ``50 + n_test`` images (they use n_test = 2050), the first 50 for
    training and the rest for testing; the NTK of a one-layer ReLU conv net
    on 11 x 11 patches, ridge 1e-3 on the kernel scaled by its maximum, the
    patch AGOP of the predictor on 20 training images, ``T = G^(1/2)``
    normalised. Nothing is tuned: the NTK has no bandwidth and every other
    setting is the authors', so no validation data is needed; the seeds only
    draw the pool (and the 20 AGOP images). The one setting checked was the
    number of AGOP images, on separately drawn validation pools (seeds
    100-109, 1000 held-out images each): all 50 training images scored as 20
    did (0.9493 vs 0.9496 after one step), so the authors' 20 is kept.
    """
    scores = []
    for seed in range(seeds):
        X, y = make_star_task(50 + n_test, random_state=seed)
        clf = ConvRFM(kernel="ntk", ntk_depth=1, patch_size=11, alpha=1e-3, n_iter=1, agop_power=0.5,
                      agop_max_samples=20, validation_fraction=0, device="cpu", random_state=seed).fit(X[:50], y[:50])
        scores.append(clf.staged_score(X[50:], y[50:]))
        print(f"  star seed {seed}: fixed kernel {scores[-1][0]:.4f}, after one AGOP step {scores[-1][1]:.4f}",
              flush=True)
    return np.asarray(scores)


def noisy_frame_experiment(n_train, n_test, n_iter, agop_max_samples, bandwidth, kernel="laplace", seed=0):
    """Test accuracy per AGOP iteration on Fashion-MNIST in a 42 x 42 noise frame."""
    X, y = load_fashion_mnist("train", n_samples=n_train, random_state=seed)
    X_test, y_test = load_fashion_mnist("test", n_samples=n_test, random_state=seed)
    X = make_noisy_frame_task(X, frame_size=42, noise_std=1.0, random_state=seed)
    X_test = make_noisy_frame_task(X_test, frame_size=42, noise_std=1.0, random_state=seed + 1)
    start = time.perf_counter()
    clf = ConvRFM(kernel=kernel, patch_size=3, bandwidth=bandwidth, n_iter=n_iter, validation_fraction=0.2,
                  agop_max_samples=agop_max_samples, device="cpu", random_state=seed, verbose=1).fit(X, y)
    fit_s = time.perf_counter() - start
    staged = clf.staged_score(X_test, y_test)
    return clf, staged, clf.score(X_test, y_test), fit_s


def small_cnn(seed):
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 32, 3), torch.nn.ReLU(),
        torch.nn.Conv2d(32, 32, 3, stride=2), torch.nn.ReLU(),
        torch.nn.Conv2d(32, 32, 3, stride=2), torch.nn.ReLU(),
        torch.nn.Flatten(), torch.nn.Linear(32 * 5 * 5, 10),
    )


def train_cnn(net, X, y, epochs, seed):
    X, y = torch.as_tensor(X), torch.as_tensor(y)
    optimizer = torch.optim.Adam(net.parameters(), lr=2e-3)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for idx in torch.randperm(len(X), generator=generator).split(64):
            loss = torch.nn.functional.cross_entropy(net(X[idx]), y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return net


def eigenfilters(matrix, n):
    """Top-``n`` eigenvectors of a (C q^2) x (C q^2) matrix as 3 x 3 images, sign-fixed."""
    eigvals, eigvecs = np.linalg.eigh(matrix)
    vecs = eigvecs[:, ::-1][:, :n].T
    vecs *= np.sign(vecs[np.arange(n), np.abs(vecs).argmax(1)])[:, None]
    return vecs.reshape(n, 3, 3)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    parser.add_argument("--out", default="convrfm_features.png")
    parser.add_argument("--seeds", type=int, default=10, help="star-task seeds")
    parser.add_argument("--star-only", action="store_true", help="run the star task only (no figure)")
    parser.add_argument("--n-noisy", type=int, default=4000, help="training images of the noise-frame task")
    # Laplace bandwidth chosen on the validation split at n = 1000 among 4, 10
    # and 100 (and agop_power 1/4, 1/2, 1, agop_threshold 0.2, ridge 1e-3, 1e-5).
    parser.add_argument("--noisy-bandwidth", type=float, default=4.0)
    # The authors use the NTK; its kernel and autograd AGOP cost hours at n = 4000
    # on a CPU, so the default is the Laplace kernel ("ntk" with a GPU, or a small --n-noisy).
    parser.add_argument("--noisy-kernel", choices=["laplace", "gaussian", "ntk"], default="laplace")
    parser.add_argument("--agop-max-samples", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.quick:
        args.seeds, args.n_noisy, n_test_star, n_test_noisy, n_iter, n_cnn, epochs = 1, 300, 100, 200, 1, 500, 1
        args.agop_max_samples = min(args.agop_max_samples, 200)
    else:
        # The authors test on the 2050 images left of their pool of 2100.
        n_test_star, n_test_noisy, n_iter, n_cnn, epochs = 2050, 1000, 3, 4000, 3

    print("1. Star task (n_train = 50, 11x11 patches)")
    star = star_experiment(args.seeds, n_test_star)
    star_mean = star.mean(0)
    print(f"  mean over {args.seeds} seed(s) ({n_test_star} test images each): fixed kernel {star_mean[0]:.4f} "
          f"(std {star[:, 0].std():.4f}), after one AGOP step {star_mean[1]:.4f} (std {star[:, 1].std():.4f})  "
          "(paper, one seed: 0.7795 -> 0.9483)")
    if args.star_only:
        return

    print(f"2. Fashion-MNIST in a 42x42 N(0,1) frame (n = {args.n_noisy}, 3x3 patches, {args.noisy_kernel} kernel)")
    noisy_clf, noisy, final, fit_s = noisy_frame_experiment(args.n_noisy, n_test_noisy, n_iter,
                                                            args.agop_max_samples, args.noisy_bandwidth,
                                                            args.noisy_kernel)
    print("  test accuracy per iteration: " + ", ".join(f"{i}: {s:.4f}" for i, s in enumerate(noisy)))
    print(f"  rise over the AGOP iterations: {100 * (noisy.max() - noisy[0]):+.1f} points (target: >= +5; "
          f"paper, NTK on MNIST: +7.4) "
          f"(last - first: {100 * (noisy[-1] - noisy[0]):+.1f}); selected iteration "
          f"{noisy_clf.best_iteration_} (validation scores {np.round(noisy_clf.validation_scores_, 4).tolist()}), "
          f"refitted model test accuracy {final:.4f}; fit took {fit_s:.0f} s")

    print(f"3-4. Filters and feature ansatz on Fashion-MNIST (n = {n_cnn})")
    X, y = load_fashion_mnist("train", n_samples=n_cnn, random_state=1)
    X_test, y_test = load_fashion_mnist("test", n_samples=1000, random_state=1)
    n_rfm = min(2000, n_cnn)
    rfm = ConvRFM(patch_size=3, n_iter=2, validation_fraction=0, agop_max_samples=args.agop_max_samples,
                  device="cpu", random_state=0).fit(X[:n_rfm], y[:n_rfm])
    net = small_cnn(0)
    untrained = copy.deepcopy(net)
    train_cnn(net, X, y, epochs, seed=0)
    with torch.no_grad():
        cnn_acc = (net(torch.as_tensor(X_test)).argmax(1).numpy() == y_test).mean()
    print(f"  CNN test accuracy {cnn_acc:.4f}; ConvRFM (n = {n_rfm}) test accuracy {rfm.score(X_test, y_test):.4f}")
    probe = torch.as_tensor(X[:512])
    corr_trained = nfa_correlation(net, probe)
    corr_untrained = nfa_correlation(untrained, probe)
    print("  feature-ansatz correlation corr(W^T W, patch AGOP) per conv layer:")
    for name in corr_trained:
        print(f"    layer {name}: trained {corr_trained[name]['correlation']:.3f} "
              f"(sqrt: {corr_trained[name]['correlation_sqrt']:.3f}), untrained "
              f"{corr_untrained[name]['correlation']:.3f} (sqrt: {corr_untrained[name]['correlation_sqrt']:.3f})")

    W = net[0].weight.detach().reshape(32, -1).double().numpy()
    panels = [("ConvRFM: eigenvectors of M", eigenfilters(rfm.M_, 8)),
              ("CNN layer 1: eigenvectors of W^T W", eigenfilters(W.T @ W, 8))]
    fig = plt.figure(figsize=(13, 7))
    grid = fig.add_gridspec(3, 8, height_ratios=[1, 1, 2.2])
    for row, (title, filters) in enumerate(panels):
        for k, image in enumerate(filters):
            ax = fig.add_subplot(grid[row, k])
            ax.imshow(image, cmap="RdBu_r", vmin=-np.abs(image).max(), vmax=np.abs(image).max())
            ax.set_xticks([])
            ax.set_yticks([])
            if k == 0:
                ax.set_ylabel(title, rotation=0, ha="right", va="center", fontsize=9)
    ax = fig.add_subplot(grid[2, 0:3])
    ax.bar(["fixed kernel", "one AGOP step"], 100 * star_mean, color=["0.6", "C0"])
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"Star task, n=50 ({args.seeds} seeds)")
    ax.set_ylim(40, 100)
    ax = fig.add_subplot(grid[2, 3:5])
    ax.plot(range(len(noisy)), 100 * noisy, "o-")
    ax.set_xlabel("AGOP iteration")
    ax.set_title(f"Fashion-MNIST in 42x42 noise, n={args.n_noisy}")
    ax = fig.add_subplot(grid[2, 5:8])
    names = list(corr_trained)
    positions = np.arange(len(names))
    ax.bar(positions - 0.2, [corr_untrained[n]["correlation"] for n in names], 0.4, label="untrained", color="0.6")
    ax.bar(positions + 0.2, [corr_trained[n]["correlation"] for n in names], 0.4, label="trained", color="C0")
    ax.set_xticks(positions, [f"conv {i + 1}" for i in positions])
    ax.set_ylabel("corr(W^T W, patch AGOP)")
    ax.set_title("Feature ansatz, CNN on Fashion-MNIST")
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
