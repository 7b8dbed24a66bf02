"""The `checkpoints:` store against a file:// URI: versions, the `latest.json` pointer, pruning,
a crash between the two writes, and a trial's folder synced from one node and restored on
another (two local roots here). No Ray, no subprocess."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from orchestrator.errors import UserError
from orchestrator.programs.checkpoint_store import (
    CheckpointStore,
    TrialStore,
    trial_store,
    uri_problem,
)
from orchestrator.programs.checkpoint_sync import CheckpointSync, synced
from orchestrator.run.checkpoint_checks import check_writable, node_local_warning
from orchestrator.spec import load_spec
from orchestrator.spec.model import SpecError


def write(folder: Path, name: str, text: str) -> None:
    (folder / name).parent.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)


def test_each_upload_is_a_new_version_and_latest_points_at_it(tmp_path):
    store = CheckpointStore(f"file://{tmp_path}/store/t", keep=3)
    local = tmp_path / "local"
    write(local, "checkpoint.pt", "step 1")
    write(local, "sub/extra.json", "{}")
    first = store.upload(local, writer="node-a")
    write(local, "checkpoint.pt", "step 2")
    second = store.upload(local)
    assert (first.version, second.version) == (1, 2)
    assert store.pointer() == second and second.versions == [1, 2]
    assert second.files == {"checkpoint.pt": 6, "sub/extra.json": 2}
    pointer = json.loads((tmp_path / "store/t/latest.json").read_text())
    assert pointer["version"] == 2 and first.writer == "node-a"

    restored = tmp_path / "elsewhere"
    write(restored, "stale.txt", "from an older run")
    assert store.download(restored) == second
    assert (restored / "checkpoint.pt").read_text() == "step 2"
    assert (restored / "sub/extra.json").exists() and not (restored / "stale.txt").exists()


def test_only_the_last_k_versions_are_kept(tmp_path):
    store = CheckpointStore(str(tmp_path / "store"), keep=2)  # a plain path: shared disk
    local = tmp_path / "local"
    for step in range(1, 6):
        write(local, "checkpoint.pt", f"step {step}")
        store.upload(local)
    assert store.versions() == [4, 5]
    assert store.pointer().versions == [4, 5]
    assert sorted(p.name for p in (tmp_path / "store").iterdir()) == [
        "latest.json",
        "v000004",
        "v000005",
    ]


def test_a_crash_between_upload_and_pointer_update_leaves_the_previous_latest(
    tmp_path, monkeypatch
):
    store = CheckpointStore(f"file://{tmp_path}/store", keep=2)
    local = tmp_path / "local"
    write(local, "checkpoint.pt", "good")
    store.upload(local)

    def crash(self, pointer):
        raise KeyboardInterrupt("killed before the pointer was written")

    write(local, "checkpoint.pt", "newer, never pointed at")
    with monkeypatch.context() as patch:
        patch.setattr(CheckpointStore, "_point", crash)
        with pytest.raises(KeyboardInterrupt):
            store.upload(local)
    assert store.versions() == [1, 2]  # the orphan was written whole, but is not the latest
    assert store.pointer().version == 1
    restored = tmp_path / "retry"
    store.download(restored)
    assert (restored / "checkpoint.pt").read_text() == "good"

    write(restored, "checkpoint.pt", "after the retry")
    pointer = store.upload(restored)
    assert pointer.version == 3 and pointer.versions == [1, 3]  # never reuses the orphan's
    assert store.versions() == [1, 3]  # and the orphan is pruned


def test_a_half_written_version_is_never_downloaded(tmp_path, monkeypatch):
    """A crash in the middle of the version's files: the pointer still names the old one."""
    store = CheckpointStore(f"file://{tmp_path}/store")
    local = tmp_path / "local"
    write(local, "checkpoint.pt", "whole")
    store.upload(local)
    real_put = CheckpointStore._put_version

    def torn(self, number, folder):
        real_put(self, number, folder)
        (Path(self.root) / f"v{number:06d}" / "checkpoint.pt").write_text("to")  # cut off
        raise OSError("connection reset")

    monkeypatch.setattr(CheckpointStore, "_put_version", torn)
    write(local, "checkpoint.pt", "the next one, torn")
    with pytest.raises(OSError):
        store.upload(local)
    restored = tmp_path / "retry"
    assert store.download(restored).version == 1
    assert (restored / "checkpoint.pt").read_text() == "whole"


def test_an_empty_store_restores_nothing_and_leaves_the_folder(tmp_path):
    store = CheckpointStore(f"file://{tmp_path}/store")
    local = tmp_path / "local"
    write(local, "mine.pt", "kept")
    assert store.pointer() is None and store.download(local) is None
    assert (local / "mine.pt").read_text() == "kept"


def test_a_trial_synced_on_one_node_resumes_on_another(tmp_path):
    place = trial_store(f"file://{tmp_path}/store", 2, "lr", "ab12", 3)
    assert place.key == "lr/ab12/0003" and place.uri == f"file://{tmp_path}/store/lr/ab12/0003"
    node_a, node_b = tmp_path / "node-a", tmp_path / "node-b"

    first = CheckpointSync(place, root=node_a)
    assert first.restore() is None and first.dir == node_a / "lr/ab12/0003"
    write(first.dir, "checkpoint.pt", "step 10")
    write(first.dir, ".checkpoint.pt.77.tmp", "half of step 20")  # a write in progress
    assert first.sync().version == 1
    assert first.sync() is None  # nothing changed: no new version
    write(first.dir, "checkpoint.pt", "step 20")
    assert first.sync().files == {"checkpoint.pt": 7}

    second = CheckpointSync(place, root=node_b)
    assert not second.dir.exists()
    assert second.restore().version == 2
    assert (second.dir / "checkpoint.pt").read_text() == "step 20"
    assert second.sync() is None  # what it restored is what the store has


def test_the_last_upload_happens_when_the_program_returns_and_its_failure_is_an_error(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("ORCHESTRATE_LOCAL_CHECKPOINTS", str(tmp_path / "node"))
    place = TrialStore(f"file://{tmp_path}/store/t", "s/u/0000", 2)
    with synced(place, tmp_path / "trial") as sync:
        assert sync.dir == tmp_path / "node/s/u/0000"
        write(sync.dir, "checkpoint.pt", "final")
    assert CheckpointStore(place.uri).pointer().version == 1
    assert not sync.dir.exists()  # all of it is in the store: the node's copy is removed

    with synced(None, tmp_path / "trial") as sync:
        assert sync is None  # no store: the program checkpoints into the trial's directory

    def refuse(self, folder, writer=""):
        raise OSError("Access Denied")

    monkeypatch.setattr(CheckpointStore, "upload", refuse)
    failed = pytest.raises(OSError, match="last upload to .* failed: Access Denied")
    with failed, synced(place, tmp_path / "trial") as sync:
        write(sync.dir, "checkpoint.pt", "lost")


@pytest.mark.parametrize(
    ("uri", "problem"),
    [
        ("s3://bucket/prefix", None),
        ("gs://bucket/prefix", None),
        ("file:///shared/checkpoints", None),
        ("/shared/checkpoints", None),
        ("ftp://host/dir", "unknown scheme 'ftp://'"),
        ("checkpoints/here", "must be an absolute path or a URI"),
        ("s3:///prefix", "names no bucket"),
        ("file://relative", "takes an absolute path"),
    ],
)
def test_which_uris_name_a_store(uri, problem):
    found = uri_problem(uri)
    assert (found is None) if problem is None else (problem in found)


def spec_with(tmp_path: Path, checkpoints: str) -> Path:
    path = tmp_path / "sweep.yaml"
    text = f"""\
        name: ck
        method: grid
        parameters:
          optimizer.lr: {{values: [0.001]}}
        checkpoints: {checkpoints}
        """
    path.write_text(textwrap.dedent(text))
    return path


def test_the_spec_key_takes_a_uri_or_a_mapping_and_names_the_line_of_a_bad_one(tmp_path):
    spec = load_spec(spec_with(tmp_path, "s3://bucket/sweeps"))
    assert (spec.checkpoints.uri, spec.checkpoints.keep) == ("s3://bucket/sweeps", 2)
    spec = load_spec(spec_with(tmp_path, "{uri: /shared/ck, keep: 5}"))
    assert spec.checkpoints.keep == 5
    with pytest.raises(SpecError) as error:
        load_spec(spec_with(tmp_path, "hdfs://namenode/ck"))
    assert error.value.lines == [
        f"{tmp_path}/sweep.yaml:5: checkpoints.uri: unknown scheme 'hdfs://' "
        "(use s3://, gs://, gcs://, file://, or an absolute path)"
    ]
    with pytest.raises(SpecError, match=r"sweep.yaml:5: checkpoints.keep: must be >= 1"):
        load_spec(spec_with(tmp_path, "{uri: /shared/ck, keep: 0}"))


def test_a_store_that_cannot_be_written_is_one_line_naming_the_spec(tmp_path):
    (tmp_path / "a-file").write_text("not a directory")
    spec = load_spec(spec_with(tmp_path, f"file://{tmp_path}/a-file/ck"))
    with pytest.raises(UserError) as error:
        check_writable(spec)
    (line,) = error.value.lines
    assert line.startswith(f"{tmp_path}/sweep.yaml: checkpoints: cannot write to file://")
    check_writable(load_spec(spec_with(tmp_path, f"file://{tmp_path}/ok")))  # no error


def test_several_nodes_without_a_store_warn(tmp_path):
    spec = load_spec(spec_with(tmp_path, f"{tmp_path}/ck"))
    bare = spec.model_copy(update={"checkpoints": None})
    assert node_local_warning(bare, 1) is None
    assert node_local_warning(spec, 3) is None
    warning = node_local_warning(bare, 2)
    assert warning.startswith("warning: ") and "2 nodes" in warning and "checkpoints:" in warning


def test_export_to_wandb_says_the_store_is_left_out(tmp_path):
    from orchestrator.interop.export import export_wandb

    spec = load_spec(spec_with(tmp_path, "s3://bucket/sweeps"))
    config, warnings = export_wandb(spec, {"checkpoints": "s3://bucket/sweeps"})
    assert "checkpoints" not in config
    assert any("checkpoints: left out" in line for line in warnings)
