"""Several metrics (`metrics:`): a multi-objective study and its Pareto front in every record.

Real sweeps (real Ray, a real Optuna journal, wandb offline read back from its `.wandb`
files) of `sweep_programs.trade_off`: `loss = x + y` (minimize) against `speed = 10 * (x - y)`
(maximize). The expected front is computed here from the store's values, by the definition
(no other complete trial at least as good on both metrics and better on one), not by Optuna.
"""

from __future__ import annotations

import csv
import json

import pytest
from conftest import trials_of, write_spec

from orchestrator import cli, store
from orchestrator.tracking.wandb_records import read_run_history

GRID = """
    name: front
    method: grid
    program: sweep_programs:trade_off
    metrics:
      - {name: loss, goal: minimize}
      - {name: speed, goal: maximize}
    parameters:
      x: {values: [0.0, 0.5, 1.0]}
      y: {values: [0.0, 1.0]}
"""

BAYES = """
    name: front
    method: bayes
    program: sweep_programs:trade_off
    run_cap: 8
    metrics:
      - {name: loss, goal: minimize}
      - {name: speed, goal: maximize}
    parameters:
      x: {min: 0.0, max: 1.0}
      y: {values: [0.0, 0.5, 1.0]}
"""


def non_dominated(points: dict[int, tuple[float, float]]) -> set[int]:
    """Trials no other trial matches or beats on loss (down) and speed (up), beating on one."""

    def dominates(a: tuple[float, float], b: tuple[float, float]) -> bool:
        return a[0] <= b[0] and a[1] >= b[1] and (a[0] < b[0] or a[1] > b[1])

    return {n for n, p in points.items() if not any(dominates(q, p) for q in points.values())}


@pytest.mark.parametrize("text", [GRID, BAYES], ids=["grid", "bayes"])
def test_a_sweep_with_two_metrics_records_its_pareto_front_everywhere(
    local_ray, tmp_path, capsys, monkeypatch, text
):
    monkeypatch.delenv("COLUMNS", raising=False)  # piped: one line per trial, at any width
    spec_path = write_spec(tmp_path, text)
    assert cli.main(["run", str(spec_path), "--runs", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    run_dir = tmp_path / "runs" / "front"
    info = store.read_sweep_file(run_dir)

    # The store: a study with both directions, each trial's two values as the program gave.
    study = store.load_study(info)
    assert [d.name for d in study.directions] == ["MINIMIZE", "MAXIMIZE"]
    assert study.metric_names == ["loss", "speed"]
    trials = trials_of(run_dir)
    assert len(trials) == (6 if "grid" in text else 8)
    points = {}
    for trial in trials:
        x, y = trial.params["x"], trial.params["y"]
        assert trial.state.name == "COMPLETE"
        assert trial.values == pytest.approx([x + y, 10 * (x - y)])
        assert trial.intermediate_values[3] == pytest.approx(x + y)  # the first metric's curve
        points[trial.number] = tuple(trial.values)
    front = non_dominated(points)
    assert front == {t.number for t in trials if t.params["y"] == 0.0}  # y > 0 loses on both
    assert front  # the bayes run searched y = 0 too

    # results.json and results.csv: each metric, and whether the trial is on the front.
    records = json.loads((run_dir / "results.json").read_text())
    assert {r["trial"]: r["pareto"] for r in records} == {n: n in front for n in points}
    for record in records:
        assert record["objectives"] == pytest.approx(
            dict(zip(("loss", "speed"), points[record["trial"]], strict=True))
        )
        assert record["value"] == pytest.approx(points[record["trial"]][0])
    assert [r["trial"] for r in records][: len(front)] == sorted(front, key=lambda n: points[n][0])
    with (run_dir / "results.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert {"objective.loss", "objective.speed", "pareto"} <= set(rows[0])
    for row in rows:
        assert float(row["objective.speed"]) == pytest.approx(points[int(row["trial"])][1])
        assert row["pareto"] == str(int(row["trial"]) in front)

    # The terminal table: both metrics in the title, a star for each trial on the front.
    assert "sweep front: loss (minimize), speed (maximize); pareto: on the front (*)" in out
    table_rows = [line for line in out.splitlines() if line.count("│") > 5]
    starred = {
        int(cells[1]) for cells in (line.split("│") for line in table_rows) if "*" in cells[6]
    }
    assert starred == front

    # The summary run: its `pareto_front` table and summary key, read back from `.wandb`.
    run = read_run_history(run_dir / "wandb", f"{info.uid}-summary")
    logged = run.table("pareto_front")
    assert [row["trial"] for row in logged] == sorted(front, key=lambda n: points[n][0])
    for row in logged:
        assert (row["loss"], row["speed"]) == pytest.approx(points[row["trial"]])
    assert sorted(run.summary["pareto_front"]["trials"]) == sorted(front)
    assert run.summary["pareto_front"]["complete"] == len(points)

    # report.md says it, and its plot is drawn.
    report_dir = run_dir / "report"
    text_md = (report_dir / "report.md").read_text()
    assert "## Pareto front" in text_md
    assert f"{len(front)} of {len(points)} complete trials on the front" in text_md
    assert "](pareto_front.png)" in text_md
    assert (report_dir / "pareto_front.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # What makes the trials what they are includes the metrics: a rerun that changes a goal
    # is refused before anything runs, naming the key, and the store keeps its story.
    spec_path.write_text(spec_path.read_text().replace("goal: maximize", "goal: minimize"))
    assert cli.main(["run", str(spec_path), "--runs", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert "metrics[1].goal: 'maximize' -> 'minimize': changed since" in err, err
    assert [t.values for t in trials_of(run_dir)] == [list(points[t.number]) for t in trials]
