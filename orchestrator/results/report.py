"""End of a sweep: the summary wandb run, the ablation or importance table, PNG plots and
`runs/<sweep>/report/report.md` that embeds them.

`write_report(run_dir)` runs at the end of every sweep and as `orchestrate report
runs/<sweep>`. Everything comes from the store (trial states, values, final metrics) and the
trials' JSONL mirrors (`runs/<sweep>/logs/<wandb run id>.jsonl`, for the curves; the store's
intermediate values stand in where a mirror is missing), so a report can be made again at
any time, also while the sweep still runs.

The summary run: one per sweep, id `<sweep uid>-summary`, job_type `sweep-summary`, in the
trials' project, group, mode and directory. It holds the results table (`results`), the best
trial (summary `best/*`), with several metrics the Pareto front (`pareto_front`, a table
and a summary key; `results.pareto`), one `ablation/<name>` table per ablation (each metric's means and
deltas, and its paired comparison with the baseline: CI, p-value, effect, verdict; see
`ablation_stats`), the same per point of a grid run with seeds (against its `baseline:`
point, else the best), and for sweeps other than ablations the `importance` table. The
comparisons are also written to `runs/<sweep>/ablations.json`, next to results.json (whose
trials carry their configuration's `comparison`), for scripts.
Making the report again continues the same run (`resume="allow"`): the tables are logged
again and the latest wins, so W&B shows one summary run per sweep, always the latest.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from orchestrator import store
from orchestrator.format import format_params, output_console
from orchestrator.results import analysis, pareto, plots
from orchestrator.results.ablation_stats import PairedComparison
from orchestrator.results.analysis import AblationGroup, Findings, Importance
from orchestrator.results.costs import compare_costs, cost_lines
from orchestrator.results.markdown import markdown
from orchestrator.results.sweep import Sweep, load_sweep
from orchestrator.spec import load_spec
from orchestrator.spec.model import SweepSpec
from orchestrator.store.gpu_usage import gpu_totals
from orchestrator.store.results import TrialResult
from orchestrator.store.sweep_file import SweepFile
from orchestrator.tracking.history import jsonl_history
from orchestrator.tracking.keys import wandb_key
from orchestrator.tracking.logger import ExperimentLogger

REPORT_DIR = "report"
ABLATIONS_FILE = "ablations.json"


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
    metric = info.metric_name
    console = console or output_console()
    asked = spec.wandb.mode
    spec, unreachable = spec.with_reachable_wandb(run_dir)  # (the controller said so already)

    found = Findings(spec, sweep)
    with summary_run(info, spec, run_dir) as logger:
        log_results(logger, records, metric)
        pareto.log_front(logger, sweep)  # several metrics: the Pareto front
        logger.set_summary(compute=store.compute_totals(records).to_dict())
        found.groups, found.comparisons = analysis.compared(spec, sweep)
        if found.groups:
            found.costs = compare_costs(found.groups, records)
            found.rows = log_ablations(logger, found.groups, found.comparisons, metric)
        if spec.method != "ablation":
            found.importance = analysis.param_importance(spec, records)
            log_importance(logger, found.importance)
        run_id = logger.run_id

    importance = found.importance
    if found.groups:
        console.print(analysis.ablation_table(found))
        console.print("\n".join(cost_lines(found.costs)), markup=False, highlight=False)
        write_ablations(run_dir / ABLATIONS_FILE, found)
    if importance and importance.values:
        console.print(analysis.importance_table(importance))
    elif importance:
        console.print(f"parameter importance: skipped ({importance.skipped})")

    out = run_dir / REPORT_DIR
    out.mkdir(parents=True, exist_ok=True)  # also when there is no plot to draw
    images = draw(found, out)
    path = out / "report.md"
    path.write_text(markdown(found, images, run_id))
    mode = f"offline: {asked} asked, the server cannot be reached" if unreachable else asked
    console.print(f"report: {path}  summary run: {run_id} ({mode})")
    return Report(path, [p for p in images.values() if p], run_id, found.rows, importance)


def try_write_report(run_dir: Path, sweep: Sweep | None = None) -> str | None:
    """`write_report`, with a place it cannot write (a full disk, a folder it may not write)
    as the one line to tell instead of a traceback; None when the report was written. The
    trials' records are in the store (and results.json) before the report is begun, so they
    stay whole, and `orchestrate report` makes the report again once there is room."""
    try:
        write_report(run_dir, sweep)
    except OSError as error:
        where = error.filename or Path(run_dir) / REPORT_DIR
        return (
            f"report not written: {where}: {error.strerror or error}; the trials' records "
            f"are intact; once it can be written, `orchestrate report {run_dir}`"
        )
    return None


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
        config={
            "sweep": {**sweep, "uid": uid},
            "spec": spec.model_dump(mode="json"),
            **versions_config(info),
        },
        tags=[name, spec.method, "sweep-summary", *spec.wandb.tags],
        group=spec.wandb.group or name,
        job_type="sweep-summary",
        mode=spec.wandb.mode,
        dir=run_dir,
        run_id=f"{uid}-summary",
        resume="allow",
        entity=spec.wandb.entity,
    )


def versions_config(info: SweepFile) -> dict[str, Any]:
    """The versions the results were made with (`store.versions`): those the sweep started
    with, and its latest start's when they differ; this process's for a sweep recorded
    before versions were."""
    config = {"versions": info.versions or store.versions.current(info.storage)}
    if info.resumed_versions:
        config["resumed_versions"] = info.resumed_versions
    return config


def log_results(logger: ExperimentLogger, records: list[TrialResult], metric: str) -> None:
    """The results table (best first) and the best trial, counts per state, in the summary."""
    params = list(dict.fromkeys(k for r in records for k in r.params))
    finals = list(dict.fromkeys(k for r in records for k in analysis.numeric(r.final_metrics)))
    columns = ["trial", "state", metric, "best", "step", "elapsed_s", "retries", "reason"]
    columns += ["wandb_run", "gpu_device", "gpu_share", *params, *(f"final/{k}" for k in finals)]
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
            r.gpu_device,
            r.gpu_share,
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
    if gpu_totals(records):
        values["gpu"] = gpu_totals(records)  # GPU-hours, devices, mean MFU (store.gpu_usage)
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
    logger: ExperimentLogger,
    groups: list[AblationGroup],
    comparisons: dict[str, dict[str, PairedComparison]],
    metric: str,
) -> dict[str, list[dict[str, Any]]]:
    """One `log_hyperparameter_ablation` per ablation against the baseline, each metric's
    paired comparison (`analysis.compare`) as more columns of its row; returns the rows."""
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
            {m: ablated(group, m, comparisons[group.name].get(m)) for m in metrics},
            config,
        )
    return rows


def ablated(
    group: AblationGroup, metric: str, comparison: PairedComparison | None
) -> dict[str, Any]:
    """An ablated metric as `log_hyperparameter_ablation` takes it: mean, std, and its paired
    comparison's columns (none for `diverged`, which is a fraction, not a value per seed)."""
    mean, std = group.stats(metric)
    return {"mean": mean, "std": std, **(comparison.columns() if comparison else {})}


def write_ablations(path: Path, found: Findings) -> None:
    """`ablations.json`: per ablation its changes, seeds' status and every metric's row as the
    summary run logged it (means, deltas, CI, p-value, effect, verdict)."""
    info = found.sweep.info
    ablations = [
        {
            "name": group.name,
            "changes": group.changes,
            "seeds": group.seeds,
            "status": group.status(),
            "metrics": found.rows.get(group.name, []),
            "compute": asdict(found.costs.arms[group.name]) if found.costs else None,
        }
        for group in found.groups
    ]
    document = {"sweep": info.name, "metric": info.metric_name, "goal": info.goal}
    document["against"] = found.groups[0].name
    document["adaptive_rounds"] = [r.to_dict() for r in found.sweep.rounds]
    document["cost"] = found.costs.to_dict() if found.costs else None
    document["compute"] = store.compute_totals(found.sweep.trials).to_dict()
    text = json.dumps({**document, "ablations": ablations}, indent=2, default=str)
    path.write_text(text + "\n")


def log_importance(logger: ExperimentLogger, importance: Importance) -> None:
    if importance.skipped:
        logger.set_summary(importance_skipped=importance.skipped)
        return
    logger.log_table("importance", ["parameter", "importance"], importance.values.items())
    logger.set_summary(importance=importance.values, importance_warning=importance.warning)


# --- plots ---------------------------------------------------------------------------------


def trial_curves(
    info: SweepFile, records: list[TrialResult], metric: str, spec: SweepSpec | None = None
) -> list[plots.Curve]:
    """Each trial's metric over steps and seconds, from its JSONL mirror (else the store),
    ordered (coloured) by the first numeric swept parameter when there is one."""
    key = wandb_key(metric)
    swept = analysis.swept_params(records)
    by = next((k for k in swept if all(analysis.is_number(r.params.get(k)) for r in records)), None)
    values = [r.params[by] for r in records] if by else []
    log = bool(by and spec and analysis.is_log_scaled(spec, by, values))
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
        order = record.params.get(by) if by else None
        curves.append(plots.Curve(label, record.state, steps, seconds, values, order, by, log))
    return curves


def _jsonl_curve(run_dir: Path, run_id: str | None, key: str) -> tuple[list, list, list]:
    """Steps, seconds and values of `key` in a trial's JSONL mirror, each step once."""
    rows = jsonl_history(run_dir / "logs" / f"{run_id}.jsonl") if run_id else []
    rows = [row for row in rows if key in row]
    return [r["step"] for r in rows], [r.get("elapsed_s") for r in rows], [r[key] for r in rows]


def draw(found: Findings, out: Path) -> dict[str, Path | None]:
    """Every figure of the report, by title; None where there was nothing to draw."""
    spec, info, records = found.spec, found.sweep.info, found.sweep.trials
    groups, importance = found.groups, found.importance
    metric, goal, name = info.metric_name, info.goal, info.name
    images: dict[str, Path | None] = {"Pareto front": pareto.plot_front(found.sweep, out)}
    curves = trial_curves(info, records, metric, spec)
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
    swept = analysis.swept_params(records)
    if len(swept) >= 3:
        rows = [{"params": r.params, "value": _final(r), "state": r.state} for r in records]
        seen = {p: [r.params.get(p) for r in records] for p in swept}
        log = {p: analysis.is_log_scaled(spec, p, values) for p, values in seen.items()}
        images["parallel coordinates"] = plots.plot_parallel(
            rows, swept, log, metric, goal, out / "parallel_coordinates.png"
        )
    if groups:
        entries = ablation_plot_entries(found, metric, goal)
        images[f"{found.kind} forest plot"] = plots.plot_ablation_forest(
            entries, metric, goal, found.groups[0].name, out / "ablation_forest.png"
        )
    if importance and importance.values:
        title = f"{name}: parameter importance ({importance.evaluator})"
        title += f"\nwarning: {importance.warning}" if importance.warning else ""
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


def ablation_plot_entries(found: Findings, metric: str, goal: str) -> list[dict[str, Any]]:
    """The ablations best first, for the forest plot: the paired Δ, its CI and verdict, each
    seed's paired Δ, and a note of the seeds that diverged or failed."""
    baseline = found.groups[0].by_seed.get(metric, {})
    entries = []
    for group in analysis.ranked(found.groups[1:], metric, goal):
        comparison = found.comparisons[group.name][metric]
        missing = [(group.diverged, "diverged"), (group.failed, "failed")]
        note = ", ".join(f"{n}/{len(group.seeds)} {word}" for n, word in missing if n)
        ablated = group.by_seed.get(metric, {})
        entries.append(
            {
                "name": group.name,
                "delta": comparison.mean_diff,
                "ci_low": comparison.ci_low,
                "ci_high": comparison.ci_high,
                "verdict": comparison.verdict,
                "seed_deltas": [v - baseline[s] for s, v in ablated.items() if s in baseline],
                "note": note,
            }
        )
    return entries
