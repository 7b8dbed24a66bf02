"""The report's PNG figures, drawn with matplotlib's object API (no pyplot: no global state,
no display needed, whatever backend the user's matplotlib defaults to).

Each function takes plain data, writes one PNG and returns its path. Failed and diverged
trials are drawn, not dropped: a red cross where their curve ended, or along the top edge of
a parameter plot where they have no final value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.transforms import blended_transform_factory

DPI = 110
FAILED_STYLE = {"marker": "x", "color": "#d62728", "markersize": 9, "mew": 2, "linestyle": ""}
MAX_LEGEND = 20


@dataclass
class Curve:
    """One trial's metric over its run."""

    group: str  # legend entry; curves of one group share a color (an ablation's seeds)
    state: str  # complete, pruned, fail, ...
    steps: list[float]
    seconds: list[float | None]  # wall-clock seconds since the trial started; None: unknown
    values: list[float]


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def _colors(groups: Sequence[str]) -> dict[str, Any]:
    from matplotlib import colormaps

    if len(groups) <= 10:
        palette = colormaps["tab10"].colors
    elif len(groups) <= 20:
        palette = colormaps["tab20"].colors
    else:
        cmap = colormaps["viridis"]
        palette = [cmap(i / (len(groups) - 1)) for i in range(len(groups))]
    return {group: palette[i % len(palette)] for i, group in enumerate(groups)}


def _log_y_if_wide(ax: Any, values: Sequence[float]) -> None:
    """A log y axis when the values are positive and span more than a factor of 20."""
    finite = [v for v in values if _finite(v)]
    if finite and min(finite) > 0 and max(finite) / min(finite) > 20:
        ax.set_yscale("log")
        _plain_log_labels(ax.yaxis, max(finite) / min(finite))


def _plain_log_labels(axis: Any, span: float) -> None:
    """Log-axis labels as plain numbers (0.01, 20); the ticks between powers of ten are
    labelled 2, 3, 5 (x 10^k) when the axis covers less than two decades, else not at all."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    def minor(value: float, _: Any) -> str:
        mantissa = round(value / 10 ** math.floor(math.log10(value)))
        return f"{value:g}" if mantissa in (2, 3, 5) else ""

    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axis.set_minor_formatter(FuncFormatter(minor) if span < 100 else NullFormatter())


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    return path


def plot_curves(curves: list[Curve], x: str, metric: str, title: str, path: Path) -> Path | None:
    """The metric of every trial against `x` ("step" or "seconds"); None when nothing to draw."""
    points = []
    for curve in curves:
        xs = curve.steps if x == "step" else curve.seconds
        pairs = [(a, b) for a, b in zip(xs, curve.values, strict=True) if _finite(a) and _finite(b)]
        if pairs:
            points.append((curve, pairs))
    if not points:
        return None
    groups = list(dict.fromkeys(curve.group for curve, _ in points))
    colors = _colors(groups)
    fig = Figure(figsize=(9, 5))
    ax = fig.add_subplot()
    for curve, pairs in points:
        xs, ys = zip(*pairs, strict=True)
        style = "--" if curve.state == "pruned" else "-"
        ax.plot(xs, ys, style, color=colors[curve.group], marker="." if len(xs) < 40 else None)
        if curve.state == "fail":
            ax.plot(xs[-1], ys[-1], **FAILED_STYLE)
    _log_y_if_wide(ax, [y for _, pairs in points for _, y in pairs])
    ax.set_xlabel("gradient step" if x == "step" else "wall-clock seconds")
    ax.set_ylabel(metric)
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    handles = []
    if len(groups) <= MAX_LEGEND:
        handles = [Line2D([], [], color=colors[g], label=g) for g in groups]
    states = {curve.state for curve, _ in points}
    if "pruned" in states:
        handles.append(Line2D([], [], color="grey", linestyle="--", label="pruned"))
    if "fail" in states:
        handles.append(Line2D([], [], **FAILED_STYLE, label="failed / diverged (last value)"))
    drawn = {id(curve) for curve, _ in points}
    for curve in curves:  # failed before a first value: no line, but said
        if id(curve) not in drawn and curve.state == "fail":
            label = f"{curve.group}: failed before a first value"
            handles.append(Line2D([], [], **FAILED_STYLE, alpha=0.4, label=label))
    if handles:
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")
    return _save(fig, path)


def plot_metric_vs_param(
    points: list[tuple[Any, float | None, str]],
    param: str,
    metric: str,
    log_x: bool,
    path: Path,
) -> Path:
    """Each trial's final metric against one parameter's value.

    `points` are (parameter value, final metric or None, state). Complete trials are dots,
    pruned ones hollow at their best value, failed ones red crosses along the top edge.
    """
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v, _, _ in points)
    categories = [] if numeric else list(dict.fromkeys(repr(v) for v, _, _ in points))

    def position(value: Any) -> float:
        return value if numeric else categories.index(repr(value))

    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot()
    complete = [(position(v), y) for v, y, s in points if s == "complete" and _finite(y)]
    pruned = [(position(v), y) for v, y, s in points if s != "complete" and _finite(y)]
    failed = [position(v) for v, y, s in points if s == "fail" and not _finite(y)]
    if complete:
        ax.scatter(*zip(*complete, strict=True), color="#1f77b4", label="complete", zorder=3)
    if pruned:
        ax.scatter(
            *zip(*pruned, strict=True),
            facecolors="none",
            edgecolors="#ff7f0e",
            label="pruned / unfinished (best value)",
            zorder=3,
        )
    if failed:
        top = blended_transform_factory(ax.transData, ax.transAxes)
        ax.plot(
            failed,
            [0.96] * len(failed),
            transform=top,
            **FAILED_STYLE,
            label="failed (no final value)",
        )
    if log_x:
        values = [position(v) for v, _, _ in points]
        ax.set_xscale("log")
        _plain_log_labels(ax.xaxis, max(values) / min(values))
    if categories:
        ax.set_xticks(range(len(categories)), [c.strip("'") for c in categories])
    _log_y_if_wide(ax, [y for _, y in complete + pruned])
    ax.set_xlabel(param + (" (log scale)" if log_x else ""))
    ax.set_ylabel(f"final {metric}")
    ax.set_title(f"{metric} vs {param}")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="small")
    return _save(fig, path)


def plot_ablation_forest(
    entries: list[dict[str, Any]], metric: str, goal: str, path: Path
) -> Path | None:
    """A forest plot: one row per ablation (best at the top), its paired Δ against the
    baseline with the 95% CI as a bar, each seed's paired Δ as a dot, a line at 0, and the
    numbers printed at the right. When the effects span more than a factor of 20 the axis is
    symmetric-log, so one large effect does not flatten the others.

    `entries` (best first): name, delta, ci_low, ci_high, verdict, seed_deltas, note (e.g.
    "1/2 diverged", in red).
    """
    if not entries:
        return None
    sign = 1 if goal == "minimize" else -1
    fig = Figure(figsize=(9, 1.4 + 0.6 * len(entries)))
    ax = fig.add_subplot()
    ys = list(range(len(entries)))
    spans = []
    for y, entry in zip(ys, entries, strict=True):
        delta, low, high = entry["delta"], entry["ci_low"], entry["ci_high"]
        seeds = [d for d in entry["seed_deltas"] if _finite(d)]
        ax.scatter(seeds, [y] * len(seeds), color="black", s=12, zorder=3, alpha=0.6)
        spans += seeds
        if not _finite(delta):
            continue
        color = "#7f7f7f"
        if _finite(low) and _finite(high):
            if low > 0 or high < 0:
                color = "#2ca02c" if sign * delta < 0 else "#d62728"
            ax.hlines(y, low, high, color=color, linewidth=3, zorder=2)
            spans += [low, high]
        ax.plot([delta], [y], marker="D", color=color, markersize=7, zorder=4)
        spans.append(delta)
    ax.axvline(0, color="black", linewidth=1)
    magnitudes = [abs(v) for v in spans if _finite(v) and v != 0]
    magnitudes = [m for m in magnitudes if m > 1e-6 * max(magnitudes)]  # not rounding noise
    symlog = bool(magnitudes) and max(magnitudes) / min(magnitudes) > 20
    if symlog:
        ax.set_xscale("symlog", linthresh=min(magnitudes))
    labels = [f"{e['name']}\n({e['note']})" if e["note"] else e["name"] for e in entries]
    ax.set_yticks(ys, labels)
    for label, entry in zip(ax.get_yticklabels(), entries, strict=True):
        if entry["note"]:  # diverged or failed seeds: a finding, in red
            label.set_color("#d62728")
            label.set_fontweight("bold")
    numbers = blended_transform_factory(ax.transAxes, ax.transData)
    for y, entry in zip(ys, entries, strict=True):
        ax.text(1.02, y, _forest_numbers(entry), transform=numbers, va="center", fontsize=8)
    ax.invert_yaxis()
    direction = "lower" if goal == "minimize" else "higher"
    scale = ", symmetric log scale" if symlog else ""
    ax.set_xlabel(f"Δ {metric} vs baseline, paired by seed ({direction} is better{scale})")
    ax.set_title(f"ablations: Δ {metric} and 95% CI (bars), each seed (dots)")
    ax.grid(alpha=0.3, axis="x")
    return _save(fig, path)


def _forest_numbers(entry: dict[str, Any]) -> str:
    """`+2.1 [0.83, 3.37]` and the verdict, printed beside a forest plot's row."""
    delta, low, high = entry["delta"], entry["ci_low"], entry["ci_high"]
    text = f"{delta:+.3g}" if _finite(delta) else "-"
    if _finite(low) and _finite(high):
        text += f" [{low:.3g}, {high:.3g}]"
    return f"{text}\n{entry['verdict']}"


def plot_importance(values: dict[str, float], title: str, path: Path) -> Path | None:
    """Horizontal bars of parameter importance, most important at the top."""
    if not values:
        return None
    names = list(values)
    fig = Figure(figsize=(7, 1.2 + 0.45 * len(names)))
    ax = fig.add_subplot()
    ax.barh(range(len(names)), [values[n] for n in names], color="#1f77b4")
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("importance (share of the metric's variance)")
    ax.set_title(title)
    ax.grid(alpha=0.3, axis="x")
    return _save(fig, path)
