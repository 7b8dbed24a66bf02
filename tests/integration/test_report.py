"""End of a sweep: the summary wandb run, ablation deltas, importance, plots and report.md.

Real sweeps (real Ray, real Optuna journal, wandb offline read back from its `.wandb` files)
of the tiny programs in sweep_programs.py; expected numbers are computed from the store.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest
from conftest import trials_of, write_spec
from scipy import stats as scipy_stats

from orchestrator import cli, store
from orchestrator.results import report
from orchestrator.spec import load_spec
from orchestrator.store import TrialResult
from orchestrator.tracking.wandb_records import find_run_files, read_run_history

ABLATION = """
    name: abl
    method: ablation
    program: sweep_programs:seeded_loss
    metric: {name: loss, goal: minimize}
    seeds: 2
    baseline: {x: 1.0, steps: 3}
    ablations:
      bigger_x: {x: 3.0, seed_effect: 0.3}
      unstable: {x: 0.5, diverge_seed: 1}
"""

RANDOM = """
    name: rnd
    method: random
    program: sweep_programs:noop
    metric: {name: loss, goal: minimize}
    run_cap: 8
    wandb: {mode: disabled}
    parameters:
      x: {distribution: log_uniform_values, min: 0.01, max: 100}
      y: {min: 0.0, max: 1.0}
"""


def expected_ablation_stats(run_dir: Path) -> dict[str, dict]:
    """Per plan point, from the store: complete values of loss (also by seed) and accuracy,
    diverged count."""
    groups: dict[str, dict] = {}
    for trial in trials_of(run_dir):
        group = groups.setdefault(
            trial.params["ablation"],
            {"loss": [], "by_seed": {}, "accuracy": [], "diverged": 0, "seeds": 0},
        )
        group["seeds"] += 1
        if trial.state.name == "COMPLETE":
            group["loss"].append(trial.value)
            group["by_seed"][trial.params["seed"]] = trial.value
            group["accuracy"].append(trial.user_attrs["final_metrics"]["accuracy"])
        elif trial.user_attrs.get("failure_reason") == "diverged":
            group["diverged"] += 1
    return groups


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def test_ablation_sweep_ends_with_summary_run_tables_and_report(
    local_ray, tmp_path, capsys, monkeypatch
):
    monkeypatch.delenv("COLUMNS", raising=False)  # piped: one line per ablation, at any width
    spec_path = write_spec(tmp_path, ABLATION)
    assert cli.main(["run", str(spec_path), "--runs", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    run_dir = tmp_path / "runs" / "abl"
    info = store.read_sweep_file(run_dir)
    stats = expected_ablation_stats(run_dir)
    assert stats["unstable"]["diverged"] == 1 and len(stats["unstable"]["loss"]) == 1

    # The summary run, read back from its offline transaction log.
    summary_id = f"{info.uid}-summary"
    run = read_run_history(run_dir / "wandb", summary_id)
    assert (run.job_type, run.group, run.name) == ("sweep-summary", "abl", "abl-summary")
    assert run.exit_code == 0
    results = run.table("results")
    trials = {t.number: t for t in trials_of(run_dir)}
    assert sorted(row["trial"] for row in results) == sorted(trials)
    for row in results:
        assert row["loss"] == trials[row["trial"]].value
        assert row["state"] == trials[row["trial"]].state.name.lower()
    best = min((t for t in trials.values() if t.value is not None), key=lambda t: t.value)
    assert run.summary["best"]["trial"] == best.number
    assert run.summary["best"]["loss"] == pytest.approx(best.value)

    base_loss, base_acc = (
        mean_std(stats["baseline"]["loss"]),
        mean_std(stats["baseline"]["accuracy"]),
    )
    for name in ("bigger_x", "unstable"):
        rows = {row["metric"]: row for row in run.table(f"ablation/{name}")}
        assert set(rows) == {"loss", "accuracy", "diverged"}
        for metric, base in (("loss", base_loss), ("accuracy", base_acc)):
            ablated = mean_std(stats[name][metric])
            row = rows[metric]
            assert (row["baseline_mean"], row["baseline_std"]) == pytest.approx(base)
            assert (row["ablated_mean"], row["ablated_std"]) == pytest.approx(ablated)
            assert row["abs_delta"] == pytest.approx(ablated[0] - base[0])
            assert row["rel_delta"] == pytest.approx((ablated[0] - base[0]) / abs(base[0]))
        diverged = stats[name]["diverged"] / stats[name]["seeds"]
        assert rows["diverged"]["ablated_mean"] == pytest.approx(diverged)

    # Paired by seed against the baseline: bigger_x is worse on every seed (by 2.0 and 2.2),
    # its t interval computed here with scipy; unstable's seed 1 diverged: one pair only.
    base_by_seed = stats["baseline"]["by_seed"]
    diffs = [v - base_by_seed[s] for s, v in stats["bigger_x"]["by_seed"].items()]
    expected_test = scipy_stats.ttest_1samp(diffs, 0)
    low, high = expected_test.confidence_interval(0.95)
    paired = {row["metric"]: row for row in run.table("ablation/bigger_x")}["loss"]
    assert (paired["n_pairs"], paired["excluded"], paired["verdict"]) == (2, 0, "worse")
    assert paired["mean_diff"] == pytest.approx(statistics.fmean(diffs))
    assert (paired["ci_low"], paired["ci_high"]) == pytest.approx((low, high))
    assert paired["p_value"] == pytest.approx(expected_test.pvalue)
    assert paired["ci_low"] > 0
    unstable = {row["metric"]: row for row in run.table("ablation/unstable")}["loss"]
    assert (unstable["n_pairs"], unstable["excluded"]) == (1, 1)
    assert unstable["verdict"] == "needs 2+ seeds" and unstable["ci_low"] is None
    assert run.summary["ablation/bigger_x/loss/verdict"] == "worse"
    written = json.loads((run_dir / "ablations.json").read_text())
    by_name = {a["name"]: a for a in written["ablations"]}
    loss_row = next(r for r in by_name["bigger_x"]["metrics"] if r["metric"] == "loss")
    assert loss_row["verdict"] == "worse" and loss_row["ci_low"] == paired["ci_low"]
    ci = f"[{low:.4g}, {high:.4g}]"
    # results.json: each trial carries its configuration's comparison with the baseline.
    for record in json.loads((run_dir / "results.json").read_text()):
        comparison = record["comparison"]
        assert comparison["config"] == record["params"]["ablation"]
        assert comparison["against"] == "baseline"
        if comparison["config"] == "bigger_x":
            assert comparison["verdict"] == "worse" and comparison["ci_low"] == paired["ci_low"]
        elif comparison["config"] == "baseline":
            assert comparison["reference"] is True and "verdict" not in comparison
        else:
            assert comparison["verdict"] == "needs 2+ seeds" and comparison["excluded"] == 1

    # The terminal table, best to worst: complete seeds first, then by mean loss.
    table = out[out.index("ablations: loss") :]
    lines = [line for line in table.splitlines() if "│" in line]
    order = [name for line in lines for name in stats if f" {name} " in line]
    expected = sorted(
        stats,
        key=lambda n: (
            stats[n]["seeds"] - len(stats[n]["loss"]),
            statistics.fmean(stats[n]["loss"]),
        ),
    )
    assert order == expected == ["baseline", "bigger_x", "unstable"]
    assert "1 diverged" in next(line for line in lines if " unstable " in line)
    bigger = next(line for line in lines if " bigger_x " in line)
    assert ci in bigger and "worse" in bigger
    assert "needs 2+ seeds" in next(line for line in lines if " unstable " in line)

    # The plots and report.md, which embeds every one of them.
    report_dir = run_dir / "report"
    pngs = sorted(p.name for p in report_dir.glob("*.png"))
    assert pngs == ["ablation_forest.png", "curves_seconds.png", "curves_step.png"]
    text = (report_dir / "report.md").read_text()
    for name in pngs:
        assert f"]({name})" in text
        assert (report_dir / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| unstable | diverged |" in text
    bigger_md = next(line for line in text.splitlines() if line.startswith("| 2 | bigger_x |"))
    assert ci in bigger_md and "| worse |" in bigger_md

    # `orchestrate report` again continues the same summary run: no second summary run.
    assert cli.main(["report", str(run_dir)]) == 0
    summary_ids = {p.stem.removeprefix("run-") for p in find_run_files(run_dir / "wandb")}
    assert {i for i in summary_ids if i.endswith("summary")} == {summary_id}
    assert len(find_run_files(run_dir / "wandb", summary_id)) == 2
    again = read_run_history(run_dir / "wandb", summary_id)
    assert again.table("ablation/bigger_x") == run.table("ablation/bigger_x")


GRID_SEEDS = """
    name: gridseeds
    method: grid
    program: sweep_programs:seeded_loss
    metric: {{name: loss, goal: minimize}}
    seeds: 3
    parameters:
      x: {{values: [1.0, 1.5, 0.5]}}
      seed_effect: {{values: [0.1, 0.2]}}
    {baseline}
"""


@pytest.mark.parametrize("baseline", ["", "baseline: {x: 1.5, seed_effect: 0.1}"])
def test_grid_with_seeds_compares_each_point_with_the_best_or_its_baseline(
    local_ray, tmp_path, capsys, monkeypatch, baseline
):
    """Every grid point against the reference seed by seed, as an ablation against its
    baseline: the best point by mean unless `baseline:` names one. seeded_loss ends at
    x + seed * seed_effect, so each pair's difference and every verdict are known."""
    monkeypatch.delenv("COLUMNS", raising=False)
    spec_path = write_spec(tmp_path, GRID_SEEDS.format(baseline=baseline))
    assert cli.main(["run", str(spec_path), "--runs", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    run_dir = tmp_path / "runs" / "gridseeds"
    reference = (1.5, 0.1) if baseline else (0.5, 0.1)  # the best: lowest x, flattest seeds
    name = f"x={reference[0]},seed_effect={reference[1]}"
    values = {}
    for trial in trials_of(run_dir):
        point = (trial.params["x"], trial.params["seed_effect"])
        values.setdefault(point, {})[trial.params["seed"]] = trial.value
    assert len(values) == 6 and all(len(v) == 3 for v in values.values())

    records = json.loads((run_dir / "results.json").read_text())
    assert len(records) == 18
    for record in records:
        point = (record["params"]["x"], record["params"]["seed_effect"])
        comparison = record["comparison"]
        assert comparison["against"] == name
        if point == reference:
            assert comparison["reference"] is True
            continue
        diffs = [values[point][s] - values[reference][s] for s in range(3)]
        assert comparison["mean_diff"] == pytest.approx(statistics.fmean(diffs))
        assert comparison["n_pairs"] == 3
        if point[1] == reference[1]:  # a constant difference: decided at once
            verdict = "worse" if diffs[0] > 0 else "better"
            assert comparison["verdict"] == verdict, (point, diffs)
        else:  # the seeds' effects differ: a t interval over 3 pairs
            expected = scipy_stats.ttest_1samp(diffs, 0).confidence_interval(0.95)
            assert (comparison["ci_low"], comparison["ci_high"]) == pytest.approx(expected)

    written = json.loads((run_dir / "ablations.json").read_text())
    assert written["against"] == name and written["ablations"][0]["name"] == name
    summary = read_run_history(run_dir / "wandb", f"{store.read_sweep_file(run_dir).uid}-summary")
    worse = {row["metric"]: row for row in summary.table("ablation/x=1,seed_effect=0.1")}
    assert worse["loss"]["mean_diff"] == pytest.approx(1.0 - reference[0])
    how = "named in baseline:" if baseline else "the best by mean"
    assert (
        f"points: loss (minimize), mean ± std over seeds; Δ paired by seed against {name} ({how})"
        in out
    )
    text = (run_dir / "report" / "report.md").read_text()
    assert f"## Grid points against {name} ({how})" in text and "](ablation_forest.png)" in text
    assert "## Parameter importance" in text  # a grid keeps its importance too


def test_random_sweep_importance_names_the_parameter_that_drives_the_metric(local_ray, tmp_path):
    from orchestrator.run.controller import Controller

    spec = load_spec(write_spec(tmp_path, RANDOM))
    run_dir = Controller(spec, runs_root=tmp_path / "runs").run().run_dir
    made = report.write_report(run_dir)

    assert made.importance.trials == 8
    assert list(made.importance.values)[0] == "x"  # noop's loss is x + 2; y does nothing
    assert made.importance.values["x"] > 0.5
    names = sorted(p.name for p in made.images)
    assert names == [
        "curves_seconds.png",
        "curves_step.png",
        "importance.png",
        "loss_vs_x.png",
        "loss_vs_y.png",
    ]
    text = made.path.read_text()
    assert all(f"]({name})" in text for name in names)
    assert "| x | " in text
    # wandb disabled: no wandb files, but the summary run's JSONL mirror has the importance.
    assert not find_run_files(run_dir / "wandb")
    mirror = run_dir / "logs" / f"{made.summary_run_id}.jsonl"
    logged = [json.loads(line) for line in mirror.read_text().splitlines()]
    summaries = [e["values"] for e in logged if e["kind"] == "summary"]
    assert any(s.get("importance", {}).get("x") == made.importance.values["x"] for s in summaries)


def test_importance_is_skipped_with_too_little_to_compare(tmp_path):
    from orchestrator.results.analysis import param_importance

    spec = load_spec(write_spec(tmp_path, RANDOM))

    def record(x: float, y: float, state: str = "complete") -> TrialResult:
        return TrialResult(0, state, {"x": x, "y": y}, value=x + 2, best=x + 2, last_step=1)

    one = param_importance(spec, [record(1, 0.5), record(2, 0.1, "fail")])
    assert one.values == {} and "1 complete" in one.skipped
    single = param_importance(spec, [record(1, 0.5), record(2, 0.5), record(3, 0.5)])
    assert single.values == {} and "1 varying parameter (x)" in single.skipped


def test_report_of_a_missing_directory_exits_2_with_one_line(tmp_path, capsys):
    assert cli.main(["report", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a sweep directory" in err[0]
