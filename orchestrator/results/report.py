"""End of a sweep: the summary wandb run, the ablation or importance table, PNG plots and
`runs/<sweep>/report/report.md` that embeds them.

`write_report(run_dir)` runs at the end of every sweep and as `orchestrate report
runs/<sweep>`. Everything comes from the store (trial states, values, final metrics) and the
trials' JSONL mirrors (`runs/<sweep>/logs/<wandb run id>.jsonl`, for the curves; the store's
intermediate values stand in where a mirror is missing), so a report can be made again at
any time, also while the sweep still runs.

The summary run: one per sweep, id `<sweep uid>-summary`, job_type `sweep-summary`, in the
trials' project, group, mode and directory. It holds the results table (`results`), the best
trial (summary `best/*`), one `ablation/<name>` table per ablation or the `importance` table.
Making the report again continues the same run (`resume="allow"`): the tables are logged
again and the latest wins, so W&B shows one summary run per sweep, always the latest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from orchestrator import store
from orchestrator.format import format_params, format_seconds, format_value
from orchestrator.results import analysis, plots
from orchestrator.results.analysis import AblationGroup, Importance
from orchestrator.results.sweep import Sweep, load_sweep
from orchestrator.spec import load_spec
from orchestrator.spec.model import SweepSpec
from orchestrator.store.results import TrialResult
from orchestrator.store.sweep_file import SweepFile
from orchestrator.tracking.history import jsonl_history
from orchestrator.tracking.keys import wandb_key
from orchestrator.tracking.logger import ExperimentLogger

REPORT_DIR = "report"


@dataclass
class Report:
    """What `write_report` made."""

    path: Path  # report.md
    images: list[Path]
    summary_run_id: str
    ablations: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # logged rows
    importance: Importance | None = None


def write_report(
    run_dir: Path, sweep: Sweep | None = None, console: Console | None = None
) -> Report:
    """Log the summary run, print the ablation or importance table, write plots and report.md.

    `sweep` is the sweep's `load_sweep(run_dir)` when the caller has it already.
    """
    run_dir = Path(run_dir)
    sweep = load_sweep(run_dir) if sweep is None else sweep
    info, records = sweep.info, sweep.trials
    spec = load_spec(info.spec_copy, info.spec_overrides)
    metric, goal = info.metric_name, info.goal
    console = console or Console()

    groups: list[AblationGroup] = []
    rows: dict[str, list[dict[str, Any]]] = {}
    importance = None
    with summary_run(info, spec, run_dir) as logger:
        log_results(logger, records, metric)
        if spec.method == "ablation":
            groups = analysis.ablation_groups(spec, records, metric)
            rows = log_ablations(logger, groups, metric)
        else:
            importance = analysis.param_importance(spec, records)
            log_importance(logger, importance)
        run_id = logger.run_id

    if groups:
        console.print(analysis.ablation_table(groups, rows, metric, goal))
    elif importance and importance.values:
        console.print(analysis.importance_table(importance))
    elif importance:
        console.print(f"parameter importance: skipped ({importance.skipped})")

    out = run_dir / REPORT_DIR
    images = draw(spec, info, records, groups, rows, importance, out)
    path = out / "report.md"
    path.write_text(markdown(spec, info, records, groups, rows, importance, images, run_id))
    console.print(f"report: {path}  summary run: {run_id} ({spec.wandb.mode})")
    return Report(path, [p for p in images.values() if p], run_id, rows, importance)


# --- the summary run -----------------------------------------------------------------------


def summary_run(info: SweepFile, spec: SweepSpec, run_dir: Path) -> ExperimentLogger:
    """The sweep's summary run, continued when it exists (see the module docstring)."""
    name = info.name
    uid = info.uid or name
    sweep = {
        k: getattr(info, k) for k in ("name", "method", "metric", "goal", "total", "spec_hash")
    }
    return ExperimentLogger(
        project_name=spec.wandb.project or "orchestrate",
        experiment_name=f"{name}-summary",
        config={"sweep": {**sweep, "uid": uid}, "spec": spec.model_dump(mode="json")},
        tags=[name, spec.method, "sweep-summary", *spec.wandb.tags],
        group=spec.wandb.group or name,
        job_type="sweep-summary",
        mode=spec.wandb.mode,
        dir=run_dir,
        run_id=f"{uid}-summary",
        resume="allow",
        entity=spec.wandb.entity,
    )


def log_results(logger: ExperimentLogger, records: list[TrialResult], metric: str) -> None:
    """The results table (best first) and the best trial, counts per state, in the summary."""
    params = list(dict.fromkeys(k for r in records for k in r.params))
    finals = list(dict.fromkeys(k for r in records for k in analysis.numeric(r.final_metrics)))
    columns = ["trial", "state", metric, "best", "step", "elapsed_s", "retries", "reason"]
    columns += ["wandb_run", *params, *(f"final/{k}" for k in finals)]
    data = [
        [
            r.trial,
            r.state,
            r.value,
            r.best,
            r.last_step,
            r.elapsed_s,
            r.retries,
            r.reason,
            r.wandb_run,
            *(r.params.get(k) for k in params),
            *(r.final_metrics.get(k) for k in finals),
        ]
        for r in records
    ]
    logger.log_table("results", columns, data)
    counts: dict[str, int] = {}
    for record in records:
        counts[record.state] = counts.get(record.state, 0) + 1
    values: dict[str, Any] = {"trials": counts}
    best = next((r for r in records if r.state == "complete"), None)
    if best is not None:
        values["best"] = {
            "trial": best.trial,
            metric: best.value,
            "params": best.params,
            "wandb_run": best.wandb_run,
            "final": analysis.numeric(best.final_metrics),
        }
    logger.set_summary(**values)


def log_ablations(
    logger: ExperimentLogger, groups: list[AblationGroup], metric: str
) -> dict[str, list[dict[str, Any]]]:
    """One `log_hyperparameter_ablation` per ablation against the baseline; returns its rows."""
    baseline, ablations = groups[0], groups[1:]
    metrics = analysis.ablation_metrics(metric, groups)
    rows = {}
    for group in ablations:
        config = {
            "changes": group.changes,
            "seeds": group.seeds,
            "trials": group.trials,
            "status": group.status(),
            "baseline_status": baseline.status(),
        }
        rows[group.name] = logger.log_hyperparameter_ablation(
            group.name,
            {m: baseline.stats(m) for m in metrics},
            {m: group.stats(m) for m in metrics},
            config,
        )
    return rows


def log_importance(logger: ExperimentLogger, importance: Importance) -> None:
    if importance.skipped:
        logger.set_summary(importance_skipped=importance.skipped)
        return
    logger.log_table("importance", ["parameter", "importance"], importance.values.items())
    logger.set_summary(importance=importance.values)


# --- plots ---------------------------------------------------------------------------------


def trial_curves(info: SweepFile, records: list[TrialResult], metric: str) -> list[plots.Curve]:
    """Each trial's metric over steps and seconds, from its JSONL mirror (else the store)."""
    key = wandb_key(metric)
    swept = analysis.swept_params(records)
    intermediate = None
    curves = []
    for record in records:
        steps, seconds, values = _jsonl_curve(Path(info.run_dir), record.wandb_run, key)
        if not values:
            if intermediate is None:
                study = store.load_study(info)
                intermediate = {t.number: t.intermediate_values for t in study.get_trials()}
            points = sorted(intermediate.get(record.trial, {}).items())
            steps, values = [s for s, _ in points], [v for _, v in points]
            seconds = [None] * len(points)
        ablation = record.params.get("ablation")
        label = ablation or f"#{record.trial} " + format_params(
            {k: record.params[k] for k in swept if k in record.params}, 40
        )
        curves.append(plots.Curve(label, record.state, steps, seconds, values))
    return curves


def _jsonl_curve(run_dir: Path, run_id: str | None, key: str) -> tuple[list, list, list]:
    """Steps, seconds and values of `key` in a trial's JSONL mirror, each step once."""
    rows = jsonl_history(run_dir / "logs" / f"{run_id}.jsonl") if run_id else []
    rows = [row for row in rows if key in row]
    return [r["step"] for r in rows], [r.get("elapsed_s") for r in rows], [r[key] for r in rows]


def draw(
    spec: SweepSpec,
    info: SweepFile,
    records: list[TrialResult],
    groups: list[AblationGroup],
    rows: dict[str, list[dict[str, Any]]],
    importance: Importance | None,
    out: Path,
) -> dict[str, Path | None]:
    """Every figure of the report, by title; None where there was nothing to draw."""
    metric, goal, name = info.metric_name, info.goal, info.name
    images: dict[str, Path | None] = {}
    curves = trial_curves(info, records, metric)
    for x, label in (("step", "steps"), ("seconds", "wall-clock")):
        images[f"{metric} vs {label}"] = plots.plot_curves(
            curves, x, metric, f"{name}: {metric} vs {label}", out / f"curves_{x}.png"
        )
    for param in analysis.swept_params(records):
        points = [(r.params[param], _final(r), r.state) for r in records if param in r.params]
        log_x = analysis.is_log_scaled(spec, param, [v for v, _, _ in points])
        images[f"{metric} vs {param}"] = plots.plot_metric_vs_param(
            points, param, metric, log_x, out / f"{metric}_vs_{_file_name(param)}.png"
        )
    if groups:
        entries = ablation_plot_entries(groups, rows, metric, goal)
        images["ablation deltas"] = plots.plot_ablation_deltas(
            entries, metric, goal, out / "ablation_deltas.png"
        )
    if importance and importance.values:
        title = f"{name}: parameter importance ({importance.evaluator})"
        images["parameter importance"] = plots.plot_importance(
            importance.values, title, out / "importance.png"
        )
    return images


def _final(record: TrialResult) -> float | None:
    """A trial's point in a parameter plot: its value, a stopped trial's best, none if failed."""
    if record.state == "complete":
        return record.value
    return None if record.state == "fail" else record.best


def _file_name(text: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in text)


def ablation_plot_entries(
    groups: list[AblationGroup], rows: dict[str, list[dict[str, Any]]], metric: str, goal: str
) -> list[dict[str, Any]]:
    """The ablations best first, with their delta, its std, each seed's delta and a note."""
    base_mean = groups[0].stats(metric)[0]
    entries = []
    for group in analysis.ranked(groups[1:], metric, goal):
        row = next(r for r in rows[group.name] if r["metric"] == metric)
        missing = [(group.diverged, "diverged"), (group.failed, "failed")]
        note = ", ".join(f"{n}/{len(group.seeds)} {word}" for n, word in missing if n)
        entries.append(
            {
                "name": group.name,
                "delta": row["abs_delta"],
                "delta_std": row["delta_std"],
                "seed_deltas": [v - base_mean for v in group.values.get(metric, [])],
                "note": note,
            }
        )
    return entries


# --- report.md -----------------------------------------------------------------------------


def _md_table(header: list[str], rows: list[list[Any]]) -> str:
    def cell(value: Any) -> str:
        text = value if isinstance(value, str) else format_value(value)
        return text.replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def markdown(
    spec: SweepSpec,
    info: SweepFile,
    records: list[TrialResult],
    groups: list[AblationGroup],
    rows: dict[str, list[dict[str, Any]]],
    importance: Importance | None,
    images: dict[str, Path | None],
    run_id: str,
) -> str:
    """The report as Markdown, images referenced next to it."""
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
            f"{format_params(best.params, 200) or 'no parameters'} "
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
                format_params(group.changes, 80) or "-",
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
            format_params(r.params, 80) or "-",
            r.value,
            r.best,
            r.last_step,
            format_seconds(r.elapsed_s) if r.elapsed_s is not None else "-",
            (r.reason or "")[:80],
        ]
        for r in records
    ]
    return _md_table(header, rows) if rows else "No trials yet."
