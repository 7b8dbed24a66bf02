"""Bad input is refused before anything runs: one line naming file, line and key, exit 2."""

from __future__ import annotations

import time

import pytest
from conftest import write_spec

from orchestrator import cli
from orchestrator.results.summary import failure_line
from orchestrator.store import TrialResult


def plan_error(capsys, path) -> str:
    """`orchestrate plan PATH` must exit 2 with exactly one line; returns it."""
    assert cli.main(["plan", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "Traceback" not in err[0]
    return err[0]


def test_a_binary_file_is_no_spec(tmp_path, capsys):
    path = tmp_path / "spec.yaml"
    path.write_bytes(b"method: grid\nname: \xff\xfe\x00binary\n")
    assert plan_error(capsys, path) == f"{path}:2: not UTF-8 text (byte 19); is this a spec?"


def test_a_yaml_alias_bomb_is_refused_at_once(tmp_path, capsys):
    lines = ["method: grid", 'a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for level in range(1, 9):
        aliases = ", ".join([f"*a{level - 1}"] * 9)
        lines.append(f"a{level}: &a{level} [{aliases}]")
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    began = time.monotonic()
    line = plan_error(capsys, path)
    assert time.monotonic() - began < 10
    assert "expands to more than 100,000 values (YAML aliases?)" in line


@pytest.mark.parametrize("nesting", ["flow", "block"])
def test_nesting_500_deep_is_refused_without_a_traceback(tmp_path, capsys, nesting):
    if nesting == "flow":
        text = "method: grid\nx: " + "[" * 500 + "]" * 500 + "\n"
    else:
        text = "method: grid\n" + "".join("  " * i + f"k{i}:\n" for i in range(500)) + "  v\n"
    path = tmp_path / "deep.yaml"
    path.write_text(text)
    assert "nests deeper than 64 levels" in plan_error(capsys, path)


def test_a_huge_file_is_refused_unread(tmp_path, capsys):
    path = tmp_path / "huge.yaml"
    path.write_text("method: grid\n" + "# padding\n" * 200_000)
    assert "a spec may have 1,048,576" in plan_error(capsys, path)


@pytest.mark.parametrize(
    ("metric", "suggestion"), [("val/loss", "val_loss"), ("val_los", "val_loss")]
)
def test_a_metric_the_trainer_never_reports(tmp_path, capsys, metric, suggestion):
    text = (
        f"method: grid\nmetric: {{name: {metric}}}\nparameters: {{optimizer.lr: {{value: 0.01}}}}"
    )
    path = write_spec(tmp_path, text)
    line = plan_error(capsys, path)
    assert line == (
        f"{path}:2: metric.name: the shared trainer never reports '{metric}'; "
        f"did you mean '{suggestion}'?"
    )


def test_a_function_program_must_exist_before_anything_runs(tmp_path, capsys):
    text = "method: grid\nprogram: {program}\nparameters: {{x: {{value: 1}}}}\n"
    missing = write_spec(tmp_path / "a", text.format(program="no_such_module:train"))
    line = plan_error(capsys, missing)
    assert line.startswith(f"{missing}:2: program: cannot import no_such_module from ")
    no_function = write_spec(tmp_path / "b", text.format(program="sweep_programs:no_such"))
    assert plan_error(capsys, no_function).endswith("sweep_programs.py has no function no_such")
    assert (
        cli.main(
            ["plan", str(write_spec(tmp_path / "c", text.format(program="sweep_programs:noop")))]
        )
        == 0
    )


def test_did_you_mean_knows_initials(tmp_path, capsys):
    text = "method: grid\nparameters:\n  optimizer.learning_rate: {values: [0.01]}\n"
    line = plan_error(capsys, write_spec(tmp_path, text))
    assert line.endswith(
        "parameters.optimizer.learning_rate: not a key of the trainer config; "
        "did you mean 'optimizer.lr'?"
    )


def test_options_and_overrides_mix_in_any_order(tmp_path, capsys):
    path = write_spec(tmp_path, "method: grid\nparameters: {optimizer.lr: {values: [0.1, 0.2]}}")
    assert cli.main(["plan", str(path), "--json", "run_cap=1"]) == 0
    assert '"run_cap": 1' in capsys.readouterr().out
    # `orchestrate SPEC --address X key=value`: the address is taken (and refused, unreachable).
    runs = str(tmp_path / "runs")
    assert cli.main([str(path), "--address", "127.0.0.1:9", "run_cap=1", "--runs", runs]) == 2
    err = capsys.readouterr().err
    assert "cannot join the Ray cluster at 127.0.0.1:9" in err and "unrecognized" not in err


def test_an_unreachable_ray_client_address_fails_at_once_with_its_reason(tmp_path, capsys):
    path = write_spec(tmp_path, "method: grid\nparameters: {optimizer.lr: {values: [0.1]}}")
    began = time.monotonic()
    runs = str(tmp_path / "runs")
    assert cli.main([str(path), "--address", "ray://127.0.0.1:9", "--runs", runs]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "cannot join the Ray cluster at ray://127.0.0.1:9: [Errno 111] Connection refused"
    ]
    assert time.monotonic() - began < 10


def test_one_line_sums_up_why_trials_failed():
    def result(number, state, reason=None):
        return TrialResult(number, state, {}, None, None, None, reason=reason)

    trials = [
        result(0, "complete"),
        result(1, "fail", "diverged"),
        result(2, "fail", "ValueError: bad\nmore"),
        result(3, "fail", "diverged"),
    ]
    assert failure_line(trials) == "3 of 4 trials failed: diverged (2); ValueError: bad (1)"
    assert failure_line(trials[:1]) is None


def test_ten_thousand_mistakes_show_the_first_fifty_and_a_count(tmp_path, capsys):
    lines = ["name: many", "method: grid", "parameters:", "  optimizer.lr: {values: [0.1]}"]
    lines += [f"bad_key_{i}: 1" for i in range(10_000)]
    path = tmp_path / "many.yaml"
    path.write_text("\n".join(lines) + "\n")
    assert cli.main(["plan", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == cli.MAX_ERROR_LINES + 1
    assert err[0] == f"{path}:5: bad_key_0: unknown key"
    shown, more = cli.MAX_ERROR_LINES, int(err[-1].split()[2])
    assert err[-1] == f"... and {more} more" and shown + more >= 10_000


@pytest.mark.parametrize(
    "words, refusal",
    [
        (["--num-cpus", "-1"], "argument --num-cpus: must be a number >= 0, not '-1'"),
        (["--num-gpus", "nan"], "argument --num-gpus: must be a number >= 0, not 'nan'"),
        (["--num-cpus", "two"], "argument --num-cpus: must be a number >= 0, not 'two'"),
    ],
)
def test_a_number_out_of_range_is_refused_before_anything_runs(tmp_path, capsys, words, refusal):
    # `--num-cpus -1` reached ray.init and ended in Ray's traceback, exit 1, with runs/<sweep>
    # already made; before or after the spec, the option is argparse's exit 2 naming it.
    path = write_spec(tmp_path, "method: grid\nparameters: {optimizer.lr: {values: [0.1]}}")
    runs = tmp_path / "runs"
    for argv in ([str(path), *words], [*words, str(path)], ["run", str(path), *words]):
        with pytest.raises(SystemExit) as exit_:
            cli.main([*argv, "--runs", str(runs)])
        assert exit_.value.code == 2
        err = capsys.readouterr().err
        assert err.strip().splitlines()[-1] == f"orchestrate run: error: {refusal}"
        assert "Traceback" not in err
    assert not runs.exists()


@pytest.mark.parametrize(
    "argv, refusal",
    [
        (["agent", "e/p/s", "--workers", "0"], "--workers: must be a whole number >= 1, not '0'"),
        (["agent", "e/p/s", "--count", "-3"], "--count: must be a whole number >= 1, not '-3'"),
        (["agent", "e/p/s", "--cpus", "inf"], "--cpus: must be a number >= 0, not 'inf'"),
        (["dashboard", "runs/x", "--port", "70000"], "--port: must be a port from 1 to 65535"),
    ],
)
def test_the_other_commands_numbers_are_checked_too(capsys, argv, refusal):
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    assert exit_.value.code == 2
    assert refusal in capsys.readouterr().err


def test_options_may_come_before_the_command(tmp_path, capsys):
    # `orchestrate --runs R status` said "invalid choice: 'R'": the command is found after them.
    runs = tmp_path / "nowhere"
    assert cli.main(["--runs", str(runs), "status"]) == 0
    assert f"no sweeps under {runs}/" in capsys.readouterr().out
