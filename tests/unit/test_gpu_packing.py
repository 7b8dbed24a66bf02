"""`gpus: auto`'s packing arithmetic (`run.packing`) and the trainer's FLOPs and MFU
(`trainer.gpu`): pure functions, no Ray, no GPU."""

from __future__ import annotations

import dataclasses
import io
import json

import pytest
import torch
from rich.console import Console
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from orchestrator.results.summary import results_table
from orchestrator.run import packing
from orchestrator.run.display import LiveDisplay, TrialView, gpu_column
from orchestrator.run.packing import GpuPacker
from orchestrator.store import attrs
from orchestrator.store.gpu_usage import compact, gpu_line, gpu_totals
from orchestrator.store.results import TrialResult
from trainer.config import ModelConfig
from trainer.gpu import GpuMeter, flops_per_token, matmul_params, mfu, peak_flops
from trainer.model import TransformerLM

TINY = ModelConfig(vocab_size=16, context_length=8, d_model=4, num_layers=2, num_heads=2, d_ff=8)


def test_flops_per_token_by_hand():
    # Per block: qkv 4x12 + out 4x4 = 64, SwiGLU w1, w3 4x8 and w2 8x4 = 96; head 4x16 = 64.
    assert matmul_params(TINY) == 2 * (64 + 96) + 64 == 384
    # 6 x 384, plus attention 12 x 2 layers x 8 context x 4 d_model.
    assert flops_per_token(TINY) == 6 * 384 + 12 * 2 * 8 * 4 == 3072
    model = TransformerLM(TINY)
    embedding_and_norms = 16 * 4 + 2 * 2 * 4 + 4
    assert model.num_params() == matmul_params(TINY) + embedding_and_norms


@pytest.mark.parametrize("ffn", ["swiglu", "gelu"])
def test_flops_per_token_is_what_torch_counts(ffn):
    """A forward and backward pass over one full window, counted by torch's FLOP counter
    (attention by its math kernel: the counter does not see the CPU's fused one)."""
    config = ModelConfig(
        vocab_size=64, context_length=16, d_model=32, num_layers=2, num_heads=4, ffn=ffn
    )
    model = TransformerLM(config)
    ids = torch.randint(0, 64, (2, 16))
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        model(ids).sum().backward()
    assert counter.get_total_flops() / ids.numel() == pytest.approx(flops_per_token(config))


def test_mfu_and_the_peak_table():
    assert (
        peak_flops("NVIDIA H100 PCIe") == 756e12 and peak_flops("NVIDIA H100 80GB HBM3") == 989e12
    )
    assert peak_flops("NVIDIA H200") == 989e12 and peak_flops("NVIDIA A100-SXM4-80GB") == 312e12
    assert peak_flops(None) is None and peak_flops("Some Future GPU") is None
    assert mfu(1e6, 3e8, "NVIDIA H200") == pytest.approx(1e6 * 3e8 / 989e12)
    assert mfu(1e6, 3e8, None) is None and mfu(None, 3e8, "NVIDIA H200") is None


def test_a_cpu_run_measures_no_gpu():
    meter = GpuMeter(torch.device("cpu"))
    assert meter.sample() == {}
    summary = meter.summary(tokens=1000, seconds=2.0, flops=3072.0)
    assert summary["tokens_per_s"] == 500.0 and summary["flops_per_token"] == 3072.0
    assert summary["gpu_name"] is summary["mfu"] is summary["gpu_peak_memory_mb"] is None


def test_trials_per_device():
    # 90% of 80 GiB over (peak + a CUDA context): 73728 / (8704 + 512) = 8.0
    assert packing.trials_per_device(8704, 81920, cap=16) == 8
    assert packing.trials_per_device(8705, 81920, cap=16) == 7
    assert packing.trials_per_device(100, 81920, cap=8) == 8  # the cap
    assert packing.trials_per_device(100_000, 81920) == 1  # fits nowhere: still runs alone
    assert packing.trials_per_device(100, 0) == 1


@pytest.mark.parametrize("k", [1, 2, 3, 4, 6, 7, 8, 16])
def test_shares_fit_k_to_a_device_in_rays_steps(k):
    share = packing.share_of(k)
    assert round(share * 10_000) == share * 10_000  # a whole number of Ray's 1e-4 steps
    assert k * share <= 1.0 < (k + 1) * share or k == 1
    assert packing.packed_on(share) == k


def test_the_packer_measures_then_packs_then_backs_off():
    packer = GpuPacker(cap=8)
    assert packer.share(0) == 1.0  # nothing measured: a device to itself
    assert not packer.on_report(0, {"step": 10, "train_loss": 3.0})  # a CPU-style report
    assert packer.on_report(0, {"gpu_peak_memory_mb": 20_000 - 512, "gpu_total_memory_mb": 81920})
    assert packer.per_device == 3 and packer.share(1) == 0.3333 and packer.measured_by == 0
    # A larger peak reported later lowers it; a smaller one does not raise it again.
    packer.on_report(1, {"gpu_peak_memory_mb": 30_000, "gpu_total_memory_mb": 81920})
    packer.on_report(2, {"gpu_peak_memory_mb": 10, "gpu_total_memory_mb": 81920})
    assert packer.per_device == 2
    # A packed trial out of memory: run again alone, and one fewer per device from now on.
    assert packer.on_out_of_memory(2, share=0.5)
    assert packer.share(2) == 1.0 and packer.per_device == 1 and packer.cap == 1
    assert not packer.on_out_of_memory(2, share=1.0)  # alone and still out of memory: fails
    assert "1 trial per GPU" in packer.describe()


def test_out_of_memory_is_recognised():
    class OutOfMemoryError(RuntimeError):  # torch.OutOfMemoryError, known by its name
        pass

    assert packing.is_out_of_memory(torch.OutOfMemoryError("CUDA out of memory. Tried ..."))
    wrapped = RuntimeError("trial failed")
    wrapped.__cause__ = OutOfMemoryError("x")
    assert packing.is_out_of_memory(wrapped)
    assert packing.is_out_of_memory(None, "RuntimeError: CUDA error: out of memory")
    assert not packing.is_out_of_memory(ValueError("lr must be positive"))
    assert not packing.is_out_of_memory(MemoryError("host memory"))


def _trial(number: int, worker: dict | None, final: dict | None, elapsed: float = 3600.0):
    from optuna.distributions import FloatDistribution
    from optuna.trial import TrialState, create_trial

    stored = {attrs.NODE: "10.0.0.5", attrs.STARTED_AT: 100.0, attrs.ENDED_AT: 100.0 + elapsed}
    stored |= {attrs.WORKER: worker} if worker else {}
    stored |= {attrs.FINAL_METRICS: final} if final else {}
    trial = create_trial(
        state=TrialState.COMPLETE,
        value=1.0,
        params={"x": 0.5},
        distributions={"x": FloatDistribution(0, 1)},
        user_attrs=stored,
    )
    trial.number = number
    return TrialResult.from_trial(trial)


def test_gpu_accounting_per_trial_and_for_the_sweep():
    final = {"gpu_peak_memory_mb": 3174.4, "gpu_util_mean": 81.0, "tokens_per_s": 2e5}
    final |= {"mfu": 0.3, "gpu_name": "NVIDIA H200"}
    packed = {"node_id": "n", "pid": 1, "cpus": 1.0, "gpus": 0.25, "gpu_ids": ["1"]}
    alone = packed | {"gpus": 1.0, "gpu_ids": ["0"]}
    results = [_trial(0, alone, final), _trial(1, packed, final), _trial(2, packed, None)]
    first = results[0]
    assert (first.gpu_device, first.gpu_share, first.mfu) == ("10.0.0.5:0", 1.0, 0.3)
    assert (first.gpu_peak_memory_mb, first.gpu_util, first.tokens_per_s) == (3174.4, 81.0, 2e5)
    assert results[2].gpu_share == 0.25 and results[2].mfu is None  # pruned: no final metrics
    assert compact(results[1]) == "1 x0.25 3.1G 81% mfu 30%"
    assert json.loads(json.dumps(first.to_dict()))["gpu_device"] == "10.0.0.5:0"
    totals = gpu_totals(results)
    assert totals["gpu_hours"] == 1.5 and totals["devices"] == 2 and totals["mean_mfu"] == 0.3
    assert gpu_line(results).startswith("gpu: 1.5 GPU-hours (wall x share asked), 3 trials on 2")
    # Rounded once: 0.00968500004 h shows as 0.00969, not (kept to 6 digits first) 0.00968.
    near_a_tie = dataclasses.replace(first, elapsed_s=0.00968500004 * 3600)
    assert gpu_line([near_a_tie]).startswith("gpu: 0.00969 GPU-hours")


def test_a_cpu_trial_has_no_gpu_accounting():
    cpu = _trial(0, {"node_id": "n", "pid": 1, "cpus": 1.0, "gpus": 0.0}, {"tokens_per_s": 9.0})
    assert cpu.gpu_device is cpu.gpu_share is cpu.mfu is cpu.tokens_per_s is None
    assert compact(cpu) == "" and gpu_totals([cpu]) is None and gpu_line([cpu]) is None
    table = results_table("s", "loss", "minimize", [cpu])
    assert [c.header for c in table.columns][-1] == "reason"  # no gpu column


def test_the_live_tables_gpu_column():
    view = TrialView(3, {"x": 1})
    assert not packing.on_event(None, view, {"event": "started", "started_at": 0.0})
    assert view.gpu == {} and gpu_column(view.gpu) == ""  # no GPU: no column
    packing.on_event(None, view, {"event": "started", "gpu_ids": ["1"], "gpus": 0.25})
    reports = [{"step": 1, "gpu_peak_memory_mb": 2048.0, "gpu_util": 64.0}]
    packer = GpuPacker()
    assert not packing.on_event(packer, view, {"event": "metrics", "reports": reports})
    assert gpu_column(view.gpu) == "1 x0.25 2.0G 64%"
    live = LiveDisplay(Console(file=io.StringIO(), width=160))
    live.update(view, "metrics")
    live.console.print(live.render())
    assert (
        "gpu" in live.console.file.getvalue() and "1 x0.25 2.0G 64%" in live.console.file.getvalue()
    )
    reports[0]["gpu_total_memory_mb"] = 81920.0  # the packer learns only with the device size
    assert packing.on_event(packer, view, {"event": "metrics", "reports": reports})
    assert packer.per_device == 8
