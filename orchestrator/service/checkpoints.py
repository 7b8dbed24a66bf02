"""`orchestrate pull --checkpoints` for a sweep whose spec sets `checkpoints:`: each trial's
latest checkpoint comes from the store, not from the head node (where it never was: each
trial wrote it on its own node), into the trial's directory of the pulled copy."""

from __future__ import annotations

from pathlib import Path

from orchestrator import store
from orchestrator.programs.checkpoint_store import CheckpointStore, first_line
from orchestrator.store import attrs


def pull_checkpoints(run_dir: Path) -> dict[int, int]:
    """Download the latest checkpoint of every trial the sweep's store records a folder for;
    returns each trial's number and the version it got. UserError when the store fails."""
    from orchestrator.errors import UserError

    pulled: dict[int, int] = {}
    info = store.read_sweep_file(run_dir)
    for trial in store.load_study(info).get_trials(deepcopy=False):
        place = trial.user_attrs.get(attrs.CHECKPOINT_STORE)
        if not place:
            continue
        recorded = trial.user_attrs.get(attrs.CHECKPOINT_DIR) or f"trials/{trial.number:04d}"
        folder = Path(store.located(recorded, Path(info.run_dir)))
        try:
            pointer = CheckpointStore(place["uri"]).download(folder, replace=False)
        except UserError:
            raise
        except Exception as error:
            raise UserError(f"checkpoints: {place['uri']}: {first_line(error)}") from None
        if pointer is not None:
            pulled[trial.number] = pointer.version
    return pulled
