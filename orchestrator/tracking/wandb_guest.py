"""wandb as the logger's guest: the logger's only door to the wandb package.

wandb is imported by the first run that uses it, so a `disabled` logger costs no import
(about a second, paid by a Ray worker's first trial). A run starts in a wandb service of
this process's own, and a failed run is dropped whole, leaving the process able to start
the next (a reused Ray worker runs many trials).
"""

from __future__ import annotations

import contextlib
import os
from typing import Any


def start_run(console: str | None, **init_args: Any) -> Any:
    """`wandb.init` for a new run of this process (`console`: wandb's console capture)."""
    token = os.environ.get("WANDB_SERVICE", "")  # "<version>-<pid>-...": whose wandb-core
    if token and token.split("-")[1:2] != [str(os.getpid())]:
        # Another process's, inherited (a Ray worker starts with the driver's environment).
        # This process's runs must not outlive it in that service (a killed trial's run
        # would stay open there): wandb starts one of our own.
        del os.environ["WANDB_SERVICE"]
    import wandb

    settings = wandb.Settings(console=console) if console else None
    return wandb.init(reinit="create_new", settings=settings, **init_args)


def drop_run(run: Any, error: BaseException) -> None:
    """Finish a run that failed; after its service was lost, tear the service down, or every
    later run of this process would fail too."""
    from wandb.sdk.mailbox import HandleAbandonedError, MailboxClosedError

    if run is not None:
        with contextlib.suppress(Exception):
            run.finish(exit_code=1)
    if isinstance(error, ConnectionError | MailboxClosedError | HandleAbandonedError):
        import wandb  # how wandb 0.31 fails once its service process is gone (e.g. killed)

        with contextlib.suppress(Exception):
            wandb.teardown()


def table(columns: list[str], data: list[list[Any]]) -> Any:
    """A wandb Table whose columns may mix types and hold None."""
    import wandb

    return wandb.Table(columns, data, allow_mixed_types=True)


def checkpoint_artifact(run_id: str, metadata: dict[str, Any]) -> Any:
    """The run's model checkpoint as a wandb Artifact."""
    import wandb

    return wandb.Artifact(f"checkpoint-{run_id}", type="model", metadata=metadata)
