"""A trial's GPU accounting, as `TrialResult` carries it: where it ran, what share of the
device it asked for, and what the program measured there (its final metrics, as the trainer
names them: `trainer.gpu`). All None for a trial that ran without GPUs."""

from __future__ import annotations

from typing import Any

from orchestrator.store import attrs

GPU_FIELDS = ("gpu_device", "gpu_share", "gpu_peak_memory_mb", "gpu_util", "tokens_per_s", "mfu")


def gpu_fields(stored: dict[str, Any]) -> dict[str, Any]:
    """`TrialResult`'s GPU fields from a trial's user attributes: the device (`<node>:<ids>`,
    the ids Ray gave it on that node) and share from its worker record, the figures from its
    final metrics."""
    worker = stored.get(attrs.WORKER) or {}
    final = stored.get(attrs.FINAL_METRICS) or {}
    ids = worker.get("gpu_ids")
    share = worker.get("gpus") or None
    return {
        "gpu_device": f"{stored.get(attrs.NODE) or '?'}:{','.join(ids)}" if ids else None,
        "gpu_share": share,
        "gpu_peak_memory_mb": _number(final.get("gpu_peak_memory_mb")),
        "gpu_util": _number(final.get("gpu_util_mean")),
        "tokens_per_s": _number(final.get("tokens_per_s")) if share else None,
        "mfu": _number(final.get("mfu")),
    }


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def compact(result: Any) -> str:
    """The GPU column of a table: `0 25% 3.1G 45% mfu 31%` (device, share, peak memory,
    utilisation, MFU), what is known of it; "" for a trial without a GPU."""
    if not result.gpu_share:
        return ""
    parts = [result.gpu_device.rpartition(":")[2] if result.gpu_device else "?"]
    parts.append(f"x{result.gpu_share:.2g}" if result.gpu_share < 1 else "x1")
    if result.gpu_peak_memory_mb is not None:
        parts.append(f"{result.gpu_peak_memory_mb / 1024:.1f}G")
    if result.gpu_util is not None:
        parts.append(f"{result.gpu_util:.0f}%")
    if result.mfu is not None:
        parts.append(f"mfu {100 * result.mfu:.0f}%")
    return " ".join(parts)


def gpu_totals(trials: list[Any]) -> dict[str, Any] | None:
    """The sweep's GPU accounting (`TrialResult`s): GPU-hours (wall time x the share each
    trial asked for), devices used, mean MFU and utilisation, the largest peak; None when no
    trial ran on a GPU."""
    hours_and_totals = _gpu_totals(trials)
    return hours_and_totals[1] if hours_and_totals else None


def _gpu_totals(trials: list[Any]) -> tuple[float, dict[str, Any]] | None:
    """`gpu_totals`, with the GPU-hours unrounded (for a line that rounds them once)."""
    on_gpu = [t for t in trials if t.gpu_share]
    if not on_gpu:
        return None
    hours = sum((t.elapsed_s or 0.0) * t.gpu_share for t in on_gpu) / 3600
    mfus = [t.mfu for t in on_gpu if t.mfu is not None]
    utils = [t.gpu_util for t in on_gpu if t.gpu_util is not None]
    peaks = [t.gpu_peak_memory_mb for t in on_gpu if t.gpu_peak_memory_mb is not None]
    return hours, {
        "trials": len(on_gpu),
        "devices": len({t.gpu_device for t in on_gpu if t.gpu_device}),
        "gpu_hours": float(f"{hours:.6g}"),  # (a small sweep: 0.00625, not 0.0062)
        "mean_mfu": round(sum(mfus) / len(mfus), 4) if mfus else None,
        "mean_util": round(sum(utils) / len(utils), 1) if utils else None,
        "max_peak_memory_mb": max(peaks) if peaks else None,
    }


def gpu_line(trials: list[Any]) -> str | None:
    """`gpu: 0.42 GPU-hours, 12 trials on 2 devices; MFU 31% mean, utilisation 78%, peak
    3.1 GiB`, or None when no trial ran on a GPU."""
    hours_and_totals = _gpu_totals(trials)
    if hours_and_totals is None:
        return None
    # Rounded once: 0.00968500004 kept to 6 digits first is 0.009685, which shows as 0.00968.
    hours, totals = hours_and_totals
    line = (
        f"gpu: {hours:.3g} GPU-hours (wall x share asked), {totals['trials']} "
        f"trials on {totals['devices']} device{'s' * (totals['devices'] != 1)}"
    )
    extra = []
    if totals["mean_mfu"] is not None:
        extra.append(f"MFU {100 * totals['mean_mfu']:.1f}% mean")
    if totals["mean_util"] is not None:
        extra.append(f"utilisation {totals['mean_util']:.0f}%")
    if totals["max_peak_memory_mb"] is not None:
        extra.append(f"peak {totals['max_peak_memory_mb'] / 1024:.1f} GiB")
    return line + ("; " + ", ".join(extra) if extra else "")
