"""`orchestrator.load_sweep`: a sweep's results as typed records, read from its store."""

from __future__ import annotations

import json

import optuna
import pytest
from optuna.distributions import FloatDistribution

import orchestrator
from orchestrator import store
from orchestrator.results import summary
from orchestrator.run import endings
from orchestrator.store import attrs


@pytest.fixture
def run_dir(tmp_path):
    """A sweep directory as a controller leaves it: sweep.json and a journal store."""
    run_dir = tmp_path / "runs" / "api"
    label = store.storage_label(None, run_dir)
    store.write_sweep_file(
        run_dir,
        store.SweepFile(
            name="api",
            run_dir=str(run_dir),
            storage=label,
            study_name="api",
            spec_copy=str(run_dir / "spec.yaml"),
            metric="loss",
            goal="minimize",
            total=4,
        ),
    )
    study = optuna.create_study(storage=store.open_storage(label, run_dir), study_name="api")
    space = {"x": FloatDistribution(0, 10)}
    for x, ending in [
        (3.0, endings.of_result({"loss": 3.0, "tokens": 10}, None, ["loss"])),
        (1.0, endings.of_result({"loss": 1.0, "tokens": 10}, None, ["loss"])),
        (9.0, endings.failed("diverged")),
        (5.0, endings.INTERRUPTED),
    ]:
        study.enqueue_trial({"x": x})
        trial = study.ask(space)
        trial.report(x + 0.5, 2)
        trial.set_user_attr(attrs.WANDB_RUN_ID, f"run-{trial.number}")
        trial.set_user_attr(attrs.STARTED_AT, 100.0)
        endings.record(study, trial, ending)
    return run_dir


def test_load_sweep_gives_typed_trials_best_first(run_dir):
    sweep = orchestrator.load_sweep(run_dir)
    assert (sweep.name, sweep.metric, sweep.goal, len(sweep)) == ("api", "loss", "minimize", 4)
    assert [t.state for t in sweep] == ["complete", "complete", "interrupted", "fail"]
    assert sweep.best.params == {"x": 1.0} and sweep.best.value == 1.0
    assert sweep.best.wandb_run == "run-1" and sweep.best.final_metrics["tokens"] == 10
    assert sweep.best.best == 1.0 and sweep.best.last_step == 2
    assert sweep.trial(2).reason == "diverged"
    assert sweep.counts() == {"complete": 2, "interrupted": 1, "fail": 1}
    with pytest.raises(KeyError):
        sweep.trial(99)


def test_dataframe_and_results_files_hold_the_same_records(run_dir):
    sweep = orchestrator.load_sweep(run_dir)
    frame = sweep.to_dataframe()
    assert list(frame["trial"]) == [t.trial for t in sweep.trials]
    assert list(frame["param.x"]) == [1.0, 3.0, 5.0, 9.0]
    assert frame["final.tokens"].iloc[0] == 10

    json_path, csv_path = summary.write_results(run_dir, sweep.trials)
    again = [store.TrialResult.from_dict(r) for r in json.loads(json_path.read_text())]
    assert again == sweep.trials
    header = csv_path.read_text().splitlines()[0].split(",")
    assert header[:3] == ["trial", "state", "value"] and "param.x" in header


def test_status_overview_is_read_through_the_same_records(run_dir):
    item = summary.overview(run_dir)
    assert item["best"]["trial"] == orchestrator.load_sweep(run_dir).best.trial
    assert item["finished"] == 3 and item["controller_pid"] is None
    line = summary.overview_line(item)
    assert "api" in line and "best loss=1" in line and "idle" in line


def test_a_dispatched_trial_is_queued_until_it_starts_and_a_dead_controller_is_said(run_dir):
    info = store.read_sweep_file(run_dir)
    study = store.load_study(info)
    queued = study.ask({"x": FloatDistribution(0, 10)})
    started = study.ask({"x": FloatDistribution(0, 10)})
    started.set_user_attr(attrs.STARTED_AT, 100.0)
    states = {t.trial: t.state for t in orchestrator.load_sweep(run_dir)}
    assert states[queued.number] == "queued" and states[started.number] == "running"
    line = summary.overview_line(summary.overview(run_dir))
    assert f"no controller: `orchestrate resume {run_dir}` continues it" in line


def test_the_progress_count_leaves_interrupted_trials_out():
    import io

    from orchestrator.run.display import PlainDisplay, TrialView

    out = io.StringIO()
    display = PlainDisplay(out)
    display.start("sweep", 2, 0)
    display.update(TrialView(0, {"x": 1}, state="interrupted"), "finished")
    display.update(TrialView(1, {"x": 2}, state="complete"), "finished")
    assert [line.split()[0] for line in out.getvalue().splitlines()[1:]] == ["[0/2]", "[1/2]"]
