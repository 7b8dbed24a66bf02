"""A W&B script's side that runs without a process: macros, arguments, printed metrics."""

from __future__ import annotations

import json
import sys

import pytest

from orchestrator.programs import ScriptProgram, script_run


def test_each_macro_expands_as_the_wandb_agent_does():
    args = {"lr": 0.01, "opt": "adam", "amp": False, "fused": True, "net": {"depth": 2}}

    def expand_macro(*template: str) -> list[str]:
        return script_run.expand_command(
            list(template), program="train.py", args=args, args_json_file="/p.json", environ={}
        )

    assert expand_macro("${args}") == [
        "--lr=0.01",
        "--opt=adam",
        "--amp=False",
        "--fused=True",
        "--net={'depth': 2}",  # what W&B's agent passes for a nested parameter
    ]
    assert expand_macro("${args_no_hyphens}")[:2] == ["lr=0.01", "opt=adam"]
    assert expand_macro("${args_no_equals}")[:4] == ["--lr", "0.01", "--opt", "adam"]
    assert expand_macro("${args_no_boolean_flags}")[2:4] == ["--fused", "--net={'depth': 2}"]
    assert json.loads(expand_macro("${args_json}")[0]) == args
    assert expand_macro("${args_json_file}") == ["/p.json"]
    assert expand_macro("${args_append_hydra}")[0] == "+lr=0.01"
    assert expand_macro("${args_override_hydra}")[0] == "++lr=0.01"
    assert expand_macro("${env}", "${interpreter}", "${program}") == [
        "/usr/bin/env",
        sys.executable,
        "train.py",
    ]
    with pytest.raises(script_run.ScriptFailed, match="DATA is not set"):
        script_run.expand_command(
            ["--data=${envvar:DATA}"], program=None, args={}, args_json_file="", environ={}
        )


def test_nested_parameters_are_passed_as_wandb_passes_them():
    paths = {"optimizer.lr": ("optimizer", "lr"), "model.d_model": ("model.d_model",)}
    overrides = {"optimizer.lr": 0.1, "model.d_model": 32, "seed": 1}
    assert ScriptProgram("train.py", None, paths).trial_arguments(overrides) == {
        "optimizer": {"lr": 0.1},
        "model.d_model": 32,
        "seed": 1,
    }


def test_printed_metric_lines():
    parse = script_run.parse_metric_line
    assert parse('{"step": 3, "loss": 0.25, "val": {"acc": 0.5}, "note": "x"}') == {
        "step": 3,
        "loss": 0.25,
        "val.acc": 0.5,
    }
    assert parse("step=3 loss=0.25") == {"step": 3.0, "loss": 0.25}
    assert parse("step=3, loss=0.25") == {"step": 3.0, "loss": 0.25}
    for line in ("epoch 3 done", "loss=low", "saving to a=b.pt", "[1, 2]", "{not json", ""):
        assert parse(line) is None, line
