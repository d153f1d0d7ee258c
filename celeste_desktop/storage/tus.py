"""Resumable uploads to Supabase Storage: an async TUS 1.0.0 client over httpx (``storage3`` has
no TUS support).

- ``POST /storage/v1/upload/resumable`` creates the upload (``Upload-Length``, base64
  ``Upload-Metadata`` with bucketName, objectName, contentType, cacheControl). The ``Location``
  it answers is followed verbatim: it may name another host or path prefix.
- ``PATCH`` sends 6 MB chunks (every chunk but the last exactly ``CHUNK_SIZE``, as Supabase
  requires), each streamed from the spool file piece by piece (`spool.FileSlice`).
- After each acknowledged chunk the URL and the server's ``Upload-Offset`` go to the
  `TusCheckpoints` the caller gives (the engine backs it with the local state), so an app
  restart resumes the same upload.
- Resuming always starts with ``HEAD``: the server says how far it got, and only bytes from
  that offset are sent. A PATCH that fails on the wire (or with a 5xx) is never sent again as
  it was: the retry policy's next attempt for it is a HEAD (see `_patch_or_ask`), because the
  server may have kept part of the chunk and would refuse a PATCH at the old offset.
- An expired or unknown upload URL (410/404) starts a new upload.
- ``ready(end)``, when given, is awaited before each chunk: the engine streams a file that is
  still being downloaded, and a chunk goes out only once its bytes are safely in the spool
  (the last one only once the whole download is verified, so an unverified file never
  completes in storage).
- ``x-upsert: true`` goes on *every* request: the server re-checks the right to write the key
  on each PATCH with that request's own header (see `uploader` for why we overwrite).
- Every request goes through the shared `RetryPolicy`; after an error reply the connection is
  closed (`spool.CloseOnError`).
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import httpx

from celeste_desktop.domain.errors import MalformedResponse, RemoteError, ServiceUnavailable
from celeste_desktop.net.clock import Clock
from celeste_desktop.net.policy import Action, RetryPolicy, Verdict, supabase_storage_classifier
from celeste_desktop.storage.errors import explain
from celeste_desktop.storage.spool import CloseOnError, FileSlice
from celeste_desktop.storage.target import SupabaseTarget

__all__ = ["CHUNK_SIZE", "SERVICE", "TusCheckpoint", "TusCheckpoints", "TusClient", "TusResult"]

TUS_VERSION = "1.0.0"
CHUNK_SIZE = 6 * 1024 * 1024
OFFSET_TYPE = "application/offset+octet-stream"
SERVICE = "Supabase Storage"
_MAX_RESTARTS = 2  # new uploads after expired URLs, per call
_MAX_STALLS = 6  # rounds in a row in which the server's offset did not move


@dataclass(frozen=True)
class TusCheckpoint:
    """A started upload: its URL and the offset the server last acknowledged."""

    url: str
    offset: int


class TusCheckpoints(Protocol):
    """Where the upload URL and acknowledged offset survive an app restart (the local state)."""

    def load(self, upload_id: str) -> TusCheckpoint | None: ...

    def save(self, upload_id: str, url: str, offset: int) -> None: ...

    def clear(self, upload_id: str) -> None: ...


@dataclass(frozen=True)
class TusResult:
    url: str
    size: int
    resumed_from: int  # the server's offset when this call picked up an earlier upload (else 0)
    restarted: bool  # an expired URL forced a new upload
    bytes_sent: int  # body bytes PATCH requests put on the wire in this call


class _Expired(Exception):
    """The upload URL is gone (410/404) or describes another upload: start a new one."""


@dataclass
class _State:
    url: str | None = None
    offset: int = 0
    sent: int = 0


def _tus_classifier(response: httpx.Response) -> Verdict:
    # 404/410: the upload is gone (start anew); 409: offset conflict or another client holds
    # the upload's lock (ask HEAD where it stands). Everything else as Storage errors.
    if response.status_code in (404, 409, 410):
        return Verdict(Action.RETURN)
    return supabase_storage_classifier(response)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def _header_int(response: httpx.Response, name: str) -> int | None:
    value = response.headers.get(name)
    if value is None:
        return None
    if not value.strip().isdigit():
        raise MalformedResponse(f"{SERVICE} sent an unreadable {name} header.", service=SERVICE)
    return int(value)


class TusClient:
    """Uploads one file at a time through TUS; share one per target."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        policy: RetryPolicy,
        target: SupabaseTarget,
        checkpoints: TusCheckpoints,
        *,
        clock: Clock,
        chunk_size: int = CHUNK_SIZE,
        cache_control: str = "3600",
    ) -> None:
        self._client = client
        self._policy = policy
        self._target = target
        self._checkpoints = checkpoints
        self._clock = clock
        self._chunk_size = chunk_size
        self._cache_control = cache_control
        self._close_on_error = CloseOnError()

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {**self._target.headers(), "Tus-Resumable": TUS_VERSION, "x-upsert": "true", **(extra or {})}

    async def upload(
        self,
        source: Path,
        key: str,
        *,
        size: int,
        content_type: str,
        upload_id: str,
        display_path: str | None = None,
        progress: Callable[[int], None] | None = None,
        ready: Callable[[int], Awaitable[None]] | None = None,
    ) -> TusResult:
        """Upload ``size`` bytes of ``source`` to ``key``, resuming the upload saved under ``upload_id``.

        ``ready(end)``: awaited before sending bytes up to ``end`` (see the module docstring).
        """
        display = display_path or key
        state = _State()
        resumed_from = 0
        checkpoint = self._checkpoints.load(upload_id)
        if checkpoint is not None:
            probe = await self._probe(checkpoint.url, display)
            if probe is not None and probe[1] in (None, size) and probe[0] <= size:
                state.url, state.offset = checkpoint.url, probe[0]
                resumed_from = state.offset
            else:
                self._checkpoints.clear(upload_id)
        restarts = 0
        while True:
            try:
                if state.url is None:
                    state.url = await self._create(key, size, content_type, display)
                    state.offset = 0
                    self._checkpoints.save(upload_id, state.url, 0)
                await self._send_chunks(source, state, size, upload_id, display, progress, ready)
                break
            except _Expired:
                restarts += 1
                self._checkpoints.clear(upload_id)
                if restarts > _MAX_RESTARTS:
                    raise ServiceUnavailable(
                        f"{SERVICE} kept discarding the upload of “{display}” before it finished; "
                        "the copy will try again later.",
                        service=SERVICE,
                    ) from None
                state = _State(sent=state.sent)
                resumed_from = 0
        self._checkpoints.clear(upload_id)
        assert state.url is not None
        return TusResult(state.url, size, resumed_from, restarts > 0, state.sent)

    # -- the protocol ------------------------------------------------------------------------

    async def _call(
        self,
        build: Callable[[], httpx.Request],
        *,
        what: str,
        tus_errors: bool = True,
    ) -> httpx.Response:
        try:
            return await self._policy.send(
                self._client,
                build,
                service=SERVICE,
                classify=_tus_classifier if tus_errors else supabase_storage_classifier,
                what=what,
                auth=self._close_on_error,
            )
        except RemoteError as exc:
            target = self._target
            error = explain(exc, yacht_id=target.yacht_id, url=target.url, bucket=target.bucket, op="upload")
            if error is exc:
                raise
            raise error from exc

    async def _create(self, key: str, size: int, content_type: str, display: str) -> str:
        endpoint = self._target.resumable_endpoint
        metadata = ",".join(
            f"{name} {_b64(value)}"
            for name, value in (
                ("bucketName", self._target.bucket),
                ("objectName", key),
                ("contentType", content_type),
                ("cacheControl", self._cache_control),
            )
        )
        headers = self._headers({"Upload-Length": str(size), "Upload-Metadata": metadata})

        def build() -> httpx.Request:
            return self._client.build_request("POST", endpoint, headers=headers, content=b"")

        # Creation errors are ordinary refusals (a 404 here is a missing bucket, not an expiry).
        response = await self._call(build, what=f"starting the upload of “{display}”", tus_errors=False)
        location = response.headers.get("location")
        if response.status_code != 201 or not location:
            raise MalformedResponse(
                f"{SERVICE} did not say where to send “{display}” (no upload URL in its answer).",
                service=SERVICE,
            )
        return str(httpx.URL(endpoint).join(location))

    def _head_request(self, url: str) -> httpx.Request:
        return self._client.build_request("HEAD", url, headers=self._headers())

    async def _probe(self, url: str, display: str) -> tuple[int, int | None] | None:
        """(offset, length) the server holds for ``url``; None when the upload is gone."""
        response = await self._call(lambda: self._head_request(url), what=f"asking how much of “{display}” arrived")
        if response.status_code in (404, 410):
            return None
        offset = _header_int(response, "upload-offset")
        if offset is None:
            raise MalformedResponse(f"{SERVICE} did not say how much of “{display}” arrived.", service=SERVICE)
        return offset, _header_int(response, "upload-length")

    async def _patch_or_ask(
        self, url: str, source: Path, state: _State, length: int, progress: Callable[[int], None] | None, display: str
    ) -> httpx.Response:
        """PATCH one chunk at ``state.offset``; if that attempt fails, the policy's retry is a HEAD."""
        attempts = 0
        start = state.offset
        last = start

        def on_piece(position: int) -> None:
            nonlocal last
            state.sent += position - last
            last = position
            if progress is not None:
                progress(position)

        def build() -> httpx.Request:
            nonlocal attempts, last
            attempts += 1
            if attempts > 1:
                return self._head_request(url)
            last = start
            headers = self._headers(
                {"Upload-Offset": str(start), "Content-Type": OFFSET_TYPE, "Content-Length": str(length)}
            )
            body = FileSlice(source, start, length, on_piece=on_piece)
            return self._client.build_request("PATCH", url, headers=headers, content=body)

        return await self._call(build, what=f"uploading “{display}” (from byte {start})")

    async def _send_chunks(
        self,
        source: Path,
        state: _State,
        size: int,
        upload_id: str,
        display: str,
        progress: Callable[[int], None] | None,
        ready: Callable[[int], Awaitable[None]] | None = None,
    ) -> None:
        assert state.url is not None
        url = state.url
        stalls = 0
        while state.offset < size:
            length = min(self._chunk_size, size - state.offset)
            if ready is not None:
                await ready(state.offset + length)
            response = await self._patch_or_ask(url, source, state, length, progress, display)
            status = response.status_code
            new_offset: int | None
            server_length: int | None
            if status in (404, 410):
                raise _Expired
            if status == 409:
                probe = await self._probe(url, display)
                if probe is None:
                    raise _Expired
                new_offset, server_length = probe
            elif response.request.method == "HEAD":
                new_offset = _header_int(response, "upload-offset")
                server_length = _header_int(response, "upload-length")
            else:
                new_offset, server_length = _header_int(response, "upload-offset"), size
            if new_offset is None or new_offset > size:
                raise MalformedResponse(f"{SERVICE} reported an impossible offset for “{display}”.", service=SERVICE)
            if server_length not in (None, size):
                raise _Expired  # the URL describes another upload: start afresh
            if new_offset == state.offset:
                stalls += 1
                if stalls > _MAX_STALLS:
                    raise ServiceUnavailable(
                        f"The upload of “{display}” makes no progress (the server stays at byte "
                        f"{new_offset}); the copy will try again later.",
                        service=SERVICE,
                    )
                if status == 409:
                    # Another request holds the upload's lock (a PATCH the server has not yet
                    # noticed is dead): give it time to let go.
                    await self._clock.sleep(float(2**stalls))
            else:
                stalls = 0
            state.offset = new_offset
            self._checkpoints.save(upload_id, url, new_offset)
            if progress is not None:
                progress(new_offset)
