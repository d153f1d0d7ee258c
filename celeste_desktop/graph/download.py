"""Verified, resumable downloads of OneDrive / SharePoint files to a local spool file.

How one download goes:

1. ``GET /drives/{d}/items/{i}/content`` through the Graph policy, redirects NOT followed:
   the 302 ``Location`` is a short-lived pre-authenticated URL on another host.
2. That URL is fetched with no ``Authorization`` header (the host refuses one, and the token
   must not leak to it), streamed to the spool in bounded memory (writes of ``write_bytes``,
   up to ``_Spool.LAG_WRITES`` times that while the writer lags), hashed on the way (SHA-256
   and QuickXorHash), with an ``fsync`` and a progress callback every ``checkpoint_bytes`` so
   the engine can save a durable offset.
3. A dropped connection resumes with ``Range: bytes=<offset>-`` (and ``If-Range`` with the
   download's ETag). A server that ignores Range answers 200: the spool restarts from 0.
   An expired URL (401/403 from the download host) is replaced by a fresh one and the
   transfer resumes where it was. A call with ``offset > 0`` (after a restart) re-hashes the
   spool's prefix from disk first: local reads are cheap, satellite bytes are not.
4. Whenever the source is looked up again (resume, new URL, retry), a changed cTag / hash /
   size raises `SourceChanged`: bytes of two versions are never mixed.
5. The result is checked against the listing's size and ``quickXorHash``. A mismatch is
   retried once from 0; a second mismatch of a .docx/.xlsx/.pptx in a SharePoint library is
   accepted and flagged ``altered_by_sharepoint`` (SharePoint rewrites Office files' properties
   after upload); anything else raises `IntegrityError`. Without a listed hash, the size is
   checked and the result says so in ``note``.

Writing and hashing run in a worker thread, one write (1 MiB, more while the writer lags)
in flight per spool, while the event loop reads the network; the re-hash of a resumed prefix runs in a thread too.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import inspect
import logging
import os
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx

from celeste_desktop.domain.errors import (
    AccessDenied,
    CelesteError,
    IntegrityError,
    MalformedResponse,
    ServiceUnavailable,
    SourceChanged,
)
from celeste_desktop.domain.models import DriveKind, RemoteItem
from celeste_desktop.domain.quickxor import QuickXorHash
from celeste_desktop.graph.client import GraphClient
from celeste_desktop.graph.wire import same_hash
from celeste_desktop.net.clock import Clock, SystemClock
from celeste_desktop.net.policy import Action, RetryPolicy, Verdict, default_classifier
from celeste_desktop.net.replies import describe_transport_error

__all__ = ["DOWNLOAD_SERVICE", "OFFICE_EXTENSIONS", "DownloadProgress", "DownloadResult", "Downloader"]

log = logging.getLogger(__name__)

DOWNLOAD_SERVICE = "OneDrive download"
OFFICE_EXTENSIONS = (".docx", ".xlsx", ".pptx")
NO_HASH_NOTE = "no hash from OneDrive; verified by size"
_MIB = 1024 * 1024
_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.IGNORECASE)
_UNSATISFIED_RANGE = re.compile(r"^\s*bytes\s+\*/(\d+)\s*$", re.IGNORECASE)
# Spool writes and hashing, off the event loop: each spool has one write in flight at a time;
# SHA-256 and the file write release the GIL, so they overlap the network reads. Checkpoint
# fsyncs run in threads of their own, beside the writes.
_WRITER = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="celeste-spool")
_FSYNC = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="celeste-fsync")


@dataclass(frozen=True, slots=True)
class DownloadProgress:
    """``offset`` bytes are in the spool and flushed to disk: safe to save as a checkpoint."""

    item_id: str
    offset: int
    total: int | None  # the size being served, when known


@dataclass(frozen=True, slots=True)
class DownloadResult:
    sha256: str  # lower-case hex
    quickxor: str  # base64, as Graph writes it
    size: int
    altered_by_sharepoint: bool = False
    note: str | None = None
    resumed_from: int = 0  # the offset this call could keep from the spool


ProgressCallback = Callable[[DownloadProgress], Awaitable[None] | None]


class _NoAuth(httpx.Auth):
    """Sends requests as built: overrides any client-level auth for the download host."""


_NO_AUTH = _NoAuth()


def _download_classifier(response: httpx.Response) -> Verdict:
    """An expired or refused pre-authenticated URL is fixed by asking Graph for a new one."""
    verdict = default_classifier(response)
    if response.status_code == 416:
        return Verdict(Action.RETURN, status=416)
    if response.status_code in (401, 403) and verdict.code != "malwareDetected":
        return Verdict(
            Action.REFRESH,
            AccessDenied,
            response.status_code,
            verdict.code,
            verdict.detail,
            hint="The download link was refused even after asking OneDrive for a new one; the "
            "file will be tried again later.",
        )
    return verdict


def _same_content(listed: RemoteItem, current: RemoteItem) -> bool:
    """Same bytes? cTag first (a rename keeps it), then hash and size; eTag as a last resort."""
    if listed.ctag and current.ctag:
        return listed.ctag == current.ctag
    if listed.quickxor and current.quickxor:
        return same_hash(listed.quickxor, current.quickxor) and listed.size == current.size
    if listed.size != current.size:
        return False
    if listed.etag and current.etag:
        return listed.etag == current.etag
    return True


class _Spool:
    """The spool file with its running hashes; bytes land on disk in writes of ``write_bytes``
    or more.

    Each write (with its SHA-256 and QuickXorHash updates) runs in a worker thread while the
    event loop goes on reading the network: one write in flight at a time, so the file is
    written in order. While it runs, arriving chunks gather (up to ``LAG_WRITES`` writes'
    worth, then the reader waits) and go as one write next, so a writer slowed by a busy event
    loop (it needs the GIL between its steps) does not stall the network: writes grow instead.

    At every ``checkpoint_bytes`` an ``fsync`` runs in a thread of its own, beside the next
    writes (one at a time): it makes durable everything written before it started, which is
    what ``synced`` then says. A 4 ms fsync per checkpoint no longer holds up the writer.
    ``offset`` counts the bytes received; ``synced`` the bytes known to be on disk (it trails by
    about one checkpoint); ``sync()`` waits until every received byte is.
    """

    LAG_WRITES = 2  # chunks gathered while a write runs, in writes' worth, before the reader waits

    def __init__(
        self,
        path: Path,
        write_bytes: int,
        checkpoint_bytes: int,
        *,
        durable: bool = True,
        on_written: Callable[[int], None] | None = None,
    ) -> None:
        self.path = path
        self.durable = durable
        self.on_written = on_written  # told each new end of the written (readable) bytes
        path.parent.mkdir(parents=True, exist_ok=True)
        self.file: IO[bytes] = path.open("r+b" if path.exists() else "w+b")
        self.write_bytes = write_bytes
        self.checkpoint_bytes = checkpoint_bytes
        # Received chunks not yet handed to the writer: kept as they came (the writer thread
        # writes and hashes them one by one), so the event loop never copies a byte.
        self.chunks: list[bytes] = []
        self.buffered = 0
        self.offset = 0  # bytes received (written, being written, or buffered)
        self.synced = 0
        self.sha256 = hashlib.sha256()
        self.quickxor = QuickXorHash()
        self._writing: concurrent.futures.Future[None] | None = None
        self._writing_checkpoint = False  # the write in flight ends at a checkpoint
        self._writing_end = 0  # where the file ends when that write is done
        self._asked = 0  # the last offset a checkpoint was asked for
        self._fsyncing: concurrent.futures.Future[None] | None = None
        self._fsyncing_end = 0  # what ``synced`` becomes when that fsync is done
        self._fsync_wanted = 0  # a checkpoint that waits for the fsync in flight

    async def resume_at(self, offset: int) -> int:
        """Keep the first ``offset`` bytes (re-hashed from disk) or, if they are not all there, none."""
        kept = await asyncio.to_thread(self._resume_at, offset)
        if self.on_written is not None:
            self.on_written(kept)
        return kept

    def _resume_at(self, offset: int) -> int:
        self.file.seek(0, os.SEEK_END)
        if offset <= 0 or self.file.tell() < offset:
            self._reset()
            return 0
        self.file.seek(0)
        remaining = offset
        while remaining:
            block = self.file.read(min(self.write_bytes, remaining))
            if not block:  # the file shrank under us: start over
                self._reset()
                return 0
            self.sha256.update(block)
            self.quickxor.update(block)
            remaining -= len(block)
        self.file.truncate(offset)  # anything after the checkpoint may be half-written
        self.file.seek(offset)
        self.offset = self.synced = self._asked = self._writing_end = offset
        self._fsync_wanted = offset
        return offset

    async def reset(self) -> None:
        await self._drain()
        await self._settle_fsync()
        self._reset()
        if self.on_written is not None:
            self.on_written(0)

    def _reset(self) -> None:
        self.chunks = []
        self.buffered = 0
        self.file.seek(0)
        self.file.truncate(0)
        self.offset = self.synced = self._asked = self._writing_end = 0
        self._fsync_wanted = 0
        self.sha256 = hashlib.sha256()
        self.quickxor = QuickXorHash()

    async def feed(self, chunk: bytes) -> None:
        self.chunks.append(chunk)
        self.buffered += len(chunk)
        self.offset += len(chunk)
        if self._fsyncing is not None and self._fsyncing.done():
            self._fsync_done()
        if self.buffered >= self.write_bytes:
            writing = self._writing
            if writing is None or writing.done() or self.buffered >= self.write_bytes * self.LAG_WRITES:
                await self._write_out(checkpoint=self.offset - self._asked >= self.checkpoint_bytes)

    async def sync(self) -> None:
        """Every received byte written and (if durable) on disk."""
        if self.buffered or self._writing is not None:  # bytes not yet (known to be) written
            await self._write_out(checkpoint=True)
        await self._drain()
        await self._settle_fsync()
        if self.synced != self.offset:  # the last checkpoint waited for an fsync in flight
            self._fsync_wanted = self.offset
            self._start_fsync()
            await self._settle_fsync()

    async def _write_out(self, *, checkpoint: bool) -> None:
        await self._drain()
        data, self.chunks, self.buffered = self.chunks, [], 0
        if checkpoint:
            self._asked = self.offset
        self._writing_checkpoint = checkpoint
        self._writing_end = self.offset
        self._writing = _WRITER.submit(self._write, data)

    def _write(self, chunks: list[bytes]) -> None:  # in the writer thread
        for data in chunks:
            self.file.write(data)
            self.sha256.update(data)
            self.quickxor.update(data)
        self.file.flush()

    async def _drain(self) -> None:
        writing, self._writing = self._writing, None
        if writing is None:
            return
        await asyncio.wrap_future(writing)
        if self._writing_checkpoint:
            self._writing_checkpoint = False
            self._fsync_wanted = self._writing_end
            self._start_fsync()
        if self.on_written is not None:
            self.on_written(self._writing_end)

    def _start_fsync(self) -> None:
        """Make ``[0, _fsync_wanted)`` durable: at once without durability, else by an fsync in its
        own thread, unless one is running (``_fsync_done`` then starts the next)."""
        if self._fsync_wanted <= self.synced or self._fsyncing is not None:
            return
        if not self.durable:
            self.synced = self._fsync_wanted
            return
        self._fsyncing_end = self._fsync_wanted
        self._fsyncing = _FSYNC.submit(self._fsync_file)

    def _fsync_file(self) -> None:  # in an fsync thread
        os.fsync(self.file.fileno())

    def _fsync_done(self) -> None:
        fsyncing, self._fsyncing = self._fsyncing, None
        assert fsyncing is not None
        fsyncing.result()  # a disk error surfaces here
        self.synced = max(self.synced, self._fsyncing_end)
        self._start_fsync()

    async def _settle_fsync(self) -> None:
        """Wait for the fsync in flight (and the one it left wanted)."""
        while self._fsyncing is not None:
            with contextlib.suppress(Exception):
                await asyncio.wrap_future(self._fsyncing)
            self._fsync_done()

    def close(self) -> None:
        for pending in (self._writing, self._fsyncing):
            if pending is not None:  # cancelled mid-write: let the thread finish before closing
                with contextlib.suppress(Exception):
                    pending.result()
        self._writing = self._fsyncing = None
        self.file.close()


@dataclass
class _Source:
    """The file being copied and where its bytes can be fetched right now."""

    item: RemoteItem
    url: str | None = None
    etag: str | None = None  # the download host's validator, for If-Range


@dataclass(frozen=True, slots=True)
class _Fetched:
    sha256: str
    quickxor: str
    size: int
    resumed_from: int


class Downloader:
    """Downloads files for the engine; see the module docstring."""

    def __init__(
        self,
        client: GraphClient,
        *,
        http: httpx.AsyncClient | None = None,
        policy: RetryPolicy | None = None,
        clock: Clock | None = None,
        checkpoint_bytes: int = 2 * _MIB,
        write_bytes: int = _MIB,
        max_stalls: int = 6,
    ) -> None:
        """``policy``: the download host's own policy (default: the Graph client's)."""
        self._client = client
        self._http = http or client.http
        self._policy = policy or client.policy
        self._clock = clock or SystemClock()
        self._checkpoint_bytes = max(1, checkpoint_bytes)
        self._write_bytes = min(_MIB, max(1, write_bytes))
        self._max_stalls = max(1, max_stalls)
        self._kinds: dict[str, DriveKind] = {}

    async def download(
        self,
        item: RemoteItem,
        spool: Path,
        *,
        offset: int = 0,
        on_progress: ProgressCallback | None = None,
        drive_kind: DriveKind | None = None,
        durable: bool = True,
        on_written: Callable[[int], None] | None = None,
    ) -> DownloadResult:
        """Copy ``item`` into ``spool`` (resuming after ``offset`` flushed bytes) and verify it.

        ``durable=False`` skips the ``fsync`` calls: for a file the caller keeps no checkpoint
        of (a small file is fetched again whole after a crash), flushing to the OS is enough.
        ``on_written(end)`` hears each new end of the bytes written to the spool (readable by an
        upload that streams behind the download); ``0`` after the spool started over.

        ``drive_kind`` (looked up when needed if not given) decides whether SharePoint may
        have altered an Office file. Folders and OneNote notebooks have no content: passing
        one is a programming error (``ValueError``); the planner skips them.
        """
        if item.is_folder or item.package_type is not None:
            raise ValueError(f"{item.name!r} has no content to download")
        if item.malware:
            raise AccessDenied(
                f"OneDrive flagged {item.name!r} as malware and blocks its download; it is not "
                "copied. Ask the file's owner to check it.",
                code="malwareDetected",
                service=DOWNLOAD_SERVICE,
                title="Blocked as malware",
                path=item.name,
            )
        first = await self._fetch(
            item, spool, offset, on_progress, look_up=offset > 0, durable=durable, on_written=on_written
        )
        if self._verified(item, first):
            return self._result(item, first)
        log.warning("download of %s did not verify; fetching it once more from the start", item.name)
        second = await self._fetch(item, spool, 0, on_progress, look_up=True, durable=durable, on_written=on_written)
        if self._verified(item, second):
            return self._result(item, second)
        if item.name.lower().endswith(OFFICE_EXTENSIONS) and await self._kind(item, drive_kind) is DriveKind.SHAREPOINT:
            return DownloadResult(
                sha256=second.sha256,
                quickxor=second.quickxor,
                size=second.size,
                altered_by_sharepoint=True,
                note=f"SharePoint altered this Office file after upload (library properties): the copy "
                f"keeps the bytes SharePoint serves ({second.size:,} bytes; the listing said {item.size:,}).",
                resumed_from=first.resumed_from,
            )
        raise IntegrityError(
            f"{item.name}: the downloaded bytes do not match OneDrive's hash twice (listed "
            f"{item.size:,} bytes, received {second.size:,}); the file will be retried later.",
            path=item.name,
        )

    # -- verification --------------------------------------------------------------------------

    @staticmethod
    def _verified(item: RemoteItem, fetched: _Fetched) -> bool:
        if fetched.size != item.size:
            return False
        return item.quickxor is None or same_hash(item.quickxor, fetched.quickxor)

    @staticmethod
    def _result(item: RemoteItem, fetched: _Fetched) -> DownloadResult:
        return DownloadResult(
            sha256=fetched.sha256,
            quickxor=fetched.quickxor,
            size=fetched.size,
            note=None if item.quickxor else NO_HASH_NOTE,
            resumed_from=fetched.resumed_from,
        )

    async def _kind(self, item: RemoteItem, given: DriveKind | None) -> DriveKind | None:
        if given is not None:
            return given
        if item.drive_id not in self._kinds:
            try:
                self._kinds[item.drive_id] = (await self._client.get_drive(item.drive_id)).kind
            except CelesteError as exc:
                log.warning("could not tell the kind of drive %s: %s", item.drive_id, exc)
                return None
        return self._kinds[item.drive_id]

    # -- the source ----------------------------------------------------------------------------

    async def _look_up(self, source: _Source) -> None:
        """Fresh metadata and URL; `SourceChanged` when the content is no longer the listed one."""
        item = source.item
        current, url = await self._client.get_item_for_download(item.drive_id, item.item_id)
        if not _same_content(item, current):
            raise SourceChanged(
                f"{item.name} changed in OneDrive while it was being copied; it will be copied "
                "again in its new version.",
                path=item.name,
            )
        source.url = url or await self._client.content_location(
            item.drive_id, item.item_id, what=f"asking for a new download link for {item.name}"
        )
        if source.url is None:
            raise MalformedResponse(f"OneDrive gave no download link for {item.name}.", service=DOWNLOAD_SERVICE)

    async def _open(self, source: _Source, offset: int) -> httpx.Response:
        """One request to the download host (a redirect there is followed by hand, without auth)."""
        for _ in range(5):

            def build() -> httpx.Request:  # called per attempt: a refresh may have replaced the URL
                assert source.url is not None
                headers = {"Accept-Encoding": "identity"}  # Range counts bytes of the file itself
                if offset > 0:
                    headers["Range"] = f"bytes={offset}-"
                    if source.etag and not source.etag.startswith("W/"):
                        headers["If-Range"] = source.etag
                request = httpx.Request("GET", source.url, headers=headers)
                request.headers.pop("Authorization", None)
                return request

            async def refresh() -> None:
                await self._look_up(source)

            response = await self._policy.send(
                self._http,
                build,
                service=DOWNLOAD_SERVICE,
                stream=True,
                refresh=refresh,
                classify=_download_classifier,
                what=f"downloading {source.item.name}",
                auth=_NO_AUTH,
            )
            location = response.headers.get("location")
            if 300 <= response.status_code < 400 and location:
                await response.aclose()
                source.url = str(response.url.join(location))
                continue
            return response
        raise MalformedResponse(
            f"The download of {source.item.name} was redirected too many times.", service=DOWNLOAD_SERVICE
        )

    # -- one pass over the bytes ---------------------------------------------------------------

    async def _fetch(
        self,
        item: RemoteItem,
        path: Path,
        offset: int,
        on_progress: ProgressCallback | None,
        *,
        look_up: bool,
        durable: bool = True,
        on_written: Callable[[int], None] | None = None,
    ) -> _Fetched:
        spool = _Spool(path, self._write_bytes, self._checkpoint_bytes, durable=durable, on_written=on_written)
        try:
            return await self._fetch_into(item, spool, offset, on_progress, look_up=look_up)
        finally:
            spool.close()

    async def _fetch_into(
        self, item: RemoteItem, spool: _Spool, offset: int, on_progress: ProgressCallback | None, *, look_up: bool
    ) -> _Fetched:
        source = _Source(item)
        total: int | None = None

        async def report() -> None:
            if on_progress is not None:
                outcome = on_progress(DownloadProgress(item.item_id, spool.synced, total))
                if inspect.isawaitable(outcome):
                    await outcome

        resumed_from = await spool.resume_at(offset)
        if resumed_from != offset or resumed_from == 0:
            await report()  # the spool starts over (or the saved checkpoint no longer holds)
        if look_up or resumed_from > 0:
            await self._look_up(source)
        else:
            source.url = await self._client.content_location(
                item.drive_id, item.item_id, what=f"downloading {item.name}"
            )
            if source.url is None:  # no redirect (a proxy followed it?): ask for the URL itself
                await self._look_up(source)
        stalls = 0  # requests in a row that brought no new byte
        while True:
            if stalls >= self._max_stalls:
                raise ServiceUnavailable(
                    f"The download of {item.name} kept breaking off without progress. It resumes "
                    f"from {spool.offset:,} bytes next time.",
                    service=DOWNLOAD_SERVICE,
                    path=item.name,
                )
            if stalls:
                await self._clock.sleep(min(30.0, 2.0 ** (stalls - 1)))
            started_at = spool.offset
            response = await self._open(source, spool.offset)
            try:
                status = response.status_code
                served_etag = response.headers.get("etag")
                if status == 416:
                    match = _UNSATISFIED_RANGE.match(response.headers.get("content-range", ""))
                    if match and int(match[1]) == spool.offset:
                        total = spool.offset
                        break  # everything was already here
                    await spool.reset()
                    await report()
                    stalls += 1
                    continue
                if status == 206:
                    match = _CONTENT_RANGE.match(response.headers.get("content-range", ""))
                    if match is None or int(match[1]) != spool.offset:
                        await spool.reset()  # not the range asked for: start clean
                        await report()
                        stalls += 1
                        continue
                    total = int(match[3]) if match[3] != "*" else None
                elif status == 200:
                    if spool.offset > 0:  # Range ignored, or If-Range found another version
                        if source.etag and served_etag and served_etag != source.etag:
                            await self._look_up(source)  # SourceChanged if the content moved on
                        await spool.reset()
                        started_at = 0
                        source.etag = served_etag  # the version now being received
                        await report()
                    length = response.headers.get("content-length")
                    total = int(length) if length and length.isdigit() else None
                else:
                    raise MalformedResponse(
                        f"The download host answered {status} for {item.name}.", status=status, service=DOWNLOAD_SERVICE
                    )
                source.etag = source.etag or served_etag
                try:
                    reported = spool.synced
                    async for chunk in response.aiter_bytes():
                        await spool.feed(chunk)
                        if spool.synced != reported:  # a checkpoint reached the disk
                            reported = spool.synced
                            await report()
                except httpx.TransportError as exc:
                    await spool.sync()  # keep what arrived: the next request asks for the rest
                    await report()
                    stalls = 0 if spool.offset > started_at else stalls + 1
                    log.info(
                        "download of %s broke off at %d bytes (%s); resuming",
                        item.name,
                        spool.offset,
                        describe_transport_error(exc),
                    )
                    continue
            finally:
                await response.aclose()
            await spool.sync()
            if total is not None and spool.offset < total:
                stalls = 0 if spool.offset > started_at else stalls + 1
                continue  # the body ended early without an error: ask for the rest
            break
        await report()
        return _Fetched(
            sha256=spool.sha256.hexdigest(),
            quickxor=spool.quickxor.base64(),
            size=spool.offset,
            resumed_from=resumed_from,
        )
