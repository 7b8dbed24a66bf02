"""Checks of where a sweep's checkpoints live, made by the controller as a sweep starts.

With `checkpoints:`, the store must take a write before anything runs (a bucket that does not
exist, or a server that cannot be reached, is one line and exit 2, not a failure in every
trial). Without it, checkpoints stay in each trial's directory, on the node that ran it: fine
on one machine or a shared filesystem, and worth a warning on a cluster of several nodes,
where a trial retried on another node cannot see what the dead one wrote.
"""

from __future__ import annotations

from orchestrator.programs.checkpoint_store import check_store
from orchestrator.spec.model import SweepSpec


def check_writable(spec: SweepSpec) -> None:
    """UserError when the spec's checkpoint store cannot be written from here."""
    if spec.checkpoints is not None:
        check_store(spec.checkpoints.uri, str(spec.path))


def warn_if_node_local(spec: SweepSpec) -> None:
    """Print a warning when Ray has several nodes and the spec keeps checkpoints on them."""
    import ray

    message = node_local_warning(spec, sum(1 for node in ray.nodes() if node.get("Alive")))
    if message:
        print(message, flush=True)


def node_local_warning(spec: SweepSpec, alive_nodes: int) -> str | None:
    """The warning for a sweep on `alive_nodes` nodes, or None."""
    if spec.checkpoints is not None or alive_nodes <= 1:
        return None
    return (
        f"warning: {spec.path}: Ray has {alive_nodes} nodes and the spec sets no checkpoints:, "
        "so a trial retried on another node starts over unless the runs directory lies on a "
        "filesystem every node shares (checkpoints: s3://BUCKET/PREFIX keeps them in a store)"
    )
