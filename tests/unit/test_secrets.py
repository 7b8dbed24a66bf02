"""Secrets: which names are secrets, `${envvar:NAME}` resolved only for the program, every
shown trial redacted, and captured output redacted and capped."""

from __future__ import annotations

import io
import sys
import time

import optuna
import pytest
from optuna.distributions import CategoricalDistribution

from orchestrator.programs.base import TrialRequest
from orchestrator.programs.function import FunctionProgram
from orchestrator.programs.output import HEAD_BYTES, TAIL_BYTES, OutputLog, captured_output
from orchestrator.run.display import PlainDisplay, TrialView
from orchestrator.store import TrialResult, attrs
from orchestrator.tracking.redact import (
    EnvvarNotSet,
    expand_envvars,
    is_secret_name,
    redact_text,
    secret_values,
)

TOKEN = "s3cr3t-value-123"


def test_secret_names():
    secret = ["api_key", "WANDB_API_KEY", "hf_token", "dbPassword", "db_password_hash"]
    secret += ["client_secret", "secret_key_base", "smtp_passwd"]
    assert all(map(is_secret_name, secret))
    harmless = ["max_tokens", "key_dim", "tokenizer", "secretary_id", "token_count", "keys"]
    harmless += ["flops_per_token", "final/flops_per_token", "loss_per_token"]  # units
    assert not any(map(is_secret_name, harmless))


def test_secret_values_are_cut_out_of_text(monkeypatch):
    monkeypatch.setenv("MY_SERVICE_TOKEN", "env-secret-42")
    found = secret_values({"hf_token": TOKEN, "x": "not-a-secret", "auth": {"key": "abc"}})
    assert TOKEN in found and "env-secret-42" in found and "not-a-secret" not in found
    assert "abc" not in found  # too short to search for in free text
    text = f"ValueError: bad token {TOKEN} (env-secret-42)"
    assert redact_text(text, found) == "ValueError: bad token <redacted> (<redacted>)"
    assert redact_text(text.encode(), [s.encode() for s in found]).count(b"<redacted>") == 2


def test_envvar_parameters_are_resolved_for_the_program_only():
    environ = {"HF_TOKEN": TOKEN, "DATA": "/data"}
    value, used = expand_envvars({"a": "${envvar:HF_TOKEN}", "b": ["${envvar:DATA}/x", 3]}, environ)
    assert value == {"a": TOKEN, "b": ["/data/x", 3]} and used == [TOKEN, "/data"]

    request = TrialRequest(0, FunctionProgram("m:f"), {"auth": "${envvar:HF_TOKEN}", "lr": 0.1}, "")
    resolved = request.resolved(environ)
    assert resolved.overrides == {"auth": TOKEN, "lr": 0.1}
    assert request.overrides["auth"] == "${envvar:HF_TOKEN}"  # what the controller stores
    assert TOKEN in resolved.secrets  # kept out of the trial's output, whatever its name
    with pytest.raises(EnvvarNotSet, match=r"auth: \$\{envvar:HF_TOKEN\}: HF_TOKEN is not set"):
        request.resolved({})


def test_a_trial_is_shown_with_its_secrets_redacted():
    study = optuna.create_study()
    params = {"hf_token": TOKEN, "lr": 0.1, "db": "${envvar:DB_URL}"}
    trial = optuna.trial.create_trial(
        params=params,
        distributions={k: CategoricalDistribution([v]) for k, v in params.items()},
        state=optuna.trial.TrialState.FAIL,
        user_attrs={
            attrs.FAILURE_REASON: f"ValueError: refused {TOKEN}",
            attrs.TRACEBACK: f"Traceback ...\nValueError: refused {TOKEN}",
            attrs.FINAL_METRICS: {"loss": 0.5, "echo": TOKEN},
        },
    )
    study.add_trial(trial)
    shown = TrialResult.from_trial(study.get_trials()[0])
    assert shown.params == {"hf_token": "<redacted>", "lr": 0.1, "db": "${envvar:DB_URL}"}
    assert shown.reason == "ValueError: refused <redacted>"
    assert TOKEN not in shown.traceback and shown.final_metrics["echo"] == "<redacted>"
    assert study.get_trials()[0].params["hf_token"] == TOKEN  # the store keeps it

    stream = io.StringIO()
    reason = f"ValueError: refused {TOKEN}"
    view = TrialView(0, {"hf_token": TOKEN, "lr": 0.1}, state="fail", reason=reason)
    PlainDisplay(stream).update(view, "finished")
    assert TOKEN not in stream.getvalue() and "hf_token=<redacted> lr=0.1" in stream.getvalue()


def test_output_is_redacted_and_keeps_only_its_head_and_tail(tmp_path):
    path = tmp_path / "output.log"
    log = OutputLog(path, [TOKEN])
    log.write(f"first line, token {TOKEN}\n".encode())
    block = (b"noise " * 170 + b"\n") * 1024
    began = time.monotonic()
    for _ in range(50):  # 50 MiB
        log.write(block)
    log.write(f"last line, token {TOKEN[:5]}".encode())
    log.write(f"{TOKEN[5:]} without a newline".encode())
    log.close()
    assert time.monotonic() - began < 10
    data = path.read_bytes()
    assert len(data) <= HEAD_BYTES + TAIL_BYTES + 100 and TOKEN.encode() not in data
    assert data.startswith(b"first line, token <redacted>\n")
    assert data.endswith(b"last line, token <redacted> without a newline\n")
    assert data.count(b"bytes of output left out ...]") == 1


def test_prints_are_captured_while_a_program_runs(tmp_path):
    path = tmp_path / "output.log"
    with captured_output(path, [TOKEN]):
        print("token", TOKEN)
        print("to stderr", file=sys.stderr)
        sys.stdout.buffer.write(b"bytes too\n")
    print("not captured")
    assert path.read_text() == "token <redacted>\nto stderr\nbytes too\n"
