"""The report's PNG figures, drawn with matplotlib's object API (no pyplot: no global state,
no display needed, whatever backend the user's matplotlib defaults to).

Each function takes plain data, writes one PNG and returns its path. Failed and diverged
trials are drawn, not dropped: a red cross where their curve ended, or, in a parameter plot
where they have no final value, in a strip of their own above the value axis ("failed"), so
no cross reads as a value. Trials that differ by a number are coloured along a sequential
colormap in the order of that number (a colorbar, not a legend, when there are many);
legends sit outside the axes and the saved figure grows to hold them whole.
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
    order: float | None = None  # the swept value it is coloured by (None: categorical)
    order_label: str | None = None  # that value's name, for the colorbar
    order_log: bool = False  # the value is swept on a log scale


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


def _sequential(values: dict[str, float], log: bool) -> tuple[dict[str, Any], Any]:
    """Each group's colour along viridis in the order of its value, and the mappable for a
    colorbar (a log norm for a log-scaled value)."""
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import LogNorm, Normalize

    low, high = min(values.values()), max(values.values())
    if low == high:
        low, high = (low / 2, high * 2) if log else (low - 1, high + 1)
    norm = LogNorm(low, high) if log and low > 0 else Normalize(low, high)
    cmap = colormaps["viridis"]
    return {g: cmap(norm(v)) for g, v in values.items()}, ScalarMappable(norm=norm, cmap=cmap)


def _legend_outside(ax: Any, handles: list[Any]) -> None:
    """A legend to the right of the axes; the saved figure grows to hold it whole."""
    if handles:
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")


def plot_curves(curves: list[Curve], x: str, metric: str, title: str, path: Path) -> Path | None:
    """The metric of every trial against `x` ("step" or "seconds"); None when nothing to draw.
    Curves with an `order` (a swept number) are coloured along viridis by it, listed in its
    order, with a colorbar instead of a legend past MAX_LEGEND groups."""
    points = []
    for curve in curves:
        xs = curve.steps if x == "step" else curve.seconds
        pairs = [(a, b) for a, b in zip(xs, curve.values, strict=True) if _finite(a) and _finite(b)]
        if pairs:
            points.append((curve, pairs))
    if not points:
        return None
    groups = list(dict.fromkeys(curve.group for curve, _ in points))
    fig = Figure(figsize=(9, 5))
    ax = fig.add_subplot()
    mappable = None
    if all(_finite(curve.order) for curve, _ in points):
        order = {curve.group: curve.order for curve, _ in points}
        groups.sort(key=order.get)
        colors, mappable = _sequential(order, points[0][0].order_log)
    else:
        colors = _colors(groups)
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
    elif mappable is not None:
        fig.colorbar(mappable, ax=ax, label=points[0][0].order_label or "value", pad=0.02)
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
    _legend_outside(ax, handles)
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
    pruned ones hollow at their best value; failed ones, which have no value, are red crosses
    in a strip of their own above the value axis, labelled "failed".
    """
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v, _, _ in points)
    categories = [] if numeric else list(dict.fromkeys(repr(v) for v, _, _ in points))

    def position(value: Any) -> float:
        return value if numeric else categories.index(repr(value))

    complete = [(position(v), y) for v, y, s in points if s == "complete" and _finite(y)]
    pruned = [(position(v), y) for v, y, s in points if s != "complete" and _finite(y)]
    failed = [position(v) for v, y, s in points if s == "fail" and not _finite(y)]
    fig = Figure(figsize=(7.5, 4.8))
    if failed:
        grid = fig.add_gridspec(2, 1, height_ratios=[1, 9], hspace=0.06)
        strip = fig.add_subplot(grid[0])
        ax = fig.add_subplot(grid[1], sharex=strip)
        strip.plot(failed, [0] * len(failed), **FAILED_STYLE)
        strip.set_ylim(-1, 1)
        strip.set_yticks([0], ["failed"], color="#d62728")
        strip.tick_params(axis="x", labelbottom=False)
        strip.grid(alpha=0.3, axis="x")
        strip.set_title(f"{metric} vs {param}")
    else:
        ax = fig.add_subplot()
        ax.set_title(f"{metric} vs {param}")
    handles = []
    if complete:
        ax.scatter(*zip(*complete, strict=True), color="#1f77b4", zorder=3)
        handles.append(Line2D([], [], marker="o", color="#1f77b4", ls="", label="complete"))
    if pruned:
        ax.scatter(*zip(*pruned, strict=True), facecolors="none", edgecolors="#ff7f0e", zorder=3)
        label = "pruned / unfinished (best value)"
        handles.append(Line2D([], [], marker="o", mfc="none", mec="#ff7f0e", ls="", label=label))
    if failed:
        label = f"failed: no final value ({len(failed)}, top strip)"
        handles.append(Line2D([], [], **FAILED_STYLE, label=label))
    if log_x:
        values = [position(v) for v, _, _ in points]
        ax.set_xscale("log")
        _plain_log_labels(ax.xaxis, max(values) / min(values))
    if categories:
        ax.set_xticks(range(len(categories)), [c.strip("'") for c in categories])
    _log_y_if_wide(ax, [y for _, y in complete + pruned])
    ax.set_xlabel(param + (" (log scale)" if log_x else ""))
    ax.set_ylabel(f"final {metric}")
    ax.grid(alpha=0.3, which="both")
    _legend_outside(ax, handles)
    return _save(fig, path)


def plot_ablation_forest(
    entries: list[dict[str, Any]], metric: str, goal: str, against: str, path: Path
) -> Path | None:
    """A forest plot: one row per ablation (best at the top), its paired Δ against the
    baseline (`against`: a grid's reference point) with the 95% CI as a bar, each seed's paired Δ as a dot, a line at 0, and the
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
    ax.set_xlabel(f"Δ {metric} vs {against}, paired by seed ({direction} is better{scale})")
    kind = "ablations" if against == "baseline" else "grid points"
    ax.set_title(f"{kind}: Δ {metric} and 95% CI (bars), each seed (dots)")
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


def plot_parallel(
    rows: list[dict[str, Any]],
    params: list[str],
    log: dict[str, bool],
    metric: str,
    goal: str,
    path: Path,
) -> Path | None:
    """Parallel coordinates for a sweep of three or more parameters: one vertical axis per
    parameter and one for the final metric, each trial a line through its values, coloured
    by its metric (viridis; the best end bright). Numbers are scaled min to max on each axis
    (log-scaled where the parameter is, and the metric where it spans more than a factor of
    20), categories spaced evenly; failed trials, which have
    no value, are red dashed lines that end in a "failed" row under the metric's axis.

    `rows`: per trial, `params` (name -> value), `value` (final metric or None), `state`.
    """
    if len(params) < 3 or not rows:
        return None
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import LogNorm, Normalize

    columns = [*params, metric]
    scales = {name: _axis_scale([r["params"].get(name) for r in rows], log.get(name, False))
              for name in params}  # fmt: skip
    finite = [r["value"] for r in rows if _finite(r["value"])]
    if finite:
        wide = min(finite) > 0 and max(finite) / min(finite) > 20  # as _log_y_if_wide
        scales[metric] = _axis_scale(finite, wide)
    low, high = (min(finite), max(finite)) if finite else (0.0, 1.0)
    norm = Normalize(low, high if high > low else low + 1)
    if finite and scales[metric][2]:
        norm = LogNorm(low, high)
    cmap = colormaps["viridis" if goal == "maximize" else "viridis_r"]
    fig = Figure(figsize=(max(7.0, 1.9 * len(columns)), 5))
    ax = fig.add_subplot()
    for row in rows:
        ys = [scales[name][0](row["params"].get(name)) for name in params]
        if _finite(row["value"]):
            ax.plot(range(len(columns)), [*ys, scales[metric][0](row["value"])],
                    color=cmap(norm(row["value"])), alpha=0.9, lw=2, zorder=3)  # fmt: skip
        else:  # under the complete trials' lines
            ax.plot(range(len(columns)), [*ys, -0.12], color="#d62728", ls="--", alpha=0.5)
    for i, name in enumerate(columns):
        ax.axvline(i, color="black", lw=1)
        for y, text in scales.get(name, (None, [], False))[1]:
            ax.text(i + 0.03, y, text, fontsize=7, va="center")
    ax.text(len(params) + 0.03, -0.12, "failed", color="#d62728", fontsize=8, va="center")
    names = [n + " (log)" * bool(scales.get(n, (None, None, False))[2]) for n in columns]
    ax.set_xticks(range(len(columns)), names)
    ax.set_xlim(-0.1, len(columns) - 0.6)
    ax.set_ylim(-0.2, 1.05)
    ax.set_yticks([])
    ax.set_title(f"parallel coordinates: {len(rows)} trials, coloured by final {metric}")
    mappable = ScalarMappable(norm=norm, cmap=cmap)
    fig.colorbar(mappable, ax=ax, label=f"final {metric} ({goal})", pad=0.02)
    return _save(fig, path)


def _axis_scale(values: list[Any], log: bool) -> tuple[Any, list[tuple[float, str]], bool]:
    """(value -> height in [0, 1], the axis's labelled ticks, whether it is log-scaled) for
    one parallel axis."""
    numbers = [v for v in values if _finite(v) and not isinstance(v, bool)]
    if numbers and len(numbers) == len([v for v in values if v is not None]):
        use_log = log and min(numbers) > 0
        f = math.log10 if use_log else float
        low, high = f(min(numbers)), f(max(numbers))
        span = high - low or 1.0

        def height(value: Any) -> float:
            return (f(value) - low) / span if _finite(value) else 0.5

        return height, [(0.0, f"{min(numbers):.3g}"), (1.0, f"{max(numbers):.3g}")], use_log
    categories = list(dict.fromkeys(repr(v) for v in values))
    step = 1 / max(len(categories) - 1, 1)

    def place(value: Any) -> float:
        return categories.index(repr(value)) * step

    return place, [(i * step, c.strip("'")) for i, c in enumerate(categories)], False


def plot_pareto(
    points: list[tuple[int, float, float, bool]], axes: tuple[str, str], path: Path
) -> Path | None:
    """The complete trials of a sweep with several metrics on its first two: `points` are
    (trial, x, y, on the front). Trials on the Pareto front are large and joined in the
    order of x (the trade-off one buys along it), the others small and grey; every point
    is labelled with its trial number. `axes`: the two labels, e.g. `val_loss (minimize)`."""
    drawn = [p for p in points if _finite(p[1]) and _finite(p[2])]
    if not drawn:
        return None
    front = sorted((p for p in drawn if p[3]), key=lambda p: (p[1], p[2]))
    rest = [p for p in drawn if not p[3]]
    fig = Figure(figsize=(7, 5))
    ax = fig.add_subplot()
    if rest:
        ax.scatter([p[1] for p in rest], [p[2] for p in rest], s=30, color="#9e9e9e",
                   label=f"dominated ({len(rest)})", zorder=2)  # fmt: skip
    ax.plot([p[1] for p in front], [p[2] for p in front], "-o", color="#d62728", markersize=8,
            label=f"Pareto front ({len(front)})", zorder=3)  # fmt: skip
    for trial, x, y, _ in drawn:
        ax.annotate(f"#{trial}", (x, y), textcoords="offset points", xytext=(5, 4),
                    fontsize="x-small")  # fmt: skip
    ax.set_xlabel(axes[0])
    ax.set_ylabel(axes[1])
    ax.set_title(f"Pareto front: {len(front)} of {len(drawn)} complete trials")
    ax.grid(alpha=0.3)
    _legend_outside(ax, ax.get_legend_handles_labels()[0])
    return _save(fig, path)
