"""What a run costs on its device: FLOPs per token, MFU, peak memory and utilisation.

FLOPs per token (training: forward and backward) count the matrix multiplies, PaLM's way
(Chowdhery et al. 2022, appendix B): 6 x the parameters that multiply each token (every
block's attention and feed-forward projections and the output head; not the embedding, a
lookup, nor norms) plus 12 x layers x context x d_model for attention's scores and weighted
sum. Causal attention's masked half is counted, as PaLM does. MFU is the achieved FLOP rate
(tokens/s x FLOPs per token) over the device's dense bf16 peak, from a table of known devices:
None on the CPU or a device not in the table.

Memory is torch's caching allocator's peak reservation (what neighbours on the device cannot
use); utilisation is NVML's device-wide figure (all processes on the device, sampled at each
logged step), None where NVML (`pynvml`) is missing.
"""

from __future__ import annotations

from typing import Any

import torch

from trainer.config import ModelConfig, resolved_d_ff

# Dense bf16 peak FLOP/s by the vendors' datasheets, matched against the device's name,
# longest name first ("H100 PCIe" before "H100").
BF16_PEAK_FLOPS: dict[str, float] = {
    "H100 PCIe": 756e12,
    "H100 NVL": 835e12,
    "H100": 989e12,
    "H200": 989e12,
    "H800": 989e12,
    "GH200": 989e12,
    "B200": 2250e12,
    "A100": 312e12,
    "A800": 312e12,
    "L40S": 362e12,
    "L4": 121e12,
    "A10G": 70e12,
    "A10": 125e12,
    "RTX 4090": 165e12,
    "RTX 3090": 71e12,
}


def matmul_params(m: ModelConfig) -> int:
    """The parameters that multiply each token: attention and feed-forward projections of
    every block, and the output head."""
    d_ff = resolved_d_ff(m)
    ffn = 3 * m.d_model * d_ff if m.ffn == "swiglu" else 2 * m.d_model * (3 * d_ff // 2)
    attention = 4 * m.d_model * m.d_model  # qkv and the output projection
    return m.num_layers * (attention + ffn) + m.d_model * m.vocab_size


def flops_per_token(m: ModelConfig) -> float:
    """Training FLOPs per token (forward + backward; module docstring)."""
    return 6.0 * matmul_params(m) + 12.0 * m.num_layers * m.context_length * m.d_model


def peak_flops(device_name: str | None) -> float | None:
    """The device's dense bf16 peak, or None for one not in the table."""
    if not device_name:
        return None
    for name in sorted(BF16_PEAK_FLOPS, key=len, reverse=True):
        if name in device_name:
            return BF16_PEAK_FLOPS[name]
    return None


def mfu(tokens_per_s: float | None, flops: float, device_name: str | None) -> float | None:
    """Model FLOPs utilisation: achieved over peak, None when either is unknown."""
    peak = peak_flops(device_name)
    if peak is None or not tokens_per_s:
        return None
    return tokens_per_s * flops / peak


class GpuMeter:
    """One run's device: sampled at logged steps, summed up in the final metrics."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        self.device = device
        self.name = torch.cuda.get_device_name(device) if self.cuda else None
        total = torch.cuda.get_device_properties(device).total_memory if self.cuda else 0
        self.total_mb = total / 2**20 if self.cuda else None
        self.utilisation: list[float] = []
        self.nvml = self.cuda and _nvml_works(device)

    def sample(self) -> dict[str, Any]:
        """A logged step's figures (none on the CPU): peak memory so far, the device's size,
        its utilisation now."""
        if not self.cuda:
            return {}
        figures: dict[str, Any] = {
            "gpu_peak_memory_mb": round(torch.cuda.max_memory_reserved(self.device) / 2**20, 1),
            "gpu_total_memory_mb": round(self.total_mb or 0.0, 1),
        }
        if self.nvml:
            try:
                util = float(torch.cuda.utilization(self.device))
            except Exception:  # NVML gone away mid-run: stop asking
                self.nvml = False
            else:
                self.utilisation.append(util)
                figures["gpu_util"] = util
        return figures

    def summary(self, tokens: int, seconds: float, flops: float) -> dict[str, Any]:
        """The run's GPU accounting for its final metrics: None where not measurable."""
        tokens_per_s = tokens / seconds if seconds > 0 and tokens else None
        util = self.utilisation
        return {
            "gpu_name": self.name,
            "gpu_peak_memory_mb": self.sample().get("gpu_peak_memory_mb"),
            "gpu_util_mean": round(sum(util) / len(util), 1) if util else None,
            "tokens_per_s": tokens_per_s,
            "flops_per_token": flops,
            "mfu": mfu(tokens_per_s, flops, self.name),
        }


def _nvml_works(device: torch.device) -> bool:
    try:
        torch.cuda.utilization(device)
    except Exception:  # no pynvml, or no NVML in this container
        return False
    return True
