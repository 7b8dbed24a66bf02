"""What a person reads agrees with the store: whole values, distinct names, a named study."""

from __future__ import annotations

import io

from conftest import write_spec
from rich.console import Console

from orchestrator import store
from orchestrator.format import format_params, output_console
from orchestrator.plan import expand
from orchestrator.results.summary import results_table
from orchestrator.run.setup import open_study
from orchestrator.spec import load_spec


def test_nested_parameters_that_share_a_leaf_keep_their_full_names():
    assert format_params({"encoder.lr": 0.1, "decoder.lr": 0.2, "model.d_model": 32}) == (
        "encoder.lr=0.1 decoder.lr=0.2 d_model=32"
    )


def test_a_narrow_or_piped_table_wraps_values_and_never_cuts_them():
    params = {"ablation": "no_rmsnorm", "optimizer.lr": 0.000444444, "seed": 1}
    trial = store.TrialResult(3, "complete", params, 1.25, 1.2, 100)
    out = io.StringIO()
    Console(file=out, width=50).print(results_table("abl", "val_loss", "minimize", [trial]))
    rows = [line.split("│") for line in out.getvalue().splitlines() if line.count("│") > 2]
    column = "".join(row[2].strip() for row in rows)  # the params cells, line by line
    assert column == "ablation=no_rmsnormlr=0.0004444seed=1"
    assert "…" not in out.getvalue()


def test_a_table_piped_to_a_file_keeps_each_trial_on_one_line(capsys, monkeypatch):
    """A file has no width: piped (pytest's captured stdout is no terminal), the results table
    keeps its natural width, so no number is folded over two lines; COLUMNS still rules."""
    params = {"model.d_model": 128, "model.num_layers": 4, "optimizer.lr": 0.000444444}
    trials = [
        store.TrialResult(n, "complete", params | {"seed": n}, 1.234567 + n, 1.2, 1000)
        for n in range(3)
    ]
    table = lambda: results_table("wide", "val_loss", "minimize", trials)  # noqa: E731
    monkeypatch.delenv("COLUMNS", raising=False)
    output_console().print(table())
    piped = capsys.readouterr().out
    rows = [[cell.strip() for cell in line.split("│")] for line in piped.splitlines()]
    for n in range(3):
        whole = ["", str(n), f"d_model=128 num_layers=4 lr=0.0004444 seed={n}", "complete"]
        assert whole + [f"{1.234567 + n:.4g}"] in [row[:5] for row in rows]
    assert max(len(line) for line in piped.splitlines()) > 80 and "\x1b[" not in piped

    monkeypatch.setenv("COLUMNS", "60")
    output_console().print(table())
    narrow = capsys.readouterr().out
    assert max(len(line) for line in narrow.splitlines()) <= 60


def test_a_new_study_carries_the_metric_name_and_the_sweep(tmp_path):
    text = "method: grid\nprogram: sweep_programs:noop\nmetric: {name: loss}\nparameters: {x: {values: [1, 2]}}"
    spec = load_spec(write_spec(tmp_path, text))
    study, _ = open_study(spec, tmp_path / "runs" / spec.name, expand(spec), [], 2)
    assert study.metric_names == ["loss"]
    assert (
        study.user_attrs["sweep"] == spec.name and "sweep_programs:noop" in study.user_attrs["spec"]
    )
