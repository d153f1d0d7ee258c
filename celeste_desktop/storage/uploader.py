"""Uploads to Supabase Storage: the standard upload up to 6 MB, TUS above, a size check where
the upload's own reply does not prove the stored size, and server-side moves for renames.

Why the app overwrites (``x-upsert: true`` on every upload): an object's key is derived from
the source file's place in OneDrive (`storage.keys`), so it is the same every time that file is
uploaded. A re-upload happens only because the content changed (or an earlier attempt may have
landed): the object under that key is then stale and must be replaced, and no other file can
ever claim the key, so overwriting cannot clobber someone else's document. Without upsert a
retry after a lost reply would fail with "Duplicate" although the copy succeeded. Objects are
never deleted by the app unless ``delete_objects_on_remove`` says so.

When the size is checked (``/object/info``, else an authenticated HEAD): a standard upload sends
the whole file in one request with a known ``Content-Length``, and Storage answers 200 with
``{"Key": "<bucket>/<key>", "Id": …}`` only after it has read that many bytes and stored the
object (its early answers are refusals, never a 200; a body shorter than announced cannot end
the request, and httpx refuses to send one). So a 200 whose ``Key`` names this object is proof
enough, and the follow-up request — one more round trip per small file, over a satellite link —
is skipped. Any other 200 (no JSON, another key: a proxy or captive portal answering for the
server) is checked as before. After a TUS upload the size is always checked: its bytes arrive in
6 MB requests, possibly across app runs, through an upload URL another client may also hold
(the loser of two uploads to one key gets 409 only on its next chunk), so only the stored object
tells what was assembled.

Every request carries the anon key as ``apikey`` and the yacht key as Bearer, goes through the
shared `RetryPolicy` with `supabase_storage_classifier`, and after an error reply to an upload
the connection is closed (the server answers before reading the body).
"""

from __future__ import annotations

import asyncio
import enum
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from celeste_desktop.domain.errors import (
    CelesteError,
    IntegrityError,
    MalformedResponse,
    QuotaExceeded,
    RemoteError,
    ServiceUnavailable,
)
from celeste_desktop.domain.rules import content_type_for, format_size
from celeste_desktop.net.clock import Clock, SystemClock
from celeste_desktop.net.policy import Action, RetryPolicy, Verdict, parse_error_body, supabase_storage_classifier
from celeste_desktop.storage.errors import explain, too_large
from celeste_desktop.storage.spool import CloseOnError, FileSlice
from celeste_desktop.storage.target import SupabaseTarget
from celeste_desktop.storage.tus import CHUNK_SIZE, SERVICE, TusCheckpoints, TusClient

__all__ = ["STANDARD_LIMIT", "MoveOutcome", "StorageUploader", "UploadResult"]

# Supabase recommends the standard upload up to 6 MB a request; TUS above that.
STANDARD_LIMIT = 6 * 1024 * 1024


@dataclass(frozen=True)
class UploadResult:
    key: str
    size: int
    resumable: bool
    resumed_from: int = 0  # TUS: the offset an earlier (interrupted) upload had reached
    restarted: bool = False  # TUS: an expired upload URL forced a fresh start
    bytes_sent: int = 0  # body bytes put on the wire by this call


class MoveOutcome(enum.Enum):
    MOVED = "moved"
    UNCHANGED = "unchanged"  # same key: nothing to do
    SOURCE_MISSING = "source_missing"  # nothing under the old key: upload the file instead
    DESTINATION_EXISTS = "destination_exists"  # the new key is taken: upload over it instead


def _return_on(*statuses: int) -> Callable[[httpx.Response], Verdict]:
    """Storage's classifier, but hand replies whose real status is in ``statuses`` to the caller."""

    def classify(response: httpx.Response) -> Verdict:
        verdict = supabase_storage_classifier(response)
        if (verdict.status or response.status_code) in statuses:
            return Verdict(Action.RETURN, status=verdict.status, code=verdict.code, detail=verdict.detail)
        return verdict

    return classify


class StorageUploader:
    """Uploads, verifies and moves objects in the target's bucket."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        policy: RetryPolicy,
        target: SupabaseTarget,
        checkpoints: TusCheckpoints,
        *,
        clock: Clock | None = None,
        standard_limit: int = STANDARD_LIMIT,
        chunk_size: int = CHUNK_SIZE,
        cache_control: str = "3600",
    ) -> None:
        self._client = client
        self._policy = policy
        self.target = target
        self._standard_limit = standard_limit
        self._cache_control = cache_control
        self._close_on_error = CloseOnError()
        self._bucket_limit: int | None = None
        self._bucket_limit_known = False
        self._bucket_lock = asyncio.Lock()
        self.tus = TusClient(
            client, policy, target, checkpoints, clock=clock or SystemClock(),
            chunk_size=chunk_size, cache_control=cache_control,
        )  # fmt: skip

    # -- uploads -----------------------------------------------------------------------------

    async def upload(
        self,
        source: Path,
        key: str,
        *,
        upload_id: str,
        content_type: str | None = None,
        display_path: str | None = None,
        progress: Callable[[int], None] | None = None,
        verify: bool = True,
        size: int | None = None,
        ready: Callable[[int], Awaitable[None]] | None = None,
    ) -> UploadResult:
        """Upload ``source`` to ``key`` (standard or TUS by size), then make sure of the stored size.

        ``size`` and ``ready`` stream a file still being downloaded into ``source``: ``size`` is
        what it will hold, and ``ready(end)`` returns once its bytes up to ``end`` are there
        (see `tus`); the last bytes only once the download is verified.

        ``upload_id`` names the TUS checkpoint (the engine's per-file transfer). With ``verify``
        the stored size is asked for, unless the reply of a standard upload already proves it
        (see the module docstring). Raises `FileTooLarge` for a file over the bucket's limit,
        `ConfigError` for a setting to fix, `IntegrityError` when the stored size differs.
        """
        if not self.target.owns(key):
            raise ValueError(f"key {key!r} is not under this yacht's folder")
        display = display_path or key
        kind = content_type or content_type_for(key.rsplit("/", 1)[-1])
        if size is None:
            size = (await asyncio.to_thread(source.stat)).st_size
        limit = await self.bucket_limit()
        if limit is not None and size > limit:
            # Refused here rather than by the server: its early refusal of a large body can be
            # lost in the connection reset that follows, and the bytes would cross for nothing.
            raise too_large(display, size, limit, service=SERVICE)
        confirmed = False
        try:
            if size <= self._standard_limit:
                confirmed = await self._standard(source, key, size, kind, display, progress, ready)
                result = UploadResult(key, size, resumable=False, bytes_sent=size)
            else:
                outcome = await self.tus.upload(
                    source, key, size=size, content_type=kind, upload_id=upload_id,
                    display_path=display, progress=progress, ready=ready,
                )  # fmt: skip
                result = UploadResult(
                    key, size, resumable=True, resumed_from=outcome.resumed_from,
                    restarted=outcome.restarted, bytes_sent=outcome.bytes_sent,
                )  # fmt: skip
        except QuotaExceeded as exc:
            if exc.status != 413:
                raise
            limit = await self.bucket_limit()
            where = "the bucket limit" if limit is not None else "the project's upload size limit"
            raise too_large(display, size, limit, limit_name=where, service=SERVICE) from exc
        if verify and not confirmed:
            await self.verify(key, size, display_path=display)
        return result

    async def _standard(
        self,
        source: Path,
        key: str,
        size: int,
        content_type: str,
        display: str,
        progress: Callable[[int], None] | None,
        ready: Callable[[int], Awaitable[None]] | None = None,
    ) -> bool:
        """POST the file; True when the reply names the stored object (so its size is proven).

        With ``ready`` the body streams behind a download: each piece waits for its bytes, the
        last for the verified download, so an unverified file is never stored.
        """
        url = self.target.object_url(key)
        headers = {
            **self.target.headers(),
            "Content-Type": content_type,
            "Content-Length": str(size),
            "x-upsert": "true",
            "cache-control": f"max-age={self._cache_control}",
        }

        def build() -> httpx.Request:
            body = FileSlice(source, 0, size, on_piece=progress, ready=ready)
            return self._client.build_request("POST", url, headers=headers, content=body)

        response = await self._send(build, what=f"uploading “{display}”", op="upload", auth=self._close_on_error)
        return _names_object(response, f"{self.target.bucket}/{key}")

    async def _send(
        self,
        build: Callable[[], httpx.Request],
        *,
        what: str,
        op: str,
        classify: Callable[[httpx.Response], Verdict] = supabase_storage_classifier,
        auth: httpx.Auth | None = None,
    ) -> httpx.Response:
        try:
            return await self._policy.send(
                self._client, build, service=SERVICE, classify=classify, what=what, auth=auth
            )
        except RemoteError as exc:
            target = self.target
            error: CelesteError = explain(exc, yacht_id=target.yacht_id, url=target.url, bucket=target.bucket, op=op)
            if error is exc:
                raise
            raise error from exc

    # -- checks ------------------------------------------------------------------------------

    async def object_size(self, key: str) -> int | None:
        """The stored size of ``key`` (``/object/info``, else HEAD), or None when there is none."""
        url = self.target.object_url(key, kind="info")
        headers = self.target.headers()
        response = await self._send(
            lambda: self._client.build_request("GET", url, headers=headers),
            what="checking an upload",
            op="read",
            classify=_return_on(404),
        )
        if response.status_code < 400:
            try:
                info = response.json()
            except ValueError:
                info = None
            size = info.get("size") if isinstance(info, dict) else None
            if isinstance(size, int) and not isinstance(size, bool):
                return size
        elif _is_bucket_missing(response):
            raise explain(
                RemoteError("Bucket not found", status=404, service=SERVICE),
                yacht_id=self.target.yacht_id, url=self.target.url, bucket=self.target.bucket, op="bucket",
            )  # fmt: skip
        # Older servers have no info route: the authenticated HEAD carries the size.
        head_url = self.target.object_url(key, kind="authenticated")
        response = await self._send(
            lambda: self._client.build_request("HEAD", head_url, headers=headers),
            what="checking an upload",
            op="read",
            classify=_return_on(404),
        )
        if response.status_code >= 400:
            return None
        length = response.headers.get("content-length")
        if length is None or not length.isdigit():
            raise MalformedResponse(f"{SERVICE} did not report the size of an uploaded file.", service=SERVICE)
        return int(length)

    async def verify(self, key: str, size: int, *, display_path: str | None = None) -> None:
        """Raise `IntegrityError` unless ``key`` holds exactly ``size`` bytes."""
        stored = await self.object_size(key)
        display = display_path or key
        if stored is None:
            raise IntegrityError(
                f"“{display}” was uploaded but Supabase does not list it; it will be uploaded again.", path=display
            )
        if stored != size:
            raise IntegrityError(
                f"“{display}” is stored with {format_size(stored)} instead of {format_size(size)}; "
                "it will be uploaded again.",
                path=display,
            )

    async def bucket_limit(self) -> int | None:
        """The bucket's ``file_size_limit`` in bytes (None: no bucket limit or unknown); cached.

        Callers at the same moment (the first files of a sync) share one request."""
        if self._bucket_limit_known:
            return self._bucket_limit
        async with self._bucket_lock:
            if self._bucket_limit_known:
                return self._bucket_limit
            return await self._read_bucket_limit()

    async def _read_bucket_limit(self) -> int | None:
        url = self.target.storage(f"bucket/{self.target.bucket}")
        headers = self.target.headers()
        try:
            response = await self._send(
                lambda: self._client.build_request("GET", url, headers=headers), what="reading the bucket", op="bucket"
            )
            limit = response.json().get("file_size_limit")
        except ServiceUnavailable:
            raise  # the link is down: the upload could not go either
        except (CelesteError, ValueError, AttributeError):
            # Only ever a refinement: an older project without the bucket policy still uploads.
            return None
        self._bucket_limit = limit if isinstance(limit, int) and not isinstance(limit, bool) else None
        self._bucket_limit_known = True
        return self._bucket_limit

    # -- moves and deletes -------------------------------------------------------------------

    async def move(self, source_key: str, destination_key: str) -> MoveOutcome:
        """Rename an object on the server (``POST /object/move``): no bytes cross the link."""
        if source_key == destination_key:
            return MoveOutcome.UNCHANGED
        if not (self.target.owns(source_key) and self.target.owns(destination_key)):
            raise ValueError("both keys must lie under this yacht's folder")
        url = self.target.storage("object/move")
        headers = {**self.target.headers(), "Content-Type": "application/json"}
        body = json.dumps(
            {"bucketId": self.target.bucket, "sourceKey": source_key, "destinationKey": destination_key}
        ).encode()
        response = await self._send(
            lambda: self._client.build_request("POST", url, headers=headers, content=body),
            what="moving a renamed file",
            op="move",
            classify=_return_on(404, 409),
        )
        if response.status_code < 400:
            return MoveOutcome.MOVED
        if _is_bucket_missing(response):
            raise explain(
                RemoteError("Bucket not found", status=404, service=SERVICE),
                yacht_id=self.target.yacht_id, url=self.target.url, bucket=self.target.bucket, op="bucket",
            )  # fmt: skip
        status = parse_error_body(response).status or response.status_code
        return MoveOutcome.DESTINATION_EXISTS if status == 409 else MoveOutcome.SOURCE_MISSING

    async def delete(self, key: str) -> bool:
        """Delete ``key``; False when nothing was deleted (gone already, or the key may not delete).

        Yacht keys hold no delete policy (supabase/README.md): objects left behind are swept
        shore-side. This is used only when ``delete_objects_on_remove`` is on.
        """
        url = self.target.object_url(key)
        headers = self.target.headers()
        response = await self._send(
            lambda: self._client.build_request("DELETE", url, headers=headers),
            what="deleting a removed file",
            op="delete",
            classify=_return_on(404, 403),
        )
        return response.status_code < 400


def _names_object(response: httpx.Response, bucket_key: str) -> bool:
    """Whether a successful upload reply is Storage's own ``{"Key": "<bucket>/<key>", …}`` for it."""
    if response.status_code != 200 or "json" not in response.headers.get("content-type", ""):
        return False
    try:
        reply = response.json()
    except ValueError:
        return False
    return isinstance(reply, dict) and reply.get("Key") == bucket_key


def _is_bucket_missing(response: httpx.Response) -> bool:
    body = parse_error_body(response)
    return "bucket" in f"{body.code or ''} {body.message or ''}".lower()
