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
from orchestrator.format import format_params
from orchestrator.results import analysis, plots
from orchestrator.results.analysis import AblationGroup, Findings, Importance
from orchestrator.results.markdown import markdown
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

    found = Findings(spec, sweep)
    with summary_run(info, spec, run_dir) as logger:
        log_results(logger, records, metric)
        if spec.method == "ablation":
            found.groups = analysis.ablation_groups(spec, records, metric)
            found.rows = log_ablations(logger, found.groups, metric)
        else:
            found.importance = analysis.param_importance(spec, records)
            log_importance(logger, found.importance)
        run_id = logger.run_id

    importance = found.importance
    if found.groups:
        console.print(analysis.ablation_table(found.groups, found.rows, metric, goal))
    elif importance and importance.values:
        console.print(analysis.importance_table(importance))
    elif importance:
        console.print(f"parameter importance: skipped ({importance.skipped})")

    out = run_dir / REPORT_DIR
    out.mkdir(parents=True, exist_ok=True)  # also when there is no plot to draw
    images = draw(found, out)
    path = out / "report.md"
    path.write_text(markdown(found, images, run_id))
    console.print(f"report: {path}  summary run: {run_id} ({spec.wandb.mode})")
    return Report(path, [p for p in images.values() if p], run_id, found.rows, importance)


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


def draw(found: Findings, out: Path) -> dict[str, Path | None]:
    """Every figure of the report, by title; None where there was nothing to draw."""
    spec, info, records = found.spec, found.sweep.info, found.sweep.trials
    groups, rows, importance = found.groups, found.rows, found.importance
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
