"""The Program a spec resolves to, and everything that depends on its kind."""

from __future__ import annotations

import pytest
import yaml
from conftest import write_spec

from orchestrator.errors import UserError
from orchestrator.interop.export import export_wandb
from orchestrator.plan import expand, make_pruner
from orchestrator.programs import FunctionProgram, ScriptProgram, TrainerProgram
from orchestrator.spec import SpecError, load_spec

TRAINER_SEEDS = """
    name: seeds
    method: grid
    program: {program}
    seeds: 2
    metric: {{name: val_loss, goal: minimize}}
    trainer: {{train.max_steps: 4, train.eval_every: 2}}
    parameters:
      optimizer.lr: {{values: [0.001, 0.01]}}
"""


@pytest.mark.parametrize(
    "program", ["trainer", "-m trainer", "python -m trainer", "trainer.train:train"]
)
def test_every_name_of_the_trainer_is_the_trainer(tmp_path, program):
    spec = load_spec(write_spec(tmp_path, TRAINER_SEEDS.format(program=program)))
    default = load_spec(write_spec(tmp_path / "default", TRAINER_SEEDS.format(program="trainer")))
    assert spec.trial_program == default.trial_program == TrainerProgram("tiny", spec.trainer)
    # The seed goes where the trainer takes it, never as an unknown `seed` key.
    assert [t.overrides for t in expand(spec)] == [t.overrides for t in expand(default)]
    assert {t.overrides["train.seed"] for t in expand(spec)} == {0, 1}
    assert all("seed" not in t.overrides for t in expand(spec))
    assert spec.trial_program.label == "base tiny"


def test_no_program_and_a_command_running_the_trainer_are_the_trainer(tmp_path):
    none = load_spec(
        write_spec(tmp_path, "method: grid\nparameters: {optimizer.lr: {value: 0.01}}")
    )
    assert isinstance(none.trial_program, TrainerProgram)
    command = load_spec(
        write_spec(
            tmp_path / "command",
            "method: grid\ncommand: ['${env}', '${interpreter}', -m, trainer, '${args}']\n"
            "parameters: {optimizer.lr: {value: 0.01}}",
        )
    )
    assert isinstance(command.trial_program, TrainerProgram)


def test_the_trainer_checks_keys_that_other_programs_take_freely(tmp_path):
    text = "method: grid\nprogram: {program}\nparameters: {{optimizer.learning_rate: {{value: 1}}}}"
    with pytest.raises(SpecError, match="optimizer.learning_rate: not a key of the trainer"):
        load_spec(write_spec(tmp_path, text.format(program="trainer.train:train")))
    function = load_spec(write_spec(tmp_path / "f", text.format(program="sweep_programs:noop")))
    assert function.trial_program == FunctionProgram("sweep_programs:noop")


def test_seeds_reach_each_kind_as_it_takes_them(tmp_path):
    text = "method: grid\nprogram: {program}\nseeds: {seeds}\nparameters: {{x: {{value: 1}}}}"
    one = load_spec(
        write_spec(tmp_path / "one", text.format(program="sweep_programs:noop", seeds=1))
    )
    two = load_spec(
        write_spec(tmp_path / "two", text.format(program="sweep_programs:noop", seeds=2))
    )
    script = load_spec(write_spec(tmp_path / "s", text.format(program="train.py", seeds=2)))
    assert [t.overrides for t in expand(one)] == [{"x": 1}]
    assert [t.overrides["seed"] for t in expand(two)] == [0, 1]
    assert isinstance(script.trial_program, ScriptProgram)
    assert [t.overrides["seed"] for t in expand(script)] == [0, 1]


def test_a_callable_with_a_command_is_a_script_and_its_args_are_nested_as_wandb_passes_them():
    program = ScriptProgram("train.py", None, {"optimizer.lr": ("optimizer", "lr")})
    assert program.opens_own_run and program.template[-2:] == ["${program}", "${args}"]
    args = program.trial_arguments({"optimizer.lr": 0.1, "seed": 1})
    assert args == {"optimizer": {"lr": 0.1}, "seed": 1}
    assert TrainerProgram().trial_arguments({"a.b": 1}) == {"a.b": 1}


def test_a_script_that_cannot_start_is_refused_before_anything_runs(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        ScriptProgram("missing.py").check_ready(tmp_path / "spec.yaml", tmp_path)
    with pytest.raises(UserError, match="none is given"):
        ScriptProgram(None).check_ready(tmp_path / "spec.yaml", tmp_path)
    (tmp_path / "train.py").write_text("print(1)\n")
    ScriptProgram("train.py").check_ready(tmp_path / "spec.yaml", tmp_path)


def test_hyperband_counts_trainer_evaluations_and_other_programs_reports(tmp_path):
    text = (
        "method: random\nrun_cap: 2\nprogram: {program}\nmetric: {{name: {metric}}}\n"
        "early_terminate: {{type: hyperband, min_iter: 2}}\n"
        "trainer: {{train.eval_every: 5}}\nparameters: {{{key}: {{values: [32, 64]}}}}"
    )
    trainer = load_spec(
        write_spec(tmp_path, text.format(program="trainer", metric="val_loss", key="model.d_model"))
    )
    function = load_spec(
        write_spec(
            tmp_path / "f", text.format(program="sweep_programs:noop", metric="loss", key="x")
        )
    )
    assert trainer.trial_program.iteration_steps() == 5
    assert make_pruner(trainer)._min_resource == 10
    assert function.trial_program.iteration_steps() == 1
    assert make_pruner(function)._min_resource == 2


def test_each_kind_exports_to_wandb_as_an_agent_can_run_it(tmp_path):
    trainer = load_spec(write_spec(tmp_path, TRAINER_SEEDS.format(program="trainer.train:train")))
    raw = yaml.safe_load(trainer.path.read_text())
    config, _ = export_wandb(trainer, raw)
    assert config["command"][2:6] == ["-m", "trainer", "--preset", "tiny"]
    assert "program" not in config and config["parameters"]["train.seed"] == {"values": [0, 1]}
    function_text = "method: grid\nprogram: sweep_programs:noop\nparameters: {x: {value: 1}}"
    function = load_spec(write_spec(tmp_path / "f", function_text))
    with pytest.raises(UserError, match="is a Python function"):
        export_wandb(function, yaml.safe_load(function_text))
    script_text = "method: grid\nprogram: train.py\nbase: small\nparameters: {x: {value: 1}}"
    script = load_spec(write_spec(tmp_path / "s", script_text))
    config, warnings = export_wandb(script, yaml.safe_load(script_text))
    assert config["program"] == "train.py"
    assert any("base: left out" in line for line in warnings)


def test_plan_names_the_program(tmp_path, capsys):
    from orchestrator.cli import main

    path = write_spec(tmp_path, TRAINER_SEEDS.format(program="trainer.train:train"))
    assert main(["plan", str(path)]) == 0
    assert "base tiny" in capsys.readouterr().out
