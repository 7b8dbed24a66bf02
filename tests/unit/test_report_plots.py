"""The report's figures say what they mean: a failed trial is off the value axis, colours
follow the swept value, legends are whole, parallel coordinates for 3+ parameters."""

from __future__ import annotations

import pytest

from orchestrator.results import plots


@pytest.fixture
def figures(monkeypatch):
    """The figures the plot functions save, kept to be looked into."""
    kept = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: kept.append(fig) or path)
    return kept


def test_failed_trials_sit_in_their_own_strip_not_on_the_value_axis(figures, tmp_path):
    points = [(0.1, 1.0, "complete"), (0.2, 2.0, "complete"), (0.3, None, "fail")]
    plots.plot_metric_vs_param(points, "lr", "loss", False, tmp_path / "p.png")
    (fig,) = figures
    strip, ax = fig.axes
    assert [t.get_text() for t in strip.get_yticklabels()] == ["failed"]
    crosses = [line for line in strip.get_lines() if line.get_marker() == "x"]
    assert crosses and list(crosses[0].get_xdata()) == [0.3]
    assert not [line for line in ax.get_lines() if line.get_marker() == "x"]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[-1].startswith("failed: no final value")
    assert ax.get_legend().get_bbox_to_anchor().x0 > ax.get_window_extent().x1 - 1  # outside


def test_curves_are_coloured_and_listed_in_the_order_of_the_swept_value(figures, tmp_path):
    def curve(lr):
        return plots.Curve(f"lr={lr}", "complete", [1, 2], [None, None], [1.0, 0.5], lr, "lr")

    plots.plot_curves([curve(0.3), curve(0.01), curve(0.1)], "step", "loss", "t", tmp_path / "c")
    (fig,) = figures
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["lr=0.01", "lr=0.1", "lr=0.3"]
    colors, _ = plots._sequential({"a": 0.01, "b": 0.1, "c": 0.3}, log=False)
    from matplotlib import colormaps

    assert colors["a"] == colormaps["viridis"](0.0) and colors["c"] == colormaps["viridis"](1.0)


def test_many_ordered_curves_get_a_colorbar_instead_of_a_clipped_legend(figures, tmp_path):
    curves = [
        plots.Curve(f"#{i}", "complete", [1], [None], [float(i)], float(i + 1), "lr", True)
        for i in range(plots.MAX_LEGEND + 5)
    ]
    plots.plot_curves(curves, "step", "loss", "t", tmp_path / "c")
    (fig,) = figures
    assert len(fig.axes) == 2 and fig.axes[1].get_ylabel() == "lr"  # the colorbar


def test_parallel_coordinates_for_three_or_more_parameters(figures, tmp_path):
    rows = [
        {"params": {"lr": lr, "wd": wd, "act": act}, "value": value, "state": state}
        for lr, wd, act, value, state in [
            (1e-4, 0.0, "gelu", 1.5, "complete"),
            (1e-3, 0.1, "silu", 1.2, "complete"),
            (1e-2, 0.1, "gelu", None, "fail"),
        ]
    ]
    log = {"lr": True, "wd": False, "act": False}
    assert plots.plot_parallel(rows, ["lr", "wd"], log, "loss", "minimize", tmp_path / "x") is None
    path = tmp_path / "parallel.png"
    assert plots.plot_parallel(rows, ["lr", "wd", "act"], log, "loss", "minimize", path) == path
    (fig,) = figures
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["lr (log)", "wd", "act", "loss"]
    failed = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert len(failed) == 1 and failed[0].get_ydata()[-1] < 0  # below the metric's axis
    assert "failed" in [t.get_text() for t in ax.texts]
