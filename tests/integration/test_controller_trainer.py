"""A sweep of the real shared trainer on Ray: a learning rate that trains, one that diverges."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import trials_of, write_spec
from optuna.trial import TrialState

import orchestrator
from orchestrator.results.sweep import load_sweep
from orchestrator.run.controller import Controller
from orchestrator.spec import load_spec
from orchestrator.tracking.wandb_records import read_run_history

SPEC = """
    name: lr-small
    method: grid
    metric: {name: val_loss, goal: minimize}
    max_retries: 2
    parameters:
      optimizer.lr: {values: [0.01, 100.0]}
    base: tiny
    trainer:
      train.max_steps: 30
      train.eval_every: 10
      train.log_every: 5
      train.checkpoint_every: 10
      optimizer.warmup_steps: 5
"""


def test_trainer_sweep_completes_and_a_divergent_rate_fails_unretried(local_ray, tmp_path):
    spec = load_spec(write_spec(tmp_path, SPEC))
    Controller(spec, runs_root=tmp_path / "runs").run()
    run_dir = tmp_path / "runs" / "lr-small"
    by_lr = {t.params["optimizer.lr"]: t for t in trials_of(run_dir)}

    good, bad = by_lr[0.01], by_lr[100.0]
    assert good.state == TrialState.COMPLETE
    assert good.value == pytest.approx(good.user_attrs["final_metrics"]["val_loss"])
    assert sorted(good.intermediate_values) == [10, 20, 30]  # every evaluation streamed in
    assert good.value < good.intermediate_values[10]  # it learned
    assert (Path(good.user_attrs["checkpoint_dir"]) / "checkpoint.pt").exists()

    assert bad.state == TrialState.FAIL
    assert bad.user_attrs["failure_reason"] == "diverged"
    assert "retries" not in bad.user_attrs  # a divergence is a result, not a fault

    run = read_run_history(good.user_attrs["wandb_dir"], good.user_attrs["wandb_run_id"])
    assert run.config["optimizer"]["lr"] == 0.01  # the full resolved trainer config
    assert run.config["model"]["num_layers"] == 4
    assert run.summary["state"] == "complete"
    assert any("val/loss" in row for row in run.history)
    failed = read_run_history(bad.user_attrs["wandb_dir"], bad.user_attrs["wandb_run_id"])
    assert failed.summary["state"] == "failed: diverged"
    # Its last step is the one it diverged at, as its wandb run says, not its last evaluation
    # (here step 15 and step 10; with no evaluation before, the store had no step at all).
    step = failed.summary["final/step"]
    assert step == failed.history[-1]["step"] and step > 0
    assert load_sweep(run_dir).trial(bad.number).last_step == step
    assert load_sweep(run_dir).trial(good.number).last_step == 30
    # A rate is no secret: `flops_per_token` stays a number in the run and the store.
    assert isinstance(run.summary["final/flops_per_token"], float)
    assert isinstance(good.user_attrs["final_metrics"].get("flops_per_token"), float)


def test_trainer_named_as_a_function_with_two_seeds_completes_every_trial(local_ray, tmp_path):
    """`program: trainer.train:train` is the shared trainer: seeds reach it as train.seed."""
    text = """
        name: seeded
        method: grid
        program: trainer.train:train
        seeds: 2
        metric: {name: val_loss, goal: minimize}
        parameters:
          optimizer.lr: {values: [0.01]}
        trainer: {train.max_steps: 6, train.eval_every: 3, train.log_every: 3}
    """
    spec = load_spec(write_spec(tmp_path, text))
    outcome = Controller(spec, runs_root=tmp_path / "runs").run()
    assert outcome.counts == {"complete": 2}
    sweep = orchestrator.load_sweep(outcome.run_dir)
    runs = [read_run_history(t.wandb_dir, t.wandb_run) for t in sweep.trials]
    assert sorted(run.config["train"]["seed"] for run in runs) == [0, 1]
    assert sweep.trials[0].value != sweep.trials[1].value  # the seeds differ
