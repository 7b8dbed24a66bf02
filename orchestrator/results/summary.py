"""End of a sweep: the results table (best trial first) and `results.json` / `results.csv`.

Everything here is read from the store, so it is the same whether the sweep just finished,
was resumed, or is still running in another process.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from orchestrator.run.display import STATE_STYLES, format_params, format_seconds, format_value
from orchestrator.store import trials as store

STATE_ORDER = {"complete": 0, "running": 1, "interrupted": 2, "pruned": 3, "fail": 4}


def result_records(info: dict[str, Any]) -> list[dict[str, Any]]:
    """One flat record per trial of the sweep described by `info` (its sweep file), best first."""
    study = store.load_study(info)
    goal = info.get("goal", "minimize")
    records = []
    for row in store.trial_rows(study, goal):
        attrs = row.attrs
        started, ended = attrs.get("started_at"), attrs.get("ended_at")
        records.append(
            {
                "trial": row.number,
                "state": row.state,
                "params": row.params,
                "value": row.value,
                "best": row.best,
                "last_step": row.last_step,
                "reason": row.reason,
                "final_metrics": attrs.get("final_metrics", {}),
                "wandb_run": attrs.get("wandb_run_path") or attrs.get("wandb_run_id"),
                "wandb_dir": attrs.get("wandb_dir"),
                "checkpoint_dir": attrs.get("checkpoint_dir"),
                "node": attrs.get("node"),
                "retries": attrs.get("retries", 0),
                "plan_index": attrs.get("plan_index"),
                "started_at": started,
                "ended_at": ended,
                "elapsed_s": round(ended - started, 3) if started and ended else None,
            }
        )
    sign = 1 if goal == "minimize" else -1

    def rank(record: dict[str, Any]) -> tuple:
        value = record["value"] if record["value"] is not None else record["best"]
        missing = value is None or not math.isfinite(value)
        return (STATE_ORDER.get(record["state"], 5), missing, sign * (value or 0.0))

    return sorted(records, key=rank)


def write_results(run_dir: Path, records: list[dict[str, Any]]) -> tuple[Path, Path]:
    """Write `results.json` and `results.csv` (params flattened to `param.<key>` columns)."""
    json_path, csv_path = run_dir / "results.json", run_dir / "results.csv"
    json_path.write_text(json.dumps(records, indent=2, default=str))
    param_keys = sorted({key for record in records for key in record["params"]})
    metric_keys = sorted({key for record in records for key in record["final_metrics"]})
    scalar_keys = [k for k in records[0] if k not in ("params", "final_metrics")] if records else []
    with csv_path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            scalar_keys + [f"param.{k}" for k in param_keys] + [f"final.{k}" for k in metric_keys]
        )
        for record in records:
            writer.writerow(
                [record[k] for k in scalar_keys]
                + [record["params"].get(k) for k in param_keys]
                + [record["final_metrics"].get(k) for k in metric_keys]
            )
    return json_path, csv_path


def results_table(info: dict[str, Any], records: list[dict[str, Any]], limit: int = 50) -> Table:
    """The rich summary table: best trial first."""
    metric = info.get("metric") or "value"
    table = Table(title=f"sweep {info['name']}: {metric} ({info.get('goal', 'minimize')})")
    for column in ("trial", "params", "state", metric, "best", "step", "elapsed", "reason"):
        table.add_column(column, justify="left" if column in ("params", "reason") else "right")
    for record in records[:limit]:
        style = STATE_STYLES.get(record["state"], "")
        elapsed = record["elapsed_s"]
        table.add_row(
            str(record["trial"]),
            format_params(record["params"], 60),
            f"[{style}]{record['state']}[/]" if style else record["state"],
            format_value(record["value"]),
            format_value(record["best"]),
            format_value(record["last_step"]),
            format_seconds(elapsed) if elapsed is not None else "-",
            (record["reason"] or "")[:60],
        )
    return table


def summarize(run_dir: Path, console: Console | None = None) -> list[dict[str, Any]]:
    """Write the results files of a sweep directory and print its summary table."""
    info = store.read_sweep_file(run_dir)
    records = result_records(info)
    json_path, csv_path = write_results(Path(run_dir), records)
    console = console or Console()
    console.print(results_table(info, records))
    console.print(f"results: {json_path} {csv_path}")
    return records


def sweep_dirs(root: Path) -> list[Path]:
    """Every sweep directory under `root` (those holding a sweep file), by name."""
    return sorted(p.parent for p in Path(root).glob(f"*/{store.SWEEP_FILE}"))


def controller_pid(run_dir: Path) -> int | None:
    """The pid of the controller running this sweep now, or None when none is."""
    import fcntl

    lock_path = Path(run_dir) / "controller.lock"
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
    """Where one sweep stands: counts per state, best trial, whether a controller runs it."""
    info = store.read_sweep_file(run_dir)
    records = result_records(info)
    counts: dict[str, int] = {}
    for record in records:
        counts[record["state"]] = counts.get(record["state"], 0) + 1
    complete = [r for r in records if r["state"] == "complete"]
    finished = sum(counts.get(s, 0) for s in ("complete", "pruned", "fail"))
    return {
        "name": info["name"],
        "run_dir": str(run_dir),
        "method": info.get("method"),
        "metric": info.get("metric"),
        "goal": info.get("goal", "minimize"),
        "total": info.get("total"),
        "finished": finished,
        "counts": counts,
        "best": complete[0] if complete else None,
        "controller_pid": controller_pid(run_dir),
        "records": records,
    }


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
    return (
        f"{item['name']}  {item['method']}  {item['finished']}/{item['total'] or '?'}  "
        f"{counts or 'no trials'}  {best_text}  {running}"
    )
