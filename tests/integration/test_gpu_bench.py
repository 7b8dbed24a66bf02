"""`bench/gpu.py --smoke`: the GPU benchmark runs end to end on a CPU, importing neither Ray,
Optuna, wandb nor pydantic (the GPU machine has none of them), and writes every part's
figures."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import ROOT

NOT_THERE = "import sys; sys.modules.update(ray=None, optuna=None, wandb=None, pydantic=None)"


def test_the_gpu_benchmark_smoke_run_needs_only_torch_and_the_trainer(tmp_path):
    out = tmp_path / "figures.json"
    script = f"{NOT_THERE}; import runpy; runpy.run_path('bench/gpu.py', run_name='__main__')"
    done = subprocess.run(
        [sys.executable, "-c", script, "--smoke", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    figures = json.loads(out.read_text())
    parts = figures["parts"]
    assert set(parts) == {"train_vs_bare", "compile", "packing"}
    assert not [name for name, part in parts.items() if "error" in part], parts
    for name in ("train_vs_bare", "compile"):
        assert parts[name]["bare"]["tokens_per_s"] > 0 and parts[name]["train"]["tokens_per_s"]
        assert parts[name]["train"]["mfu"] is None  # a CPU has no bf16 peak in the table
    rows = parts["packing"]["rows"]
    assert [row["at_once"] for row in rows] == [1, 2] and all(r["trials"] == 2 for r in rows)
    assert "trials/GPU-hour" in done.stdout
