"""`resources: {gpus: auto}` on a real local Ray with 2 declared GPUs (no GPU here: Ray is
told there are 2, which is all its scheduler needs, and gives each task CUDA_VISIBLE_DEVICES).
The trials' measured memory is faked where the trainer reads it from torch.cuda
(`sweep_programs.gpu_steps`); everything from their reports on is the real controller."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import ray
from conftest import trials_of, write_spec
from optuna.trial import TrialState
from rich.console import Console

from orchestrator.results.report import write_report
from orchestrator.results.summary import summarize
from orchestrator.results.sweep import load_sweep
from orchestrator.run.controller import Controller
from orchestrator.spec import load_spec
from orchestrator.store import attrs
from orchestrator.tracking.wandb_records import read_run_history

TOTAL_MB = 81920.0
FOUR_FIT = 0.9 * TOTAL_MB / 4 - 512  # with a CUDA context each, four fill 90% of the device


@pytest.fixture
def two_gpus():
    ray.init(address="local", num_cpus=8, num_gpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def gpu_starts(trial) -> list[dict]:
    path = Path(trial.user_attrs[attrs.CHECKPOINT_DIR]) / "gpu_starts.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def most_at_once(intervals: list[tuple[float, float]]) -> int:
    edges = sorted([(b, -1) for _, b in intervals] + [(a, 1) for a, _ in intervals])
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak


def sweep(tmp_path: Path, extra: str = "", trials: int = 12) -> Path:
    values = list(range(1, trials + 1))
    return write_spec(
        tmp_path,
        f"""
        name: packed
        method: grid
        program: sweep_programs:gpu_steps
        metric: {{name: loss, goal: minimize}}
        resources: {{cpus: 0.5, gpus: auto, max_per_gpu: 8}}
        max_retries: 1
        parameters:
          x: {{values: {values}}}
          steps: {{value: 6}}
          step_seconds: {{value: 0.15}}
          peak_mb: {{value: {FOUR_FIT}}}
          total_mb: {{value: {TOTAL_MB}}}
          {extra}
        """,
    )


def test_auto_measures_one_alone_then_packs_four_to_each_device(two_gpus, tmp_path, capsys):
    controller = Controller(load_spec(sweep(tmp_path)), runs_root=tmp_path / "runs")
    controller.run()
    trials = trials_of(tmp_path / "runs" / "packed")
    assert len(trials) == 12 and all(t.state == TrialState.COMPLETE for t in trials)
    assert controller.packer.per_device == 4 and controller.packer.measured_by is not None
    assert "gpus: auto: 4 trials per GPU" in capsys.readouterr().out
    starts = [s for t in trials for s in gpu_starts(t)]
    # Before a trial had reported its memory, trials had a device each; after, a quarter.
    first = min(starts, key=lambda s: s["began"])
    assert first["share"] == 1.0
    assert {s["share"] for s in starts} == {1.0, 0.25}
    packed = [s for s in starts if s["share"] == 0.25]
    assert len(packed) >= 8
    # Counted per device: never more than four on one, and more than one at a time on each.
    for device in ("0", "1"):
        on_device = [(s["began"], s["ended"]) for s in starts if s["devices"] == device]
        assert 2 <= most_at_once(on_device) <= 4, device
    # Per-device accounting: each trial's device and share, as results.json has them.
    results = load_sweep(tmp_path / "runs" / "packed").trials
    assert {r.gpu_device.rpartition(":")[2] for r in results} == {"0", "1"}
    by_number = {r.trial: r for r in results}
    for trial in trials:
        result = by_number[trial.number]
        assert result.gpu_share == gpu_starts(trial)[-1]["share"]
        assert result.compute_unit == "gpu-s"
        assert result.compute_s == pytest.approx(result.elapsed_s * result.gpu_share, abs=1e-3)
        assert result.mfu == 0.25 and result.gpu_peak_memory_mb == FOUR_FIT
    # The sweep's GPU-hours at its end, in report.md and in its summary wandb run.
    run_dir = tmp_path / "runs" / "packed"
    console = Console(file=io.StringIO(), width=200)
    summarize(run_dir, console)
    hours = sum(r.elapsed_s * r.gpu_share for r in results) / 3600
    printed = console.file.getvalue()
    assert f"gpu: {hours:.3g} GPU-hours (wall x share asked), 12 trials on 2 devices" in printed
    made = write_report(run_dir, console=Console(file=io.StringIO()))
    assert "| gpu |" in made.path.read_text() and "GPU: " in made.path.read_text()
    summary = read_run_history(run_dir / "wandb", made.summary_run_id).summary
    assert summary["gpu"]["devices"] == 2 and summary["gpu"]["mean_mfu"] == 0.25


def test_a_packed_trial_out_of_memory_runs_again_alone_and_packing_drops(two_gpus, tmp_path):
    spec = load_spec(sweep(tmp_path, "oom_x: {value: 7}"))
    controller = Controller(spec, runs_root=tmp_path / "runs")
    controller.run()
    trials = {t.params["x"]: t for t in trials_of(tmp_path / "runs" / "packed")}
    assert all(t.state == TrialState.COMPLETE for t in trials.values())
    # It was dispatched packed (four to a device), ran out of memory, then ran alone.
    assert [s["share"] for s in gpu_starts(trials[7])] == [0.25, 1.0]
    assert trials[7].user_attrs[attrs.RETRIES] == 1
    assert controller.packer.alone == {trials[7].number}
    assert controller.packer.per_device == controller.packer.cap == 3
    others = [t for x, t in trials.items() if x != 7]
    assert all(t.user_attrs.get(attrs.RETRIES, 0) == 0 for t in others)


def test_a_fixed_fraction_is_what_every_trial_asks_for(two_gpus, tmp_path):
    spec = sweep(tmp_path, trials=4)
    spec.write_text(spec.read_text().replace("gpus: auto, max_per_gpu: 8", "gpus: 0.5"))
    controller = Controller(load_spec(spec), runs_root=tmp_path / "runs")
    controller.run()
    assert controller.packer is None
    starts = [s for t in trials_of(tmp_path / "runs" / "packed") for s in gpu_starts(t)]
    assert len(starts) == 4 and {s["share"] for s in starts} == {0.5}
