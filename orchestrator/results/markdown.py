"""`report.md`: a sweep's findings as Markdown, with its plots next to it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from orchestrator.format import format_params, format_seconds, format_value
from orchestrator.results import analysis, pareto
from orchestrator.results.ablation_stats import BOOTSTRAP_FROM
from orchestrator.results.analysis import Findings
from orchestrator.results.costs import cost_lines
from orchestrator.store.compute import totals as compute_totals
from orchestrator.store.gpu_usage import compact, gpu_line
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
    groups, importance = found.groups, found.importance
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
    parts.append(compute_totals(records).line().capitalize() + ".")
    best = next((r for r in records if r.state == "complete"), None)
    if best is not None:
        parts.append(
            f"**Best trial: #{best.trial}**, {metric} = {format_value(best.value)}, "
            f"{format_params(best.params) or 'no parameters'} "
            f"(wandb run `{best.wandb_run}`)."
        )
    front = pareto.front_summary(found.sweep)
    if front:
        parts += ["## Pareto front", f"{front}.", _md_table(*pareto.front_cells(found.sweep))]
    if groups and found.kind == "ablation":
        parts += ["## Ablations", _ablation_markdown(found, metric, goal)]
    elif groups:
        parts += [
            f"## Grid points against {found.against}",
            _ablation_markdown(found, metric, goal),
        ]
    if importance is not None:
        parts.append("## Parameter importance")
        if importance.values:
            parts.append(
                f"{importance.evaluator} over {importance.trials} complete trials "
                "(pruned and failed trials have no final value and are left out)."
                + (f" **Warning: {importance.warning}.**" if importance.warning else "")
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


def _ablation_markdown(found: Findings, metric: str, goal: str) -> str:
    groups, comparisons, rows = found.groups, found.comparisons, found.rows
    order = analysis.ranked(groups, metric, goal)
    lines = [
        [
            rank,
            group.name,
            format_params(group.changes) or "-",
            group.status(),
            analysis.plus_minus(*group.stats(metric)),
            *analysis.comparison_cells(comparisons.get(group.name, {}).get(metric)),
        ]
        for rank, group in enumerate(order, start=1)
    ]
    paired = ["Δ", "95% CI", "p", "effect", "verdict"]
    header = ["#", found.kind, "changes", "seeds", f"{metric} (mean ± std)", *paired]
    every = [
        [
            r["ablation"],
            r["metric"],
            analysis.plus_minus(r["baseline_mean"], r["baseline_std"]),
            analysis.plus_minus(r["ablated_mean"], r["ablated_std"]),
            analysis.percent(r["rel_delta"]),
            *analysis.comparison_cells(comparisons.get(r["ablation"], {}).get(r["metric"])),
        ]
        for group in order
        for r in rows.get(group.name, [])
    ]
    return "\n\n".join(
        [
            "Best to worst (fewest seeds that did not complete first, then the mean). Each "
            f"{found.kind} is compared with {found.against} seed by seed (the same seeds: the same "
            "initialisation and data order): Δ is the mean paired difference, 95% CI its "
            f"confidence interval (Student's t; bootstrap from {BOOTSTRAP_FROM} seeds), p the "
            "paired t-test's p-value, effect Δ in standard deviations of the baseline across "
            "seeds. The verdict follows the CI: better or worse when it excludes 0. Diverged "
            "or failed seeds have no value: they are counted in `seeds` (and as the "
            "`diverged` fraction below), left out of the pairs, never averaged.",
            _md_table(header, lines),
            *_rounds_and_costs(found),
            "### Every final metric",
            "Only the sweep's metric has a goal; the others say higher or lower.",
            _md_table([found.kind, "metric", "baseline", "ablated", "Δ % (means)", *paired], every),
        ]
    )


def _rounds_and_costs(found: Findings) -> list[str]:
    """Adaptive seeds' rounds, the cost label and each arm's compute (`results.costs`)."""
    parts = []
    if found.sweep.rounds:
        added = "; ".join(f"seed {r.seed} for {', '.join(r.configs)}" for r in found.sweep.rounds)
        parts.append(f"Adaptive seeds (`seeds: {{min, max}}`) added: {added}.")
    if found.costs is not None:
        lines = cost_lines(found.costs)
        parts.append(f"**{lines[0]}**. " + "; ".join(line.strip() for line in lines[1:]) + ".")
    return parts


def _results_markdown(records: list[TrialResult], metric: str) -> str:
    header = ["trial", "state", "params", metric, "best", "step", "elapsed", "reason"]
    with_gpu = any(r.gpu_share for r in records)  # a CPU sweep's table is unchanged
    header += ["gpu"] * with_gpu
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
            *[compact(r)] * with_gpu,
        ]
        for r in records
    ]
    gpu = gpu_line(records)
    table = _md_table(header, rows) if rows else "No trials yet."
    return f"{table}\n\n{gpu.replace('gpu: ', 'GPU: ', 1)}." if gpu else table
