"""The parts of experiment logging that need no open run.

Which wandb mode a run gets (online only where an API key is configured) and its id; the
model, system and ablation figures that ExperimentLogger records (`log_model_info`,
`log_system_info`, `log_hyperparameter_ablation`);.
"""

from __future__ import annotations

import functools
import math
import os
import platform
import re
import secrets
import string
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

MODES = ("online", "offline", "disabled")
PROBE_SECONDS = 5.0  # how long the W&B server may take to answer before we log offline


def api_key_configured() -> bool:
    """Whether wandb would find an API key: `WANDB_API_KEY`, or a netrc entry for its host.

    Only the presence of the key is checked; its value is never kept.
    """
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname or ""
    netrc = Path(os.environ.get("NETRC") or Path.home() / ".netrc")
    try:
        text = netrc.read_text()
    except OSError:
        return False
    return re.search(rf"(^|\s)machine\s+{re.escape(host)}(\s|$)", text) is not None


def resolve_mode(mode: str | None = None) -> str:
    """The wandb mode to use: `mode`, else `WANDB_MODE`, else online only with an API key."""
    chosen = mode or os.environ.get("WANDB_MODE") or ""
    if not chosen:
        chosen = "online" if api_key_configured() else "offline"
    chosen = {"dryrun": "offline", "run": "online"}.get(chosen, chosen)
    if chosen not in MODES:
        raise ValueError(f"wandb mode {chosen!r} is not one of {', '.join(MODES)}")
    return chosen


@functools.cache
def server_unreachable(timeout: float = PROBE_SECONDS) -> str | None:
    """Why the W&B server (`WANDB_BASE_URL`, default api.wandb.ai) gives no answer from
    here within `timeout` seconds, or None when it answers (with any HTTP status). Asked
    once per process: a compute node without internet is the case (wandb#8183)."""
    url = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")
    try:
        urllib.request.urlopen(url, timeout=timeout).close()
    except urllib.error.HTTPError:
        return None  # it answered
    except (OSError, ValueError) as error:
        why = getattr(error, "reason", None) or error
        return f"{url} cannot be reached ({why})"
    return None


def new_run_id() -> str:
    """A fresh run id in wandb's style: 8 lowercase letters and digits."""
    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))


def model_info(model: Any) -> dict[str, Any]:
    """A torch module's class, parameter counts (all and trainable) and architecture."""
    parameters = list(model.parameters())
    return {
        "class": type(model).__name__,
        "num_params": sum(p.numel() for p in parameters),
        "num_trainable_params": sum(p.numel() for p in parameters if p.requires_grad),
        "architecture": str(model),
    }


def system_info() -> dict[str, Any]:
    """This machine's hardware and the versions of Python, torch and wandb."""
    import torch
    import wandb

    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "wandb": wandb.__version__,
        "cpu_count": os.cpu_count(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "cuda_available": torch.cuda.is_available(),
    }
    if torch.cuda.is_available():
        info["cuda"] = torch.version.cuda
        info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return info


def ablation_rows(
    ablation_name: str, baseline_metrics: Mapping[str, Any], ablated_metrics: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Baseline against ablated, one row per metric: means, stds, absolute and relative deltas.

    Each metric is a number, a `(mean, std)` pair or a dict with `mean` and `std` (across
    seeds). The relative delta is None where the baseline mean is 0. An ablated metric's dict
    may hold more (a paired comparison's CI, p-value, verdict): each such key is a column of
    every row, None in the rows of metrics that lack it (a table's rows share its columns).
    """
    missing = sorted(set(baseline_metrics) ^ set(ablated_metrics))
    if missing:
        raise ValueError(f"ablation {ablation_name!r}: {missing} not in both baseline and ablated")
    rows = []
    for metric in baseline_metrics:
        base_mean, base_std = _mean_std(baseline_metrics[metric])
        abl_mean, abl_std = _mean_std(ablated_metrics[metric])
        delta = abl_mean - base_mean
        rows.append(
            {
                "ablation": ablation_name,
                "metric": metric,
                "baseline_mean": base_mean,
                "baseline_std": base_std,
                "ablated_mean": abl_mean,
                "ablated_std": abl_std,
                "abs_delta": delta,
                "delta_std": math.hypot(base_std, abl_std),
                "rel_delta": delta / abs(base_mean) if base_mean else None,
            }
        )
    given = {m: v if isinstance(v, Mapping) else {} for m, v in ablated_metrics.items()}
    columns = dict.fromkeys(k for v in given.values() for k in v if k not in ("mean", "std"))
    for row in rows:
        row.update({column: given[row["metric"]].get(column) for column in columns})
    return rows


def _mean_std(value: Any) -> tuple[float, float]:
    """A metric given as a number, a (mean, std) pair, or a dict with `mean` and `std`."""
    if isinstance(value, Mapping):
        return float(value["mean"]), float(value.get("std", 0.0))
    if isinstance(value, list | tuple):
        mean, std = value
        return float(mean), float(std)
    return float(value), 0.0


def ablation_summary(name: str, config: Any, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """An ablation's run-summary values: its config, and each metric's deltas."""
    summary = {f"ablation/{name}/config": config}
    for r in rows:
        summary[f"ablation/{name}/{r['metric']}/abs_delta"] = r["abs_delta"]
        summary[f"ablation/{name}/{r['metric']}/rel_delta"] = r["rel_delta"]
        if r.get("verdict") is not None:
            summary[f"ablation/{name}/{r['metric']}/verdict"] = r["verdict"]
    return summary
