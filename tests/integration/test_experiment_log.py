"""ExperimentLogger on real offline wandb runs, read back from their `.wandb` files."""

from __future__ import annotations

import math
import os
import signal
from pathlib import Path

import pytest
import torch
import wandb
from conftest import read_jsonl, wait_until_dead, wandb_service_pids

from orchestrator.tracking import (
    ExperimentLogger,
    log_experiment,
    log_training_experiment,
    resolve_mode,
    wandb_key,
)
from orchestrator.tracking.redact import is_secret_name, sanitize
from orchestrator.tracking.wandb_records import find_run_files, read_records, read_run_history

VAL_LOSSES = {4: 2.5, 9: 2.1, 14: 2.3}


def trainer_report(step: int) -> dict:
    """A report dict in the shape trainer.train.train sends to `report`."""
    metrics = {
        "step": step,
        "tokens": 512 * (step + 1),
        "elapsed_s": 0.05 * (step + 1),
        "train_loss": 3.0 - 0.05 * step,
        "lr": 1e-3,
        "grad_norm": 0.5 + step / 100,
        "step_time_s": 0.05,
        "tokens_per_s": 10240.0,
        "memory_mb": 123.0,
    }
    if step in VAL_LOSSES:
        val = VAL_LOSSES[step]
        metrics.update(val_loss=val, val_perplexity=math.exp(val), val_accuracy=0.2)
    return metrics


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    """One run through the whole API, as a trial would log it."""
    directory = tmp_path_factory.mktemp("logged")
    model = torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    model[2].weight.requires_grad_(False)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    config = {"optimizer": {"lr": 1e-3}, "model": {"d_model": 8}, "max_tokens": 64}
    with ExperimentLogger(
        "orchestrate-tests",
        "lr-sweep-3-lr=1e-3",
        config=config,
        tags=["lr-sweep", "grid", "lr=1e-3"],
        notes="logger test",
        group="lr-sweep",
        job_type="trial",
        mode="offline",
        dir=directory,
        run_id="trial3",
        entity="my-team",
    ) as logger:
        logger.log_model_info(model)
        logger.log_system_info()
        for step in range(15):
            logger.log_metrics(trainer_report(step))
        logger.log_training_step(2.0, 5e-4, 0.7, step=15, epoch=1, tokens_per_s=9000.0)
        logger.log_validation_step(1.9, math.exp(1.9), step=15, epoch=1, accuracy=0.25)
        logger.log_epoch(1, train_loss=2.2, val_loss=1.9, step=15, epoch_time_s=0.8)
        logger.log_custom_metric("attention_entropy", 1.25, step=15, layer="all")
        checkpoint = logger.log_checkpoint(
            model, optimizer, 1, 15, 1.9, directory / "ckpt" / "best.pt", is_best=True,
            additional_metadata={"val_perplexity": math.exp(1.9)},
        )  # fmt: skip
        logger.log_text_generation("Once upon", "a time there was", 0.8, 0.9, 16, step=15)
        logger.log_text_generation("The cat", "sat on the mat", 1.0, 0.95, 16, step=16)
        ablation_rows = logger.log_hyperparameter_ablation(
            "no_rope",
            baseline_metrics={"val_loss": (2.0, 0.1), "val_accuracy": {"mean": 0.3, "std": 0.02}},
            ablated_metrics={"val_loss": {"mean": 2.4, "std": 0.2}, "val_accuracy": 0.27},
            ablation_config={"model.rope": False},
            step=16,
        )
        logger.log_table(
            "results", ["trial", "state", "loss"], [(0, "complete", 1.5), [1, "failed", None]]
        )
        logger.log_experiment_summary(final_train_loss=2.0, final_val_loss=1.9, total_steps=16)
        logger.set_summary(state="complete")
    (wandb_file,) = find_run_files(directory / "wandb")
    return {
        "logger": logger,
        "run": read_run_history(directory / "wandb", "trial3"),
        "file": wandb_file,
        "jsonl": read_jsonl(directory / "logs" / "trial3.jsonl"),
        "checkpoint": checkpoint,
        "ablation_rows": ablation_rows,
    }


def test_run_identity_and_config(logged):
    run = logged["run"]
    assert (run.run_id, run.name, run.project) == (
        "trial3",
        "lr-sweep-3-lr=1e-3",
        "orchestrate-tests",
    )
    assert (run.group, run.job_type, run.notes) == ("lr-sweep", "trial", "logger test")
    assert run.entity == "my-team"
    assert run.tags == ["lr-sweep", "grid", "lr=1e-3"]
    assert run.config["optimizer"] == {"lr": 1e-3} and run.config["max_tokens"] == 64
    info = run.config["model_info"]
    assert (info["num_params"], info["num_trainable_params"]) == (36 + 10, 36 + 2)
    assert info["class"] == "Sequential" and "Linear(in_features=8" in info["architecture"]
    assert run.config["system"]["torch"] == torch.__version__
    assert run.exit_code == 0


def test_history_curves_against_steps_and_wall_clock(logged):
    run = logged["run"]
    reports = [row for row in run.history if "perf/tokens_per_s" in row and "train/lr" in row]
    assert len(reports) == 16  # 15 trainer reports + log_training_step
    assert [row["step"] for row in reports] == list(range(16))
    assert [row["train/loss"] for row in reports[:15]] == [3.0 - 0.05 * s for s in range(15)]
    assert reports[0]["elapsed_s"] == pytest.approx(0.05)
    assert reports[0]["wallclock/train_loss"] == reports[0]["train/loss"]
    for key in ("tokens", "train/grad_norm", "perf/step_time_s", "perf/memory_mb"):
        assert all(key in row for row in reports[:15]), key
    assert run.metric("val/loss") == [*VAL_LOSSES.values(), 1.9]
    assert run.metric("wallclock/val_loss") == run.metric("val/loss")
    assert run.metric("val/accuracy") == [0.2, 0.2, 0.2, 0.25]
    assert run.metric("epoch/val_loss") == [1.9]
    assert run.metric("custom/attention_entropy") == [1.25]
    elapsed = run.metric("elapsed_s")
    assert elapsed == sorted(elapsed)
    # wandb's own row counter is one per call, in order
    assert [row["_step"] for row in run.history] == list(range(len(run.history)))
    # the charts' x-axes
    axes = {}
    for record in read_records(logged["file"]):
        if record.WhichOneof("record_type") == "metric" and record.metric.glob_name:
            axes[record.metric.glob_name] = record.metric.step_metric
    assert axes == {
        "train/*": "step",
        "val/*": "step",
        "perf/*": "step",
        "custom/*": "step",
        "wallclock/*": "elapsed_s",
        "epoch/*": "epoch",
    }


def test_summary_holds_final_and_best(logged):
    summary = logged["run"].summary
    assert summary["best/val_loss"] == 1.9 and summary["best/val_step"] == 15
    assert summary["final/train_loss"] == 2.0 and summary["final/total_steps"] == 16
    assert summary["state"] == "complete"
    assert summary["val/loss"] == 1.9  # wandb keeps the last value of every key


def test_checkpoint_is_saved_and_logged_as_model_artifact(logged):
    (artifact,) = [a for a in logged["run"].artifacts if a["type"] == "model"]
    assert artifact["name"] == "checkpoint-trial3"
    assert set(artifact["aliases"]) == {"latest", "step-15", "best"}
    assert artifact["metadata"]["step"] == 15 and artifact["metadata"]["is_best"] is True
    assert artifact["metadata"]["val_perplexity"] == pytest.approx(math.exp(1.9))
    state = torch.load(logged["checkpoint"], weights_only=True)
    assert set(state["model"]) == {"0.weight", "0.bias", "2.weight", "2.bias"}
    assert "optimizer" in state and state["step"] == 15


def test_text_generation_table_accumulates_samples(logged):
    rows = logged["run"].table("samples/text_generation")
    assert [(r["step"], r["prompt"], r["generated_text"]) for r in rows] == [
        (15, "Once upon", "a time there was"),
        (16, "The cat", "sat on the mat"),
    ]
    assert rows[0]["temperature"] == 0.8 and rows[1]["top_p"] == 0.95


def test_ablation_table_has_absolute_and_relative_deltas(logged):
    rows = {r["metric"]: r for r in logged["run"].table("ablation/no_rope")}
    loss, accuracy = rows["val_loss"], rows["val_accuracy"]
    assert (loss["baseline_mean"], loss["baseline_std"]) == (2.0, 0.1)
    assert (loss["ablated_mean"], loss["ablated_std"]) == (2.4, 0.2)
    assert loss["abs_delta"] == pytest.approx(0.4)
    assert loss["rel_delta"] == pytest.approx(0.2)
    assert loss["delta_std"] == pytest.approx(math.sqrt(0.1**2 + 0.2**2))
    assert accuracy["abs_delta"] == pytest.approx(-0.03) and accuracy["ablated_std"] == 0.0
    assert accuracy["rel_delta"] == pytest.approx(-0.1)
    assert [r["abs_delta"] for r in logged["ablation_rows"]] == [
        loss["abs_delta"],
        accuracy["abs_delta"],
    ]
    summary = logged["run"].summary
    assert summary["ablation/no_rope/val_loss/rel_delta"] == pytest.approx(0.2)
    assert summary["ablation/no_rope/config"] == {"model.rope": False}


def test_log_table_mixes_types_and_is_mirrored(logged):
    rows = logged["run"].table("results")
    assert rows == [
        {"trial": 0, "state": "complete", "loss": 1.5},
        {"trial": 1, "state": "failed", "loss": None},
    ]
    (line,) = [line for line in logged["jsonl"] if line["kind"] == "table"]
    assert line["values"] == {
        "table": "results",
        "columns": ["trial", "state", "loss"],
        "rows": [[0, "complete", 1.5], [1, "failed", None]],
    }


def test_jsonl_mirrors_every_call(logged):
    lines = logged["jsonl"]
    kinds = [line["kind"] for line in lines]
    assert kinds[0] == "init" and kinds[-1] == "finish"
    assert kinds.count("metrics") == 15
    assert {"model_info", "system", "train", "val", "epoch", "custom", "checkpoint"} <= set(kinds)
    assert kinds.count("text_generation") == 2 and kinds.count("ablation") == 1
    metrics = [line["values"] for line in lines if line["kind"] == "metrics"]
    wandb_rows = [row for row in logged["run"].history if "perf/memory_mb" in row]
    assert [m["train/loss"] for m in metrics] == [r["train/loss"] for r in wandb_rows]
    assert all(isinstance(line["time"], float) for line in lines)


def test_resumed_run_id_continues_one_history(tmp_path):
    def attempt(steps, resume):
        with ExperimentLogger(
            "orchestrate-tests", "resumable", config={"seed": 1}, tags=["t"], group="g",
            job_type="trial", mode="offline", dir=tmp_path, run_id="again1", resume=resume,
        ) as logger:  # fmt: skip
            for step in steps:
                logger.log_metrics(trainer_report(step))

    attempt(range(0, 6), None)
    attempt(range(6, 12), "allow")  # retried trial: wandb 0.31 writes a second run directory
    files = find_run_files(tmp_path / "wandb")
    assert len(files) == 2 and {f.name for f in files} == {"run-again1.wandb"}
    run = read_run_history(tmp_path / "wandb", "again1")
    assert run.run_id == "again1" and run.name == "resumable" and run.group == "g"
    assert run.metric("step") == list(range(12))
    assert [row["_step"] for row in run.history] == list(range(12))  # disjoint wandb steps
    assert run.metric("elapsed_s") == pytest.approx([0.05 * (s + 1) for s in range(12)])
    assert run.exit_code == 0
    jsonl = read_jsonl(tmp_path / "logs" / "again1.jsonl")
    assert [line["step"] for line in jsonl if line["kind"] == "metrics"] == list(range(12))
    assert "replay" not in [line["kind"] for line in jsonl]  # wandb had every row already


def test_wandb_failing_at_init_leaves_the_jsonl(tmp_path, monkeypatch, caplog):
    # A real failure of wandb's own init: online mode with no API key anywhere.
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    with ExperimentLogger("p", "no-key", mode="online", dir=tmp_path, run_id="nokey") as logger:
        assert logger.run is None
        for step in range(5):
            logger.log_metrics(trainer_report(step))
        logger.log_text_generation("a", "b", 1.0, 1.0, 4, step=4)
        logger.log_hyperparameter_ablation("x", {"val_loss": 1.0}, {"val_loss": 1.1})
    assert caplog.text.count("wandb failed during") == 1
    assert "wandb failed during init (UsageError" in caplog.text
    assert find_run_files(tmp_path / "wandb") == []
    kinds = [line["kind"] for line in read_jsonl(tmp_path / "logs" / "nokey.jsonl")]
    expected = ["init", "wandb_error", *["metrics"] * 5, "text_generation", "ablation"]
    assert kinds == [*expected, "summary", "finish"]


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="finds wandb-core through /proc")
def test_wandb_dying_mid_run_leaves_the_jsonl_and_later_runs_work(tmp_path, caplog):
    # A real mid-run failure: wandb's service process is killed, so wandb's own `log` raises.
    logger = ExperimentLogger("p", "killed", mode="offline", dir=tmp_path, run_id="killed1")
    for step in range(5):
        logger.log_metrics(trainer_report(step))
    (pid,) = wandb_service_pids()
    os.kill(pid, signal.SIGKILL)
    wait_until_dead(pid)
    for step in range(5, 15):
        logger.log_metrics(trainer_report(step))
    logger.finish()
    assert logger.run is None
    assert caplog.text.count("wandb failed during") == 1
    metrics = [line for line in read_jsonl(logger.jsonl_path) if line["kind"] == "metrics"]
    assert [line["step"] for line in metrics] == list(range(15))
    # The next run in this process (a reused Ray worker) gets a fresh wandb service.
    with ExperimentLogger("p", "after", mode="offline", dir=tmp_path, run_id="after1") as after:
        after.log_metrics(trainer_report(0))
    assert after.run is None and read_run_history(tmp_path / "wandb", "after1").metric("step") == [
        0
    ]


def test_wandb_service_of_another_process_is_not_joined(tmp_path, monkeypatch):
    # A Ray worker starts with the driver's environment, wandb's service token included; its
    # runs must not live in the driver's wandb-core (a killed trial's run would stay open).
    wandb.teardown()  # so that the next run connects afresh, as in a new worker
    monkeypatch.setenv("WANDB_SERVICE", f"3-{os.getppid()}-unix-{tmp_path}/no-such-socket")
    with ExperimentLogger("p", "own", mode="offline", dir=tmp_path, run_id="own1") as logger:
        logger.log_metrics(trainer_report(0))
    assert read_run_history(tmp_path / "wandb", "own1").metric("step") == [0]


def test_secrets_never_reach_any_written_file(tmp_path, monkeypatch):
    api_key = "f00dfeed" * 5
    token = "tok-very-private-0042"
    monkeypatch.setenv("WANDB_API_KEY", api_key)
    monkeypatch.setenv("MY_SERVICE_TOKEN", token)
    config = {
        "api_key": api_key,
        "data": {"hf_token": token, "url": f"https://x.test/?auth={token}", "max_tokens": 256},
    }
    with ExperimentLogger(
        "p", "secrets", config=config, notes=f"key {api_key}", mode="offline", dir=tmp_path
    ) as logger:
        logger.log_metrics({**trainer_report(0), "note": token})
        logger.log_text_generation(f"prompt {token}", "out", 1.0, 1.0, 4, step=0)
        logger.set_summary(password=api_key, state="complete")
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.suffix == ".wandb" for p in files) and any(p.suffix == ".jsonl" for p in files)
    for path in files:
        data = path.read_bytes()
        assert api_key.encode() not in data and token.encode() not in data, path
    run = read_run_history(tmp_path / "wandb", logger.run_id)
    assert run.config["data"]["max_tokens"] == 256 and run.config["api_key"] == "<redacted>"


def test_disabled_mode_writes_only_the_jsonl(tmp_path):
    with ExperimentLogger("p", "off", mode="disabled", dir=tmp_path, run_id="off1") as logger:
        logger.log_metrics(trainer_report(4))
        logger.log_checkpoint(torch.nn.Linear(2, 2), None, 0, 4, 1.0, tmp_path / "c.pt")
    assert not (tmp_path / "wandb").exists()
    lines = read_jsonl(tmp_path / "logs" / "off1.jsonl")
    assert [line["kind"] for line in lines] == [
        "init",
        "metrics",
        "checkpoint",
        "summary",
        "finish",
    ]
    assert lines[1]["values"]["val/loss"] == VAL_LOSSES[4]
    assert lines[-2]["values"] == {"best/val_loss": VAL_LOSSES[4], "best/val_step": 4}


def test_context_manager_finishes_a_failed_run_with_exit_code_1(tmp_path):
    config = {"logging": {"project_name": "from-config", "experiment_name": "cfg", "tags": ["c"]}}
    model = torch.nn.Linear(3, 1)
    with (
        pytest.raises(RuntimeError, match="boom"),
        log_training_experiment(config, model, mode="offline", dir=tmp_path) as logger,
    ):
        logger.log_metrics(trainer_report(0))
        raise RuntimeError("boom")
    assert logger.finished
    run = read_run_history(tmp_path / "wandb", logger.run_id)
    assert (run.project, run.name, run.tags) == ("from-config", "cfg", ["c"])
    assert run.config["model_info"]["num_params"] == 4 and "system" in run.config
    assert run.exit_code == 1
    last = read_jsonl(logger.jsonl_path)[-1]
    assert (last["kind"], last["values"]) == ("finish", {"exit_code": 1})


def test_log_experiment_records_a_whole_run(tmp_path):
    run_id = log_experiment(
        "p", "imported", {"lr": 0.1}, history=[trainer_report(s) for s in range(3)],
        summary={"state": "complete"}, mode="disabled", dir=tmp_path,
    )  # fmt: skip
    lines = read_jsonl(tmp_path / "logs" / f"{run_id}.jsonl")
    assert [line["step"] for line in lines if line["kind"] == "metrics"] == [0, 1, 2]
    summaries = [line["values"] for line in lines if line["kind"] == "summary"]
    assert {"state": "complete"} in summaries


def test_mode_resolution(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    assert resolve_mode() == "offline"
    (tmp_path / "netrc").write_text("machine api.wandb.ai\n  login user\n  password x\n")
    assert resolve_mode() == "online"
    monkeypatch.setenv("WANDB_MODE", "dryrun")
    assert resolve_mode() == "offline"
    assert resolve_mode("disabled") == "disabled"
    with pytest.raises(ValueError, match="'offlne' is not one of online, offline, disabled"):
        resolve_mode("offlne")


def test_secret_names_and_values():
    assert all(map(is_secret_name, ["api_key", "WANDB_API_KEY", "hf_token", "dbPassword"]))
    assert not any(map(is_secret_name, ["max_tokens", "key_dim", "tokenizer", "secretary_id"]))
    assert sanitize({"a": ("x-SECRET-y", 1)}, ["SECRET"]) == {"a": ["<redacted>", 1]}
    assert sanitize({"t": torch.tensor([1.5, 2.0]), "n": torch.tensor(3)}) == {
        "t": [1.5, 2.0],
        "n": 3,
    }


def test_trainer_reports_read_back_under_their_wandb_keys(tmp_path):
    from trainer.config import load_config
    from trainer.train import train

    small = {"train.max_steps": 4, "train.log_every": 2, "train.eval_every": 4}
    small |= {"train.batch_size": 4, "train.eval_batches": 1, "train.sample_tokens": 4}
    config = load_config("tiny", small)
    reports = []
    with ExperimentLogger("p", "trainer", config=config, mode="offline", dir=tmp_path) as logger:

        def report(metrics):
            reports.append(dict(metrics))
            logger.log_metrics(metrics)

        result = train(config, report=report)
    run = read_run_history(tmp_path / "wandb", logger.run_id)
    assert [r["step"] for r in reports] == [2, 4] and len(run.history) == 2
    renamed = {"train_loss": "train/loss", "lr": "train/lr", "grad_norm": "train/grad_norm"}
    renamed |= {"val_loss": "val/loss", "val_perplexity": "val/perplexity"}
    renamed |= {"tokens_per_s": "perf/tokens_per_s", "memory_mb": "perf/memory_mb"}
    for sent, row in zip(reports, run.history, strict=True):
        for key, value in sent.items():
            assert row[renamed.get(key, wandb_key(key))] == pytest.approx(value), key
    assert run.config["model"]["d_model"] == config.model.d_model
    assert run.summary["best/val_loss"] == pytest.approx(result["best_val_loss"])
