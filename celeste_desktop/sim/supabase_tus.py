"""TUS 1.0.0 resumable uploads of the simulated Supabase Storage (``/storage/v1/upload/resumable``).

Follows supabase/storage on @tus/server: errors are plain text with the real status (409
"Upload-Offset conflict", 410 for an expired URL, 412 without ``Tus-Resumable``, 400 "Invalid
content-type"); the connection is closed after every error; the upload id in the URL is the
base64url of ``bucket/object/version``; the ``Location`` is absolute and may be set to another
host or path prefix (``location_prefix``) so tests prove the client follows it verbatim.

Behaviours worth knowing, as on the real server:

- Every PATCH re-checks the caller's right to write the key with *that request's* ``x-upsert``
  header: a client that sends ``x-upsert: true`` only at creation gets 409 on a PATCH once the
  object exists. Two uploads to the same key may both be created; the one that completes second
  without upsert gets 409 "The resource already exists" and its bytes are dropped.
- Bytes received before a dropped connection are kept: the offset advances by what was written,
  and HEAD tells the client where to resume.
- A second request on an upload that a PATCH still holds takes the lock over: the old PATCH is
  aborted (400, connection closed) and the new one proceeds after the usual offset check.

The sim is stricter than the real server in one place, on purpose: every chunk but the last must
be exactly ``chunk_size`` (6 MB) bytes, as Supabase's documentation demands of clients (400).
Partial data lives on disk under ``data_dir/tus`` and is streamed, never held in memory.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import json
import re
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from celeste_desktop.sim.http import ConnectionDropped, Request, Response, Router
from celeste_desktop.sim.supabase_auth import Caller, Refusal
from celeste_desktop.sim.supabase_objects import BucketConfig, DuplicateObject, file_etag, is_valid_key
from celeste_desktop.sim.supabase_storage import (
    RLS_MESSAGE,
    StorageApi,
    http_date,
    mime_allowed,
    storage_caller,
)

TUS_VERSION = "1.0.0"
CHUNK_SIZE = 6 * 1024 * 1024
OFFSET_TYPE = "application/offset+octet-stream"
EXTENSIONS = "creation,creation-with-upload,termination,expiration"
_NUMBER = re.compile(r"0|[1-9][0-9]*")


@dataclass
class TusUpload:
    """One upload resource; persisted as JSON beside its ``.part`` file."""

    upload_id: str
    bucket: str
    name: str
    version: str
    length: int
    metadata_header: str
    content_type: str
    cache_control: str
    user_metadata: dict[str, Any] | None
    owner: str | None
    created_at: float
    offset: int = 0
    completed: bool = False


class _Digest:
    """An upload's running MD5, good only while the bytes arrive without a gap. It runs on the
    event loop, as a standard upload's does (``receive_body``): the two paths cost the same."""

    def __init__(self) -> None:
        self.md5: Any = hashlib.md5(usedforsecurity=False)
        self.end = 0  # the bytes [0, end) are in md5; -1 once a gap broke it

    def add(self, offset: int, chunk: bytes) -> None:
        if offset != self.end:
            self.end = -1
            return
        self.md5.update(chunk)
        self.end += len(chunk)


@dataclass
class _Holder:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    cancel: asyncio.Event = field(default_factory=asyncio.Event)


class TusApi:
    """The resumable routes; shares buckets, limits and counters with ``StorageApi``."""

    def __init__(
        self,
        storage: StorageApi,
        *,
        url_lifetime_s: float,
        clock: Callable[[], float],
        public_origin: Callable[[Request], str],
        chunk_size: int = CHUNK_SIZE,
        lock_timeout_s: float = 10.0,
    ) -> None:
        self.storage = storage
        self.store = storage.store
        self.url_lifetime_s = url_lifetime_s
        self.clock = clock
        self.public_origin = public_origin
        self.chunk_size = chunk_size
        self.lock_timeout_s = lock_timeout_s
        self.location_prefix: str | None = None  # e.g. "https://localhost:PORT/edge/storage/v1/upload/resumable"
        self.dir = self.store.data_dir / "tus"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.uploads: dict[str, TusUpload] = {}
        self._holders: dict[str, _Holder] = {}
        self._digests: dict[str, _Digest] = {}  # upload id → MD5 of what arrived in order
        self._load()

    def register(self, router: Router, prefix: str = "/storage/v1") -> None:
        base = f"{prefix}/upload/resumable"
        router.add("OPTIONS", base, self.options)
        router.add("OPTIONS", f"{base}/{{upload_id}}", self.options)
        router.add("POST", base, self.create)
        # Any path ending in upload/resumable/{id}: a Location may carry another path prefix.
        for method, handler in (("HEAD", self.head), ("PATCH", self.patch), ("DELETE", self.terminate)):
            router.add(method, "/{tus_prefix:path}/upload/resumable/{upload_id}", handler)

    # -- persistence -----------------------------------------------------------------------

    def _stem(self, upload_id: str) -> Path:
        return self.dir / hashlib.sha256(upload_id.encode()).hexdigest()[:32]

    def part_path(self, upload: TusUpload) -> Path:
        return self._stem(upload.upload_id).with_suffix(".part")

    def _save(self, upload: TusUpload) -> None:
        self._stem(upload.upload_id).with_suffix(".json").write_text(json.dumps(asdict(upload)))

    def _load(self) -> None:
        for info in self.dir.glob("*.json"):
            try:
                upload = TusUpload(**json.loads(info.read_text()))
            except (ValueError, TypeError):
                continue
            part = self.part_path(upload)
            if not upload.completed:
                upload.offset = part.stat().st_size if part.exists() else 0
            self.uploads[upload.upload_id] = upload

    def _expired(self, upload: TusUpload) -> bool:
        return self.clock() > upload.created_at + self.url_lifetime_s

    def _expires_header(self, upload: TusUpload) -> str:
        return http_date(upload.created_at + self.url_lifetime_s)

    # -- routes ----------------------------------------------------------------------------

    async def options(self, request: Request) -> Response:
        headers = {
            "tus-resumable": TUS_VERSION,
            "tus-version": TUS_VERSION,
            "tus-extension": EXTENSIONS,
            "tus-max-size": str(self.storage.global_file_size_limit),
            "access-control-allow-methods": "POST, HEAD, PATCH, OPTIONS, DELETE",
            "access-control-allow-headers": "Authorization, Content-Type, Location, Tus-Extension, "
            "Tus-Max-Size, Tus-Resumable, Tus-Version, Upload-Length, Upload-Metadata, "
            "Upload-Offset, X-Upsert, ApiKey",
            "access-control-max-age": "86400",
        }
        return Response(204, b"", headers)

    async def create(self, request: Request) -> Response:
        caller = storage_caller(self.storage.tokens, request)
        _check_protocol(request)
        if "upload-concat" in request.headers:
            raise _tus_error(501, "Concatenation extension is not (yet) supported. "
                             "Disable parallel uploads in the tus client.\n")
        if "upload-defer-length" in request.headers:
            raise _tus_error(501, "creation-defer-length extension is not (yet) supported.\n")
        length_text = request.header("upload-length")
        if length_text is None:
            raise _tus_error(400, "Upload-Length or Upload-Defer-Length header required\n")
        raw_metadata = request.header("upload-metadata")
        if raw_metadata is None:
            raise _tus_error(400, "Metadata header is required")
        metadata = _parse_metadata(raw_metadata)
        bucket_name = metadata.get("bucketName") or ""
        name = metadata.get("objectName") or ""
        if not is_valid_key(name):
            raise _tus_error(400, f"Invalid key: {name}")
        bucket = self._bucket(bucket_name)
        length = int(length_text)
        if length > self.storage.size_limit(bucket):
            raise _tus_error(413, "Maximum size exceeded\n")
        self._can_upload(caller, request, bucket_name, name)
        content_type = metadata.get("contentType") or "application/octet-stream"
        if not mime_allowed(bucket, content_type):
            raise _tus_error(415, f"mime type {content_type} is not supported")
        cache = metadata.get("cacheControl") or ""
        version = str(uuid.uuid4())
        upload_id = base64.urlsafe_b64encode(f"{bucket_name}/{name}/{version}".encode()).decode().rstrip("=")
        upload = TusUpload(
            upload_id=upload_id,
            bucket=bucket_name,
            name=name,
            version=version,
            length=length,
            metadata_header=raw_metadata,
            content_type=content_type,
            cache_control=f"max-age={cache}" if re.fullmatch(r"-?\d+", cache) else "no-cache",
            user_metadata=_json_object(metadata.get("metadata")),
            owner=caller.sub,
            created_at=self.clock(),
        )
        self.uploads[upload_id] = upload
        self.part_path(upload).touch()
        self._save(upload)
        self.storage.counters.tus_creations += 1
        headers = {"tus-resumable": TUS_VERSION, "location": self._location(request, upload_id)}
        if request.header("content-type") == OFFSET_TYPE:  # creation-with-upload
            async with self._locked(upload) as cancel:
                headers.update(await self._receive(request, upload, cancel))
        elif length == 0:
            headers.update(await self._finish(request, upload))
        if not upload.completed:
            headers["upload-expires"] = self._expires_header(upload)
        return Response(201, b"", headers)

    async def head(self, request: Request) -> Response:
        storage_caller(self.storage.tokens, request)
        _check_protocol(request)
        upload = self._lookup(request)
        headers = {
            "tus-resumable": TUS_VERSION,
            "cache-control": "no-store",
            "upload-offset": str(upload.offset),
            "upload-length": str(upload.length),
            "upload-metadata": upload.metadata_header,
        }
        return Response(200, b"", headers)

    async def patch(self, request: Request) -> Response:
        caller = storage_caller(self.storage.tokens, request)
        _check_protocol(request)
        offset_text = request.header("upload-offset")
        if offset_text is None:
            raise _tus_error(403, "Upload-Offset header required\n")
        if request.header("content-type") is None:
            raise _tus_error(403, "Content-Type header required\n")
        bucket_name, name = self._decode(request.route_params["upload_id"])
        self._can_upload(caller, request, bucket_name, name)
        self._bucket(bucket_name)
        upload = self._lookup(request)
        async with self._locked(upload) as cancel:
            if int(offset_text) != upload.offset:
                raise _tus_error(409, "Upload-Offset conflict\n")
            headers = await self._receive(request, upload, cancel)
        if not upload.completed:
            headers["upload-expires"] = self._expires_header(upload)
        return Response(204, b"", {"tus-resumable": TUS_VERSION, **headers})

    async def terminate(self, request: Request) -> Response:
        caller = storage_caller(self.storage.tokens, request)
        _check_protocol(request)
        bucket_name, name = self._decode(request.route_params["upload_id"])
        self._can_upload(caller, request, bucket_name, name)
        upload = self._lookup(request, allow_expired=True)
        if upload.completed:
            raise _tus_error(400, "Cannot terminate an already completed upload")
        async with self._locked(upload):
            self.part_path(upload).unlink(missing_ok=True)
            self._stem(upload.upload_id).with_suffix(".json").unlink(missing_ok=True)
            self.uploads.pop(upload.upload_id, None)
            self._digests.pop(upload.upload_id, None)
        return Response(204, b"", {"tus-resumable": TUS_VERSION})

    # -- checks ----------------------------------------------------------------------------

    def _bucket(self, bucket_name: str) -> BucketConfig:
        if bucket_name not in self.store.buckets:
            raise _tus_error(404, "Bucket not found")
        return self.store.buckets[bucket_name]

    def _can_upload(self, caller: Caller, request: Request, bucket_name: str, name: str) -> None:
        """The real ``Uploader.canUpload``: RLS, then (without this request's x-upsert) no object."""
        if not self.storage.allowed(caller, bucket_name, name):
            raise _tus_error(403, RLS_MESSAGE)
        upsert = request.header("x-upsert", "") == "true"
        if not upsert and self.store.get(bucket_name, name) is not None:
            raise _tus_error(409, "The resource already exists")

    def _decode(self, upload_id: str) -> tuple[str, str]:
        try:
            text = base64.urlsafe_b64decode(upload_id + "=" * (-len(upload_id) % 4)).decode()
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise _tus_error(400, "Invalid upload id") from None
        bucket_name, sep, rest = text.partition("/")
        name, sep2, _version = rest.rpartition("/")
        if not (sep and sep2 and bucket_name and name):
            raise _tus_error(400, "Invalid upload id")
        return bucket_name, name

    def _lookup(self, request: Request, *, allow_expired: bool = False) -> TusUpload:
        upload = self.uploads.get(request.route_params["upload_id"])
        if upload is None:
            raise _tus_error(404, "The file for this url was not found\n")
        if not allow_expired and not upload.completed and self._expired(upload):
            raise _tus_error(410, "The file for this url no longer exists\n")
        return upload

    def _location(self, request: Request, upload_id: str) -> str:
        if self.location_prefix is not None:
            return f"{self.location_prefix.rstrip('/')}/{upload_id}"
        return f"{self.public_origin(request)}{request.path.rstrip('/')}/{upload_id}"

    # -- receiving -------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _locked(self, upload: TusUpload) -> AsyncIterator[asyncio.Event]:
        holder = self._holders.setdefault(upload.upload_id, _Holder())
        if holder.lock.locked():
            holder.cancel.set()  # ask the PATCH in flight to stop, as @tus/server's locker does
        try:
            await asyncio.wait_for(holder.lock.acquire(), self.lock_timeout_s)
        except TimeoutError:
            raise _tus_error(500, "failed to acquire lock before timeout") from None
        holder.cancel = asyncio.Event()
        try:
            yield holder.cancel
        finally:
            holder.lock.release()

    async def _receive(self, request: Request, upload: TusUpload, cancel: asyncio.Event) -> dict[str, str]:
        """Append the body at the upload's offset; headers for the answer."""
        remaining = upload.length - upload.offset
        declared_text = request.header("content-length")
        declared = int(declared_text) if declared_text and declared_text.isdigit() else None
        if declared is not None:
            if declared > remaining:
                raise _tus_error(413, "upload's size exceeded\n")
            self._check_chunk(declared, remaining)
        self.storage.counters.tus_patches += 1
        start = upload.offset
        path = self.part_path(upload)
        aborted = False
        # Unbuffered: what the offset says has arrived is in the file, so a restart of the
        # simulator (which reads the offset back from the file's size) agrees with a HEAD.
        with path.open("r+b", buffering=0) as out:
            out.seek(start)
            out.truncate()
            try:
                aborted = await self._copy(request, out, upload, cancel)
            except ConnectionDropped:
                out.flush()
                upload.offset = out.tell()  # what arrived before the drop is kept
                raise
            written = out.tell() - start
            if written > remaining:
                out.truncate(start)
                upload.offset = start
                raise _tus_error(413, "upload's size exceeded\n")
            if not aborted and declared is None and written not in (remaining, 0):
                try:
                    self._check_chunk(written, remaining)
                except Refusal:
                    out.truncate(start)
                    upload.offset = start
                    raise
        if aborted:
            raise _tus_error(400, "Request aborted due to lock acquired")
        headers = {"upload-offset": str(upload.offset)}
        if upload.offset == upload.length:
            headers.update(await self._finish(request, upload))
            headers["upload-offset"] = str(upload.offset)
        return headers

    def _check_chunk(self, size: int, remaining: int) -> None:
        if size not in (self.chunk_size, remaining, 0):
            raise _tus_error(
                400,
                f"Chunk size must be {self.chunk_size} bytes except for the last chunk "
                f"(got {size}, {remaining} bytes remain)\n",
            )

    async def _copy(self, request: Request, out: Any, upload: TusUpload, cancel: asyncio.Event) -> bool:
        """Write chunks as they arrive; True when another request took the lock over.

        The upload's MD5 (the object's ETag) runs along while the bytes land in order, as the
        standard upload's does, so the last PATCH is not held up by re-reading the file; after
        any gap (a simulator restart, a chunk cut back) ``_finish`` reads the file instead.
        """
        body = request.stream()
        digest = self._digests.get(upload.upload_id)
        if digest is None and upload.offset == 0:
            digest = self._digests[upload.upload_id] = _Digest()

        async def pump() -> None:
            async for chunk in body:
                if digest is not None:
                    digest.add(upload.offset, chunk)
                out.write(chunk)
                upload.offset += len(chunk)
                self.storage.counters.tus_bytes += len(chunk)
                if upload.offset > upload.length:
                    return

        pumping = asyncio.ensure_future(pump())
        stop = asyncio.ensure_future(cancel.wait())
        try:
            done, _ = await asyncio.wait({pumping, stop}, return_when=asyncio.FIRST_COMPLETED)
            if pumping not in done:
                pumping.cancel()
                with contextlib.suppress(BaseException):
                    await pumping
                return True
            pumping.result()  # a dropped connection raises here
            return False
        finally:
            stop.cancel()
            if not pumping.done():
                pumping.cancel()

    async def _finish(self, request: Request, upload: TusUpload) -> dict[str, str]:
        """The last byte landed: make the object appear at once, respecting this request's upsert."""
        path = self.part_path(upload)
        digest = self._digests.pop(upload.upload_id, None)
        if digest is not None and digest.end == upload.length:
            etag = f'"{digest.md5.hexdigest()}"'
        else:
            etag = await asyncio.to_thread(file_etag, path)
        upsert = request.header("x-upsert", "") == "true"
        upload.completed = True
        self._save(upload)
        try:
            self.store.commit(
                upload.bucket, upload.name, path, size=upload.length, etag=etag,
                mimetype=upload.content_type, cache_control=upload.cache_control,
                owner=upload.owner, upsert=upsert, user_metadata=upload.user_metadata,
            )
        except DuplicateObject:
            path.unlink(missing_ok=True)
            raise _tus_error(409, "The resource already exists") from None
        return {"tus-complete": "1"}


def _check_protocol(request: Request) -> None:
    """@tus/server's header validation, done before any handler."""
    version = request.header("tus-resumable")
    if version is None:
        headers = _text_headers({"tus-version": TUS_VERSION})
        raise Refusal(Response(412, b"Tus-Resumable Required\n", headers, close=True))
    invalid = []
    if version != TUS_VERSION:
        invalid.append("tus-resumable")
    for name in ("upload-offset", "upload-length"):
        value = request.header(name)
        if value is not None and not _NUMBER.fullmatch(value):
            invalid.append(name)
    metadata = request.header("upload-metadata")
    if metadata is not None:
        try:
            _parse_metadata(metadata)
        except Refusal:
            invalid.append("upload-metadata")
    content_type = request.header("content-type")
    if request.method == "PATCH" and content_type is not None and content_type != OFFSET_TYPE:
        invalid.append("content-type")
    if invalid:
        raise _tus_error(400, f"Invalid {' '.join(invalid)}\n")


def _parse_metadata(header: str) -> dict[str, str]:
    """``key base64,key2 base64``: keys unique and non-empty, values base64."""
    result: dict[str, str] = {}
    for pair in header.split(","):
        key, _, value = pair.strip().partition(" ")
        if not key or key in result or " " in value.strip():
            raise _tus_error(400, "Upload-Metadata is invalid.")
        try:
            result[key] = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise _tus_error(400, "Upload-Metadata is invalid.") from None
    return result


def _json_object(text: str | None) -> dict[str, Any] | None:
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _text_headers(extra: dict[str, str] | None = None) -> dict[str, str]:
    return {"content-type": "text/plain; charset=utf-8", "tus-resumable": TUS_VERSION, **(extra or {})}


def _tus_error(status: int, text: str) -> Refusal:
    # Supabase closes the connection after any TUS error (closeConnectionAfterResponse).
    return Refusal(Response(status, text.encode(), _text_headers(), close=True))
