"""The examples' figures read on their own: a legend for every colour, labelled axes, the settings shown.

The flagship example runs end to end on a small digits subset; the other examples' ``plot`` functions
are given tables of the shape their experiments produce.
"""

import importlib
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("matplotlib")
from matplotlib.colors import to_hex, to_rgba_array  # noqa: E402
from matplotlib.container import BarContainer  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture
def example(monkeypatch):
    """Imports an example script as a module, without its process-wide allocator setting."""
    monkeypatch.syspath_prepend(str(EXAMPLES))

    def load(name):
        module = importlib.import_module(name)
        if hasattr(module, "retain_freed_memory"):
            monkeypatch.setattr(module, "retain_freed_memory", lambda: None)
        return module

    yield load
    import matplotlib.pyplot as plt

    plt.close("all")


def legend_colours(fig):
    """Colour of every legend entry of the figure, by label."""
    def colour(handle):  # a patch's or a point collection's face colour, else a line's colour
        face = to_rgba_array(handle.get_facecolor()) if hasattr(handle, "get_facecolor") else []
        return to_hex(face[0] if len(face) else to_rgba_array(handle.get_color())[0])

    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend()] + list(fig.legends)
    return {text.get_text(): colour(handle)
            for legend in legends for text, handle in zip(legend.get_texts(), legend.legend_handles)}


def bar_colours(ax):
    return [to_hex(patch.get_facecolor()) for patch in ax.patches]


def test_main_example_figure_names_its_colours_and_settings(example, monkeypatch, tmp_path):
    module = example("plot_phase_collapse_vs_thresholding")
    figures = []
    draw = module.plot
    monkeypatch.setattr(module, "plot", lambda *args: figures.append(draw(*args)))
    monkeypatch.setattr(sys, "argv", [
        "plot_phase_collapse_vs_thresholding.py", "--quick", "--epochs", "1", "--n-train", "150", "--nonlinearities",
        "modulus", "soft_threshold", "relu", "--device", "cpu", "--threads", str(torch.get_num_threads()),
        "--out", str(tmp_path / "bars.png")])
    module.main()

    (fig,) = figures
    (ax,) = fig.axes
    legend = legend_colours(fig)
    assert list(legend) == ["phase collapse", "phase preserving", "other", "fixed"]
    kinds = ["phase collapse", "phase preserving", "other", "fixed"]  # modulus, soft_threshold, relu, Scat
    assert bar_colours(ax) == [legend[kind] for kind in kinds]
    assert len(set(legend.values())) == len(legend)
    assert ax.get_xlabel() and ax.get_ylabel() == "test error (%)"
    assert "150 training / 719 test images, 1 epoch per network, seed 0" in ax.get_title()
    assert (tmp_path / "bars.png").stat().st_size > 0


def test_resnet_comparison_figure_has_a_legend_and_error_bars_over_seeds(example, tmp_path):
    module = example("plot_phase_collapse_vs_resnet")
    runs = [("Scat", "fixed", 0.90, 0), ("LScat+skip", "phase collapse", 0.92, 0),
            ("LScat+skip", "phase collapse", 0.90, 1), ("ResNet-20", "ResNet", 0.89, 0)]
    results = [dict(model=model, kind=kind, accuracy=accuracy, seed=seed, parameters=10, seconds=1.0, epochs=2)
               for model, kind, accuracy, seed in runs]
    rows = module.summarise(results)
    fig = module.plot(rows, "fashion-mnist, 60000 training / 10000 test images", tmp_path / "bars.png")

    (ax,) = fig.axes
    legend = legend_colours(fig)
    assert list(legend) == ["fixed", "phase collapse", "ResNet"]
    assert bar_colours(ax) == [legend[r["kind"]] for r in rows]
    (bars,) = [container for container in ax.containers if isinstance(container, BarContainer)]
    assert bars.errorbar is not None
    # The two seeds of LScat+skip: 8 and 10 % error, drawn as a bar of height 9 with its spread.
    assert bars.patches[1].get_height() == pytest.approx(9.0)
    assert rows[1]["error_sd"] == pytest.approx(np.std([8.0, 10.0], ddof=1))
    assert ax.get_xlabel() and ax.get_ylabel() and "60000 training" in ax.get_title()


def test_class_separation_figure_labels_every_panel(example, tmp_path):
    module = example("plot_class_separation")
    rows = [dict(network=network, layer=layer, n_features=4, fisher_ratio=0.5 + i, calinski_harabasz=100.0 + i,
                 ncm_accuracy=0.6 + 0.1 * i, probe_accuracy=0.7 + 0.1 * i)
            for network in ("modulus (init)", "modulus (trained)") for i, layer in enumerate(("input", "blocks.0"))]
    fig = module.plot(rows, tmp_path / "separation.png", title="3000 training images, 1 epoch(s), seed 0")

    assert set(legend_colours(fig)) == {"modulus (init)", "modulus (trained)"}
    assert all(ax.get_xlabel() and ax.get_ylabel() and ax.get_title() for ax in fig.axes)
    assert fig._suptitle.get_text() == "3000 training images, 1 epoch(s), seed 0"


def test_sensitivity_figure_states_its_intervals_and_settings(example, tmp_path):
    module = example("plot_diffeo_sensitivity")
    interval = {f"{q}{suffix}": value for q in "DGR" for suffix, value in (("", 0.5), ("_low", 0.4), ("_high", 0.6))}
    rows = [dict(model=model, stage=stage, layer=layer, **interval)
            for model in ("all-conv CNN", "PhaseCollapse modulus") for stage in ("init", "trained")
            for layer in ("input", "blocks.0", "output")]
    fig = module.plot(rows, tmp_path / "sensitivity.png", settings="Fashion-MNIST: 4000 training images")

    assert set(legend_colours(fig)) == {"init", "trained"}
    title = fig._suptitle.get_text()
    assert "95% bootstrap intervals" in title and "Fashion-MNIST: 4000 training images" in title
    assert all(ax.get_ylabel() for ax in fig.axes)


def test_convrfm_figure_labels_its_panels_with_their_settings(example, tmp_path):
    module = example("plot_convrfm_features")
    rng = np.random.default_rng(0)
    panels = [("ConvRFM: eigenvectors of M", rng.standard_normal((8, 3, 3))),
              ("CNN layer 1: eigenvectors of W^T W", rng.standard_normal((8, 3, 3)))]
    star = np.array([[0.8, 0.95], [0.7, 0.9]])
    correlations = {name: dict(correlation=0.8) for name in ("0", "2")}
    titles = dict(star="Star task: 50 training", noisy="Fashion-MNIST in 42x42 noise: 200 training",
                  ansatz="Feature ansatz: CNN on 500 images")
    fig = module.plot(tmp_path / "convrfm.png", panels, star, np.array([0.41, 0.43]), correlations, correlations,
                      titles)

    lower = fig.axes[-3:]
    assert [ax.get_title() for ax in lower] == list(titles.values())
    assert all(ax.get_ylabel() for ax in lower)
    assert set(legend_colours(fig)) == {"untrained", "trained"}
    filter_rows = [ax.get_ylabel() for ax in fig.axes[:-3] if ax.get_ylabel()]
    assert len(filter_rows) == 2 and all("red > 0 > blue" in label for label in filter_rows)


def test_shift_invariance_figure_names_its_images(example, tmp_path):
    pytest.importorskip("skimage")  # the example reads scikit-image's photos
    module = example("plot_shift_invariance")
    from skphase.filters import dtcwpt_packet_info

    info = dtcwpt_packet_info(2)
    n = len(info["xi_x"])
    values = np.linspace(0.1, 0.9, n)
    fig = module.plot(info, values, values, values, 0.5, 2, 2, tmp_path / "shift.png", "error measured on 12 crops")

    assert fig._suptitle.get_text().endswith("error measured on 12 crops")
    assert set(legend_colours(fig)) == {"band-pass", "low-pass / boundary"}
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert len(panels) == 3 and all(ax.get_xlabel() and ax.get_ylabel() for ax in panels)
