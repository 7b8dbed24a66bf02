"""`report.md`: a sweep's findings as Markdown, with its plots next to it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from orchestrator.format import format_params, format_seconds, format_value
from orchestrator.results import analysis
from orchestrator.results.analysis import AblationGroup, Findings
from orchestrator.store.results import TrialResult


def _md_table(header: list[str], rows: list[list[Any]]) -> str:
    def cell(value: Any) -> str:
        text = value if isinstance(value, str) else format_value(value)
        return text.replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def markdown(found: Findings, images: dict[str, Path | None], run_id: str) -> str:
    """The report as Markdown, images referenced next to it."""
    spec, info, records = found.spec, found.sweep.info, found.sweep.trials
    groups, rows, importance = found.groups, found.rows, found.importance
    metric, goal = info.metric_name, info.goal
    counts: dict[str, int] = {}
    for record in records:
        counts[record.state] = counts.get(record.state, 0) + 1
    states = ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "no trials yet"
    parts = [
        f"# Sweep `{info.name}`",
        f"{spec.description or ''}".strip(),
        f"Method **{spec.method}**, metric **{metric}** ({goal}); {len(records)} of "
        f"{info.total or '?'} trials: {states}. Spec: `{info.spec_path}`. "
        f"Summary wandb run `{run_id}` ({spec.wandb.mode}, under `{info.run_dir}/wandb`).",
    ]
    best = next((r for r in records if r.state == "complete"), None)
    if best is not None:
        parts.append(
            f"**Best trial: #{best.trial}**, {metric} = {format_value(best.value)}, "
            f"{format_params(best.params) or 'no parameters'} "
            f"(wandb run `{best.wandb_run}`)."
        )
    if groups:
        parts += ["## Ablations", _ablation_markdown(groups, rows, metric, goal)]
    if importance is not None:
        parts.append("## Parameter importance")
        if importance.values:
            parts.append(
                f"{importance.evaluator} over {importance.trials} complete trials "
                "(pruned and failed trials have no final value and are left out)."
            )
            parts.append(
                _md_table(
                    ["parameter", "importance"], [[k, v] for k, v in importance.values.items()]
                )
            )
        else:
            parts.append(f"Skipped: {importance.skipped}.")
    parts.append("## Plots")
    parts += [f"![{title}]({path.name})" for title, path in images.items() if path]
    parts += ["## Results (best first)", _results_markdown(records, metric)]
    return "\n\n".join(p for p in parts if p) + "\n"


def _ablation_markdown(
    groups: list[AblationGroup], rows: dict[str, list[dict[str, Any]]], metric: str, goal: str
) -> str:
    lines = []
    order = analysis.ranked(groups, metric, goal)
    for rank, group in enumerate(order, start=1):
        mean, std = group.stats(metric)
        row = next((r for r in rows.get(group.name, []) if r["metric"] == metric), None)
        lines.append(
            [
                rank,
                group.name,
                format_params(group.changes) or "-",
                group.status(),
                analysis.plus_minus(mean, std),
                analysis.plus_minus(row["abs_delta"], row["delta_std"]) if row else "-",
                analysis.percent(row["rel_delta"]) if row else "-",
            ]
        )
    header = ["#", "ablation", "changes", "seeds", f"{metric} (mean ± std)", "Δ", "Δ %"]
    every = [
        [
            r["ablation"],
            r["metric"],
            analysis.plus_minus(r["baseline_mean"], r["baseline_std"]),
            analysis.plus_minus(r["ablated_mean"], r["ablated_std"]),
            analysis.plus_minus(r["abs_delta"], r["delta_std"]),
            analysis.percent(r["rel_delta"]),
        ]
        for group in order
        for r in rows.get(group.name, [])
    ]
    return "\n\n".join(
        [
            "Best to worst (fewest seeds that did not complete first, then the mean). "
            "Diverged seeds have no final value: they are counted in `seeds` and as the "
            "`diverged` fraction below, not averaged.",
            _md_table(header, lines),
            "### Every final metric",
            _md_table(["ablation", "metric", "baseline", "ablated", "Δ", "Δ %"], every),
        ]
    )


def _results_markdown(records: list[TrialResult], metric: str) -> str:
    header = ["trial", "state", "params", metric, "best", "step", "elapsed", "reason"]
    rows = [
        [
            r.trial,
            r.state,
            format_params(r.params) or "-",
            r.value,
            r.best,
            r.last_step,
            format_seconds(r.elapsed_s) if r.elapsed_s is not None else "-",
            (r.reason or "")[:80],
        ]
        for r in records
    ]
    return _md_table(header, rows) if rows else "No trials yet."
