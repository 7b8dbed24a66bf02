"""How a sweep ends when its trials fail: exit codes, one line on why, a report all the same,
and no budget burnt on a program that fails whatever its configuration."""

from __future__ import annotations

from conftest import trials_of, write_spec
from optuna.trial import TrialState

from orchestrator import cli

FUNCTION_SWEEP = """
    name: {name}
    method: grid
    program: sweep_programs:{program}
    metric: {{name: loss, goal: minimize}}
    wandb: {{mode: disabled}}
    parameters:
      x: {{values: {values}}}
"""


def run(tmp_path, capsys, text: str, *extra: str) -> tuple[int, str]:
    code = cli.main(
        ["run", str(write_spec(tmp_path, text)), "--runs", str(tmp_path / "runs"), *extra]
    )
    out = capsys.readouterr()
    return code, out.out + out.err


def test_a_sweep_whose_only_trial_diverged_exits_1_with_its_report(local_ray, tmp_path, capsys):
    text = """
        name: diverged
        method: grid
        metric: {name: val_loss, goal: minimize}
        parameters:
          optimizer.lr: {values: [100.0]}
        trainer:
          train.max_steps: 30
          train.eval_every: 10
          train.log_every: 5
          optimizer.warmup_steps: 5
    """
    code, out = run(tmp_path, capsys, text)
    assert code == 1, out
    assert "1 of 1 trials failed: diverged (1)" in out
    assert (tmp_path / "runs" / "diverged" / "report" / "report.md").is_file()


def test_a_nan_metric_is_a_divergence(local_ray, tmp_path, capsys):
    code, out = run(
        tmp_path, capsys, FUNCTION_SWEEP.format(name="nan", program="nan_loss", values=[1])
    )
    assert code == 1 and "1 of 1 trials failed: diverged (1)" in out
    (trial,) = trials_of(tmp_path / "runs" / "nan")
    assert trial.state == TrialState.FAIL and trial.user_attrs["failure_reason"] == "diverged"


def test_a_missing_metric_says_what_the_program_reported(local_ray, tmp_path, capsys):
    text = FUNCTION_SWEEP.format(name="other", program="other_metric", values=[1, 2])
    code, out = run(tmp_path, capsys, text)
    assert code == 1
    reason = "metric 'loss' was never reported; it reported acc"
    assert f"2 of 2 trials failed: {reason} (2)" in out


def test_the_first_trials_failing_alike_stop_the_sweep_and_a_rerun_goes_on(
    local_ray, tmp_path, capsys
):
    text = FUNCTION_SWEEP.format(name="broken", program="broken", values=list(range(8)))
    code, out = run(tmp_path, capsys, text, "--num-cpus", "1")
    assert code == 1
    assert (
        "stopping: the first 3 trials all failed with: RuntimeError: the data path is wrong" in out
    )
    states = [t.state for t in trials_of(tmp_path / "runs" / "broken")]
    failed = states.count(TrialState.FAIL)
    assert 3 <= failed < 8 and states.count(TrialState.WAITING) == 8 - failed  # kept queued
    assert "halted: the rest are queued" in out

    # Its traceback is one command away.
    first = next(t for t in trials_of(tmp_path / "runs" / "broken") if t.state == TrialState.FAIL)
    assert (
        cli.main(["status", str(tmp_path / "runs" / "broken"), "--trial", str(first.number)]) == 0
    )
    detail = capsys.readouterr().out
    assert (
        f"trial {first.number}" in detail
        and "reason: RuntimeError: the data path is wrong" in detail
    )
    assert "traceback:" in detail and 'raise RuntimeError("the data path is wrong")' in detail


def test_one_complete_trial_is_success(local_ray, tmp_path, capsys):
    text = FUNCTION_SWEEP.format(name="ok", program="noop", values=[1, 2])
    code, out = run(tmp_path, capsys, text)
    assert code == 0 and "failed" not in out


def test_time_limits_fail_a_hung_or_slow_trial_and_the_sweep_goes_on(local_ray, tmp_path, capsys):
    """report_timeout: a program silent too long (sleeping 120 s before its one report) is
    stopped and fails with that reason; trial_timeout: one that reports but runs too long
    too. A trial within both limits completes."""
    text = """
        name: limits
        method: grid
        program: sweep_programs:{program}
        metric: {{name: loss, goal: minimize}}
        wandb: {{mode: disabled}}
        {limit}
        parameters:
          {key}: {{values: {values}}}
    """
    hung = text.format(program="sleep", limit="report_timeout: 2", key="seconds", values=[120, 0.1])
    code, out = run(tmp_path, capsys, hung)
    assert code == 0, out  # the quick one completed
    slow, quick = sorted(
        trials_of(tmp_path / "runs" / "limits"), key=lambda t: -t.params["seconds"]
    )
    assert slow.state == TrialState.FAIL and quick.state == TrialState.COMPLETE
    assert slow.user_attrs["failure_reason"] == "no report for 2 s (report_timeout)"
    assert "1 of 2 trials failed: no report for 2 s (report_timeout) (1)" in out
    assert slow.user_attrs["ended_at"] - slow.user_attrs["started_at"] < 60  # not its 120 s

    long = text.format(program="steps", limit="trial_timeout: 2", key="steps", values=[100000])
    code, out = run(tmp_path, capsys, long.replace("limits", "long"))
    assert code == 1, out
    (trial,) = trials_of(tmp_path / "runs" / "long")
    assert trial.state == TrialState.FAIL
    assert trial.user_attrs["failure_reason"] == "timed out after 2 s (trial_timeout)"
    assert max(trial.intermediate_values) < 1000  # it was stopped, not run to its end
