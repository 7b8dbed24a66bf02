"""Where trial checkpoints live when the spec says `checkpoints:`: a folder per trial in an
object store or on a shared filesystem, that every node reads and writes.

A trial's folder holds numbered versions and one pointer:

    <root>/<sweep>/<uid>/<trial 0003>/v000006/...   (the files of one checkpoint)
                                      v000007/...
                                      latest.json   {"version": 7, "versions": [6, 7], ...}

A new version is written under a number never used before, and only then is `latest.json`
replaced (one PUT on an object store; a rename on a filesystem), so a half-written version is
never the latest: a crash between the two leaves the previous latest, and the orphan is
removed by the next upload's pruning, which keeps the last `keep` complete versions.

Files go through `pyarrow.fs` (s3://, gs://, file://, a plain path): pyarrow is what Ray Train
itself uses for `storage_path`, so a URI means the same here as there (credentials from the
usual variables, `?endpoint_override=HOST:PORT&scheme=http` for an S3-compatible server), and
it needs no further packages (fsspec would need s3fs and gcsfs on every node).
"""

from __future__ import annotations

import dataclasses
import json
import re
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from orchestrator.errors import UserError

SCHEMES = ("s3", "gs", "gcs", "file")  # and an absolute path: a shared filesystem
POINTER = "latest.json"
VERSION = re.compile(r"^v(\d{6,})$")
DEFAULT_KEEP = 2


def uri_problem(uri: str) -> str | None:
    """Why `uri` names no checkpoint store (checked when the spec loads, without network)."""
    parts = urlsplit(uri)
    if not parts.scheme:
        return None if uri.startswith("/") else f"'{uri}' must be an absolute path or a URI"
    if parts.scheme not in SCHEMES:
        known = ", ".join(f"{s}://" for s in SCHEMES)
        return f"unknown scheme '{parts.scheme}://' (use {known}, or an absolute path)"
    if parts.scheme == "file" and (parts.netloc or not parts.path.startswith("/")):
        return f"'{uri}': a file:// URI takes an absolute path (file:///PATH)"
    if parts.scheme != "file" and not parts.netloc:
        return f"'{uri}' names no bucket ({parts.scheme}://BUCKET/PREFIX)"
    return None


def join(uri: str, *names: str) -> str:
    """`uri` with `names` appended to its path, its query (`?endpoint_override=...`) kept."""
    base, mark, query = uri.partition("?")
    return "/".join([base.rstrip("/"), *names]) + mark + query


@dataclass(frozen=True)
class TrialStore:
    """One trial's folder in the store, as a worker gets it (plain data, cheap to ship)."""

    uri: str  # <root>/<key>
    key: str  # <sweep>/<uid>/<trial>: also its folder under a node's local root
    keep: int = DEFAULT_KEEP


def trial_store(root: str, keep: int, sweep: str, uid: str, number: int) -> TrialStore:
    key = f"{sweep}/{uid or 'sweep'}/{number:04d}"
    return TrialStore(join(root, *key.split("/")), key, keep)


@dataclass(frozen=True)
class Pointer:
    """What `latest.json` says: the latest complete version, the ones kept, its files."""

    version: int
    versions: list[int]  # complete versions kept, oldest first; the last is `version`
    files: dict[str, int] = field(default_factory=dict)  # relative path -> bytes
    written_at: float = 0.0
    writer: str = ""  # the node that wrote it

    def to_json(self) -> bytes:
        return json.dumps(dataclasses.asdict(self), indent=1).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Pointer:
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in json.loads(data).items() if k in fields})


class CheckpointStore:
    """Versions of one folder's files in a store: upload, point, download, prune."""

    def __init__(self, uri: str, keep: int = DEFAULT_KEEP):
        import pyarrow.fs as pafs

        self.uri, self.keep = uri, keep
        try:
            self.fs, self.root = pafs.FileSystem.from_uri(uri)
        except Exception as error:  # pyarrow: ArrowInvalid for an unknown scheme, ...
            raise UserError(f"checkpoints: {uri}: {first_line(error)}") from None
        self.local = isinstance(self.fs, pafs.LocalFileSystem)

    def check_writable(self) -> None:
        """Write and remove a small object under the root; OSError says why not."""
        probe = f"{self.root}/.probe-{secrets.token_hex(4)}"
        if self.local:
            self.fs.create_dir(self.root, recursive=True)
        with self.fs.open_output_stream(probe) as out:
            out.write(b"orchestrate")
        self.fs.delete_file(probe)

    def pointer(self) -> Pointer | None:
        """The latest complete version, or None when the folder has none."""
        import pyarrow.fs as pafs

        path = f"{self.root}/{POINTER}"
        if self.fs.get_file_info(path).type == pafs.FileType.NotFound:
            return None
        with self.fs.open_input_stream(path) as stream:
            return Pointer.from_json(stream.read())

    def versions(self) -> list[int]:
        """Every version folder there is, complete or not, in order."""
        import pyarrow.fs as pafs

        selector = pafs.FileSelector(self.root, allow_not_found=True)
        found = (VERSION.match(info.base_name) for info in self.fs.get_file_info(selector))
        return sorted(int(m.group(1)) for m in found if m)

    def upload(self, folder: Path, writer: str = "") -> Pointer:
        """Copy `folder`'s files as a new version, then point `latest.json` at it, then prune."""
        files = {
            str(p.relative_to(folder)): p.stat().st_size
            for p in sorted(folder.rglob("*"))
            if p.is_file()
        }
        if not files:
            raise ValueError(f"{folder}: no files to upload")
        previous = self.pointer()
        kept = previous.versions if previous else []
        number = max([0, *kept, *self.versions()]) + 1
        self._put_version(number, folder)
        pointer = Pointer(number, [*kept, number][-self.keep :], files, time.time(), writer)
        self._point(pointer)
        self.prune(pointer)
        return pointer

    def download(self, folder: Path, replace: bool = True) -> Pointer | None:
        """Copy the latest version's files into `folder` (with `replace`, made empty first);
        None, leaving `folder` as it is, when the store has no version yet."""
        import pyarrow.fs as pafs

        pointer = self.pointer()
        if pointer is None:
            return None
        incoming = folder.with_name(f".{folder.name}.incoming")
        _remove(incoming)
        incoming.mkdir(parents=True)
        pafs.copy_files(
            self._version_path(pointer.version),
            str(incoming),
            source_filesystem=self.fs,
            destination_filesystem=pafs.LocalFileSystem(),
        )
        for name, size in pointer.files.items():
            got = (incoming / name).stat().st_size if (incoming / name).is_file() else None
            if got != size:
                raise OSError(f"{self.uri}: v{pointer.version:06d}/{name}: {got} bytes, not {size}")
        if replace:
            _remove(folder)
            incoming.rename(folder)
            return pointer
        for name in pointer.files:
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (incoming / name).replace(folder / name)
        _remove(incoming)
        return pointer

    def prune(self, pointer: Pointer) -> None:
        """Remove every version folder that `pointer` does not keep (old ones, orphans)."""
        for number in self.versions():
            if number not in pointer.versions:
                self.fs.delete_dir(self._version_path(number))

    def _version_path(self, number: int) -> str:
        return f"{self.root}/v{number:06d}"

    def _put_version(self, number: int, folder: Path) -> None:
        import pyarrow.fs as pafs

        target = self._version_path(number)
        if self.local:
            self.fs.create_dir(target, recursive=True)
        pafs.copy_files(
            str(folder),
            target,
            source_filesystem=pafs.LocalFileSystem(),
            destination_filesystem=self.fs,
        )

    def _point(self, pointer: Pointer) -> None:
        """Replace `latest.json` at once: a rename on a filesystem, one PUT on a store."""
        path = f"{self.root}/{POINTER}"
        target = f"{path}.{secrets.token_hex(4)}.tmp" if self.local else path
        with self.fs.open_output_stream(target) as out:
            out.write(pointer.to_json())
        if target != path:
            self.fs.move(target, path)


def check_store(uri: str, where: str) -> None:
    """UserError, one line naming the spec and key, when the store cannot be written."""
    try:
        CheckpointStore(uri).check_writable()
    except UserError as error:
        raise UserError(f"{where}: {error}") from None
    except Exception as error:
        raise UserError(
            f"{where}: checkpoints: cannot write to {uri}: {first_line(error)}"
        ) from None


def first_line(error: BaseException) -> str:
    """An error's first line, without an S3 request id."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return re.sub(r"\s*\(Request ID: [^)]*\)", "", text)


def _remove(path: Path) -> None:
    import shutil

    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()
