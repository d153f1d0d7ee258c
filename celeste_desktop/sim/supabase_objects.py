"""Objects of the simulated Supabase Storage on disk: buckets, versions, an append-only index.

Like the real server (one S3 object per ``{bucket}/{key}/{version}``), each upload writes a new
version file and then flips the index to it, so a reader never sees a partial object and a
replaced object's old bytes stay readable to a download already under way. Layout under
``data_dir``:

    storage/{bucket}/{key segments...}/{version}   object bytes (segments escaped for Windows)
    storage-index.jsonl                            one JSON line per put/delete, replayed at start
    tmp/                                           bodies being received
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import threading
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# The real server's key rule (storage/src/storage/limits.ts `isValidKey`), as in FACTS.
KEY_PATTERN = re.compile(r"[A-Za-z0-9_/!.*'() &$=@;:+,?-]+")
_FS_ESCAPE = set(':*?"<>|\\%')
_WINDOWS_RESERVED = {"con", "prn", "aux", "nul"} | {f"{p}{n}" for p in ("com", "lpt") for n in range(1, 10)}
_READ_CHUNK = 256 * 1024


def is_valid_key(key: str) -> bool:
    return KEY_PATTERN.fullmatch(key) is not None


@dataclass(frozen=True)
class BucketConfig:
    """A bucket's settings; ``file_size_limit`` below the global limit wins.

    ``yacht_policies``: the celeste_yacht_documents_* policies of supabase/migrations cover this
    bucket (they name ``documents``), so a yacht key may read and write under its own prefix and
    see the bucket itself. Without them only the service role gets in.
    """

    public: bool = False
    file_size_limit: int | None = None
    allowed_mime_types: tuple[str, ...] | None = None
    yacht_policies: bool = True


@dataclass
class StoredObject:
    """One object's row in ``storage.objects`` (what the info and list routes report)."""

    bucket: str
    name: str
    id: str
    version: str
    size: int
    mimetype: str
    cache_control: str
    etag: str
    owner: str | None
    user_metadata: dict[str, Any] | None
    created_at: float
    updated_at: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class DuplicateObject(Exception):
    """The key exists and the upload did not ask to overwrite it."""


@dataclass
class ObjectStore:
    """Buckets and committed objects; thread-safe so tests can read while the loop writes."""

    data_dir: Path
    buckets: dict[str, BucketConfig]
    clock: Callable[[], float]
    _objects: dict[tuple[str, str], StoredObject] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.root = self.data_dir / "storage"
        self.tmp = self.data_dir / "tmp"
        self.index_path = self.data_dir / "storage-index.jsonl"
        self.root.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.bucket_created = {name: self.clock() for name in self.buckets}
        self._replay_index()

    # -- disk layout -----------------------------------------------------------------------

    def blob_path(self, bucket: str, name: str, version: str) -> Path:
        return self.root.joinpath(_fs_segment(bucket), *map(_fs_segment, name.split("/")), version)

    def temp_file(self) -> Path:
        return self.tmp / f"{uuid.uuid4().hex}.part"

    def _replay_index(self) -> None:
        if not self.index_path.exists():
            return
        with self.index_path.open(encoding="utf-8") as lines:
            for line in lines:
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a torn last line after a crash: the put never completed
                key = (entry["bucket"], entry["name"])
                if entry.get("op") == "delete":
                    self._objects.pop(key, None)
                else:
                    self._objects[key] = StoredObject(**entry["object"])

    def _append_index(self, entry: dict[str, Any]) -> None:
        with self.index_path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(entry, separators=(",", ":")) + "\n")

    # -- reads -----------------------------------------------------------------------------

    def get(self, bucket: str, name: str) -> StoredObject | None:
        with self._lock:
            return self._objects.get((bucket, name))

    def all(self, bucket: str | None = None) -> list[StoredObject]:
        with self._lock:
            found = [o for (b, _), o in self._objects.items() if bucket in (None, b)]
        return sorted(found, key=lambda o: (o.bucket, o.name))

    def path_of(self, obj: StoredObject) -> Path:
        return self.blob_path(obj.bucket, obj.name, obj.version)

    async def stream(self, obj: StoredObject) -> AsyncIterator[bytes]:
        with self.path_of(obj).open("rb") as source:
            while chunk := source.read(_READ_CHUNK):
                yield chunk

    # -- writes ----------------------------------------------------------------------------

    def commit(
        self,
        bucket: str,
        name: str,
        received: Path,
        *,
        size: int,
        etag: str,
        mimetype: str,
        cache_control: str,
        owner: str | None,
        upsert: bool,
        user_metadata: dict[str, Any] | None = None,
    ) -> StoredObject:
        """Make ``received`` the object's current version in one step, or raise DuplicateObject.

        Runs without awaiting, so on the simulator's loop it is atomic with respect to every
        other request; the lock only keeps readers in other threads consistent.
        """
        version = uuid.uuid4().hex
        target = self.blob_path(bucket, name, version)
        now = self.clock()
        with self._lock:
            current = self._objects.get((bucket, name))
            if current is not None and not upsert:
                raise DuplicateObject(f"{bucket}/{name}")
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(received, target)
            obj = StoredObject(
                bucket=bucket,
                name=name,
                id=current.id if current else str(uuid.uuid4()),
                version=version,
                size=size,
                mimetype=mimetype,
                cache_control=cache_control,
                etag=etag,
                owner=owner,
                user_metadata=user_metadata,
                created_at=current.created_at if current else now,
                updated_at=now,
            )
            self._objects[(bucket, name)] = obj
            self._append_index({"op": "put", "bucket": bucket, "name": name, "object": obj.to_json()})
        if current is not None:
            self._remove_blob(self.path_of(current), bucket)
        return obj

    def delete(self, bucket: str, name: str) -> StoredObject | None:
        with self._lock:
            current = self._objects.pop((bucket, name), None)
            if current is None:
                return None
            self._append_index({"op": "delete", "bucket": bucket, "name": name})
        self._remove_blob(self.path_of(current), bucket)
        return current

    def _remove_blob(self, path: Path, bucket: str) -> None:
        # Windows refuses to delete a file a download still reads; the sim then leaks it.
        with contextlib.suppress(OSError):
            path.unlink()
        bucket_dir = self.root / _fs_segment(bucket)
        parent = path.parent
        while parent != bucket_dir and bucket_dir in parent.parents:
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent


async def receive_body(
    chunks: AsyncIterator[bytes], target: Path, *, limit: int | None = None
) -> tuple[int, str] | None:
    """Stream a request body to ``target``; (size, quoted md5 etag), or None past ``limit``.

    On a drop (``ConnectionDropped`` from the stream) or past the limit the file is removed.
    """
    digest = hashlib.md5(usedforsecurity=False)
    size = 0
    try:
        with target.open("wb") as out:
            async for chunk in chunks:
                size += len(chunk)
                if limit is not None and size > limit:
                    break
                digest.update(chunk)
                out.write(chunk)
            else:
                return size, f'"{digest.hexdigest()}"'
    except BaseException:
        discard(target)
        raise
    discard(target)
    return None


def discard(path: Path) -> None:
    """Remove a temporary file if it is still there (a quick call, fine on the loop)."""
    with contextlib.suppress(OSError):
        path.unlink()


def file_etag(path: Path) -> str:
    """Quoted md5 of a file, computed in chunks (call through ``asyncio.to_thread`` for big ones)."""
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as source:
        while chunk := source.read(1024 * 1024):
            digest.update(chunk)
    return f'"{digest.hexdigest()}"'


def _fs_segment(segment: str) -> str:
    """A key segment as a file name that is safe on Windows too, and reversible by eye."""
    if segment in ("", ".", ".."):
        return "%" + segment.replace(".", "%2E")
    out = "".join(f"%{ord(c):02X}" if c in _FS_ESCAPE else c for c in segment)
    if out[-1] in " .":
        out = out[:-1] + f"%{ord(out[-1]):02X}"
    if out.split(".")[0].lower() in _WINDOWS_RESERVED:
        out = f"%{ord(out[0]):02X}" + out[1:]
    return out


@dataclass
class TransferCounters:
    """Body bytes the sim received per upload route, for link-economy tests."""

    standard_uploads: int = 0
    standard_bytes: int = 0
    tus_creations: int = 0
    tus_patches: int = 0
    tus_bytes: int = 0
    rest_requests: int = 0
    rest_bytes: int = 0

    def reset(self) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, 0)


async def counted(chunks: AsyncIterator[bytes], count: Callable[[int], None]) -> AsyncIterator[bytes]:
    """Pass chunks through, reporting each one's size as it arrives (drops included)."""
    async for chunk in chunks:
        count(len(chunk))
        yield chunk
