"""End of a sweep: the results table (best trial first), `results.json` / `results.csv`, and
the one-line overviews of `status` and `ls`.

Everything here is read from the store (`load_sweep`), so it is the same whether the sweep
just finished, was resumed, or is still running in another process.
"""

from __future__ import annotations

import csv
import fcntl
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from orchestrator.errors import UserError
from orchestrator.format import (
    STATE_STYLES,
    format_params,
    format_seconds,
    format_value,
    output_console,
)
from orchestrator.results import analysis
from orchestrator.results.sweep import (
    Sweep,
    flat_row,
    load_sweep,
    objective_columns,
    objective_labels,
)
from orchestrator.spec import load_spec
from orchestrator.store.compute import totals as compute_totals
from orchestrator.store.gpu_usage import compact, gpu_line
from orchestrator.store.journal import JOURNAL_NAME
from orchestrator.store.results import TrialResult
from orchestrator.store.sweep_file import LOCK_FILE, SWEEP_FILE


def write_results(
    run_dir: Path, trials: list[TrialResult], comparisons: dict[int, dict[str, Any]] | None = None
) -> tuple[Path, Path]:
    """Write `results.json` and `results.csv` (params as `param.<key>` columns, final metrics
    as `final.<key>`; with several metrics each as `objective.<name>`, and `pareto`). `comparisons` (`analysis.trial_comparisons`, an ablation sweep's or a
    seeded grid's) gives each compared trial its configuration's paired comparison with the
    reference: `comparison` in the JSON, `comparison.<key>` columns in the CSV."""
    comparisons = comparisons or {}
    json_path, csv_path = run_dir / "results.json", run_dir / "results.csv"
    records = [t.to_dict() | _comparison(comparisons, t.trial) for t in trials]
    json_path.write_text(json.dumps(records, indent=2, default=str))
    rows = [
        flat_row(t) | {f"comparison.{k}": v for k, v in comparisons.get(t.trial, {}).items()}
        for t in trials
    ]
    scalars = [k for k in rows[0] if "." not in k] if rows else []
    params = sorted({f"param.{k}" for t in trials for k in t.params})
    objectives = [f"objective.{k}" for k in objective_columns(trials)]
    finals = sorted({f"final.{k}" for t in trials for k in t.final_metrics})
    compared = list(dict.fromkeys(k for row in rows for k in row if k.startswith("comparison.")))
    with csv_path.open("w", newline="") as handle:
        fields = scalars + params + objectives + finals + compared
        writer = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return json_path, csv_path


def _trial_comparisons(sweep: Sweep) -> dict[int, dict[str, Any]]:
    """`analysis.trial_comparisons` of an ablation sweep or a seeded grid, {} for others. A
    spec copy that cannot be read gives {}: the trials' records are written all the same,
    and the report, which needs the spec too, says what is wrong with it."""
    if sweep.info.method not in ("ablation", "grid"):
        return {}
    try:
        spec = load_spec(sweep.info.spec_copy, sweep.info.spec_overrides)
    except UserError:
        return {}
    groups, comparisons = analysis.compared(spec, sweep)
    return analysis.trial_comparisons(groups, comparisons, sweep.metric)


def _comparison(comparisons: dict[int, dict[str, Any]], trial: int) -> dict[str, Any]:
    return {"comparison": comparisons[trial]} if trial in comparisons else {}


def results_table(
    name: str,
    metric: str,
    goal: str,
    trials: list[TrialResult],
    limit: int = 50,
    goals: Sequence[str] = (),
) -> Table:
    """The rich summary table: best trial first. With several metrics (a multi-objective
    sweep), a column per other metric and `pareto`, `*` for a trial on the Pareto front;
    `goals`: every metric's goal, in order, for the title."""
    others = objective_columns(trials)[1:]
    title = f"sweep {name}: " + ", ".join(
        [f"{metric} ({goal})"] + objective_labels(others, goals[1:])
    )
    if others:
        title += "; pareto: on the front (*)"
    table = Table(title=title)
    with_gpu = any(t.gpu_share for t in trials)  # a CPU sweep's table is unchanged
    columns = ("trial", "params", "state", metric, *others, *("pareto",) * bool(others))
    columns += ("best", "step", "elapsed", "reason") + ("gpu",) * with_gpu
    for column in columns:
        table.add_column(
            column, justify="left" if column in ("params", "reason") else "right", overflow="fold"
        )
    for result in trials[:limit]:
        style = STATE_STYLES.get(result.state, "")
        elapsed = result.elapsed_s
        table.add_row(
            str(result.trial),
            format_params(result.params),
            f"[{style}]{result.state}[/]" if style else result.state,
            format_value(result.value),
            *[format_value(result.objectives.get(other)) for other in others],
            *["*" if result.pareto else ""] * bool(others),
            format_value(result.best),
            format_value(result.last_step),
            format_seconds(elapsed) if elapsed is not None else "-",
            result.reason or "",
            *[compact(result)] * with_gpu,
        )
    return table


def summarize(run_dir: Path, console: Console | None = None) -> Sweep:
    """Write the results files of a sweep directory and print its summary table."""
    sweep = load_sweep(run_dir)
    json_path, csv_path = write_results(Path(run_dir), sweep.trials, _trial_comparisons(sweep))
    console = console or output_console()
    table = results_table(sweep.name, sweep.metric, sweep.goal, sweep.trials, goals=sweep.goals)
    console.print(table)
    failures = failure_line(sweep.trials)
    if failures:
        console.print(failures, markup=False, highlight=False, soft_wrap=True)
    console.print(compute_totals(sweep.trials).line(), markup=False, highlight=False)
    gpu = gpu_line(sweep.trials)
    if gpu:
        console.print(gpu, markup=False, highlight=False)
    console.print(f"results: {json_path} {csv_path}")
    return sweep


def failure_line(trials: list[TrialResult]) -> str | None:
    """`2 of 5 trials failed: diverged (1); ValueError: bad (1)`, or None when none failed."""
    reasons: dict[str, int] = {}
    for result in trials:
        if result.state == "fail":
            reason = (result.reason or "unknown").splitlines()[0][:120]
            reasons[reason] = reasons.get(reason, 0) + 1
    if not reasons:
        return None
    count = sum(reasons.values())
    said = "; ".join(
        f"{reason} ({n})" for reason, n in sorted(reasons.items(), key=lambda r: -r[1])
    )
    return f"{count} of {len(trials)} trials failed: {said}"


def controller_pid(run_dir: Path) -> int | None:
    """The pid of the controller running this sweep now, or None when none is."""
    lock_path = Path(run_dir) / LOCK_FILE
    if not lock_path.exists():
        return None
    with lock_path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            text = handle.read().strip()
            return int(text) if text.isdigit() else -1
        fcntl.flock(handle, fcntl.LOCK_UN)
    return None


def overview(run_dir: Path) -> dict[str, Any]:
    """Where one sweep stands, as JSON (`status --json`, and a service's answer): counts per
    state, the best trial, whether a controller runs it, and every trial's record. A sweep
    with no sweep file yet (its controller is setting it up) or no more (lost) has a
    `missing` line instead."""
    if not (Path(run_dir) / SWEEP_FILE).exists():
        return {"name": Path(run_dir).name, "run_dir": str(run_dir), "missing": _missing(run_dir)}
    sweep = load_sweep(run_dir)
    counts = sweep.counts()
    best = sweep.best
    return {
        "name": sweep.name,
        "run_dir": str(run_dir),
        "method": sweep.info.method,
        "metric": sweep.info.metric,
        "goal": sweep.goal,
        "goals": sweep.goals,
        "total": sweep.info.total,
        "finished": sum(counts.get(s, 0) for s in ("complete", "pruned", "fail")),
        "counts": counts,
        "best": best.to_dict() if best else None,
        "controller_pid": controller_pid(run_dir),
        "records": [t.to_dict() for t in sweep.trials],
    }


def _missing(run_dir: Path) -> str:
    """Why a folder that looks like a sweep has no sweep file, or a UserError if it is none."""
    pid = controller_pid(run_dir)
    if pid:
        return f"{Path(run_dir).name}  starting: controller pid {pid} is setting it up"
    if (Path(run_dir) / JOURNAL_NAME).exists():
        return (
            f"{Path(run_dir).name}  {SWEEP_FILE} is missing (its store {JOURNAL_NAME} is "
            f"there): run the sweep's spec again with --runs {Path(run_dir).parent} to "
            "rewrite it; no trial is lost"
        )
    if (Path(run_dir) / LOCK_FILE).exists():
        return f"{Path(run_dir).name}  never set up: its controller stopped before it wrote a store"
    raise UserError(f"{run_dir}: not a sweep directory (no {SWEEP_FILE})")


def overview_line(item: dict[str, Any]) -> str:
    """`name  method  finished/total  states  best  running-or-not` on one line."""
    counts = " ".join(f"{state}={n}" for state, n in sorted(item["counts"].items()))
    best = item["best"]
    best_text = (
        f"best {item['metric']}={format_value(best['value'])} (trial {best['trial']})"
        if best
        else "no result yet"
    )
    pid = item["controller_pid"]
    running = f"running (pid {pid})" if pid else "idle"
    left = sum(item["counts"].get(s, 0) for s in ("running", "queued"))
    if not pid and left and not item.get("job"):
        running = f"no controller: `orchestrate resume {item['run_dir']}` continues it"
    return (
        f"{item['name']}  {item['method']}  {item['finished']}/{item['total'] or '?'}  "
        f"{counts or 'no trials'}  {best_text}  {running}"
    )


def overview_table(item: dict[str, Any]) -> Table:
    """The results table of an overview (its records read back from JSON)."""
    trials = [TrialResult.from_dict(record) for record in item["records"]]
    metric = item.get("metric") or "value"
    goal, goals = item.get("goal", "minimize"), item.get("goals", ())
    return results_table(item["name"], metric, goal, trials, goals=goals)


def trial_detail(item: dict[str, Any], number: int) -> str:
    """One trial of an overview in full: every field of its record, its output log and its
    traceback (`status runs/<sweep> --trial N`)."""
    record = next((r for r in item["records"] if r["trial"] == number), None)
    if record is None:
        known = ", ".join(str(r["trial"]) for r in item["records"]) or "none yet"
        raise UserError(f"{item['run_dir']}: no trial {number} (trials: {known})")
    lines = [f"sweep {item['name']}, trial {number}"]
    for key, value in record.items():
        if key != "traceback" and value not in (None, {}, ""):
            lines.append(f"  {key}: {format_params(value) if key == 'params' else value}")
    log = Path(record["checkpoint_dir"] or "", "output.log")
    if record["checkpoint_dir"] and log.is_file():
        lines.append(f"  output: {log}")
    if record.get("traceback"):
        lines += ["traceback:", record["traceback"].rstrip()]
    return "\n".join(lines)
