"""Carrying out one planned action: download → upload → register, relocate, register, delete, skip.

Every step leaves a checkpoint in the local state before the next begins, so a kill at any
instant resumes where it stopped: the download from its flushed offset, the TUS upload from the
offset the server confirms, and an upload already confirmed is not sent again. Registration is
an idempotent upsert keyed by the document id, so doing it twice after a crash is harmless.

A small file (at most `SMALL_FILE_BYTES`, sent in one request) keeps no checkpoint at all: no
per-step state rows, no ``fsync`` of its spool. A kill mid-way leaves it undelivered, and the
next run fetches and sends it whole again — at most `SMALL_FILE_BYTES` per file in flight, about
what a large file risks between its checkpoints (one 2 MiB interval plus the writes and TUS
chunk in flight) — while each small file costs one local transaction instead of a dozen
(benchmark B2).

When an action is done, its row in the job's manifest (the job's counters) and its shore-side
status are written *before* the local state records it as done: a kill in between then only
makes the next run do the idempotent steps again (and replace the row), whereas the other order
left a finished file that no later run plans, missing from the counters and from shore.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import enum
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from celeste_desktop.domain.errors import CelesteError
from celeste_desktop.domain.models import (
    ActionKind,
    DeliveredFile,
    Drive,
    FileProblem,
    FileProblemKind,
    PlannedAction,
    RemoteItem,
)
from celeste_desktop.domain.quickxor import QuickXorHash
from celeste_desktop.domain.rules import content_type_for
from celeste_desktop.engine.events import Event, FileProgress, FileSkipped
from celeste_desktop.engine.ports import Destination, ShoreReporter, Source
from celeste_desktop.graph.download import DownloadProgress, DownloadResult
from celeste_desktop.net.clock import Clock
from celeste_desktop.storage.registration import DocumentRecord
from celeste_desktop.storage.uploader import MoveOutcome
from celeste_desktop.store.db import StateDB
from celeste_desktop.store.records import FileState, ManifestOutcome, ManifestRow

log = logging.getLogger(__name__)
_HASH_CHUNK = 1024 * 1024
# What `ActionRunner.run` was asked to call once the bytes have crossed (see there).
_TRANSFERRED: contextvars.ContextVar[Callable[[], None] | None] = contextvars.ContextVar(
    "celeste_transferred", default=None
)
# At most one download checkpoint interval, and below the size that goes through TUS.
SMALL_FILE_BYTES = 4 * 1024 * 1024


class Outcome(enum.StrEnum):
    DELIVERED = "delivered"
    RELOCATED = "relocated"
    REGISTERED = "registered"
    DELETED = "deleted"
    SKIPPED = "skipped"


@dataclass(slots=True)
class ActionResult:
    outcome: Outcome
    bytes_downloaded: int = 0
    bytes_uploaded: int = 0
    note: str = ""


@dataclass
class ActionContext:
    """What every action needs; built once per job."""

    job_id: str
    yacht_id: str
    state: StateDB
    source: Source
    destination: Destination
    clock: Clock
    emit: Callable[[Event], None]
    spool_dir: Path
    drives: dict[str, Drive]
    items: dict[str, dict[str, RemoteItem]]
    shore: ShoreReporter | None = None
    account_upn: str = ""
    delete_objects_on_remove: bool = False
    recheck_existing: bool = False
    progress: Callable[[str, int, int], None] = field(default=lambda item_id, down, up: None)


def upload_id(action: PlannedAction) -> str:
    return f"{action.drive_id}:{action.item_id}"


def remove_spool(path: Path) -> None:
    """Delete a spool file; a missing one is fine (a restart may already have removed it)."""
    with contextlib.suppress(OSError):
        path.unlink()


def sweep_spool(spool_dir: Path, owned: set[str]) -> int:
    """Delete spool files no transfer checkpoint names; returns how many went.

    A kill between a file's delivery being recorded (which drops its checkpoint) and the spool
    file's removal leaves the file behind with nothing to ever remove it. Call before the job's
    transfers begin, so no spool being written is touched.
    """
    if not spool_dir.is_dir():
        return 0
    keep = {Path(path).resolve() for path in owned}  # resolved: the same file however it was spelt
    removed = 0
    for path in spool_dir.rglob("*.part"):
        if path.resolve() not in keep:
            remove_spool(path)
            removed += 1
    return removed


def spool_present(path: Path) -> bool:
    return path.is_file()


def hash_spool(path: Path) -> tuple[str, str, int]:
    """SHA-256 (hex), QuickXorHash (base64) and size of a finished spool file (local reads only)."""
    sha = hashlib.sha256()
    qxh = QuickXorHash()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            sha.update(chunk)
            qxh.update(chunk)
            size += len(chunk)
    return sha.hexdigest(), qxh.base64(), size


class _NotStreamable(Exception):
    """What was streamed to storage so far cannot be trusted: upload the file afresh."""


class _Arrival:
    """How much of a file being downloaded is written to the spool, for the upload that trails it.

    Written, not fsynced, is enough: after a crash the download resumes from its durable
    checkpoint and the upload from the offset the server confirms, and an upload waiting for
    bytes the download must fetch again simply waits for them (same version: cTag checked).
    """

    def __init__(self, size: int) -> None:
        self.size = size  # the listed size: what the upload was started with
        self.written = 0
        self.uploaded = 0
        self._started_over = False
        self._failed = False
        self._finished: int | None = None  # the verified download's size
        self._changed = asyncio.Event()

    def advance(self, offset: int) -> None:
        if offset < self.written:
            self._started_over = True  # a reset (hash mismatch, Range ignored): bytes sent may differ
        self.written = offset
        self._changed.set()

    def finish(self, size: int) -> None:
        self._finished = size
        self._changed.set()

    def fail(self) -> None:
        self._failed = True
        self._changed.set()

    async def wait_for(self, end: int) -> None:
        """Return once bytes ``[0, end)`` may be sent; the whole file only once verified."""
        while True:
            if self._started_over or self._failed:
                raise _NotStreamable
            if end >= self.size:
                if self._finished is not None:
                    if self._finished != self.size:
                        raise _NotStreamable  # SharePoint served another size: a new upload
                    return
            elif self.written >= end:
                return
            self._changed.clear()
            await self._changed.wait()


class ActionRunner:
    def __init__(self, context: ActionContext) -> None:
        self.ctx = context

    # -- helpers -----------------------------------------------------------------------------

    def _item(self, action: PlannedAction) -> RemoteItem | None:
        return self.ctx.items.get(action.drive_id, {}).get(action.item_id)

    def _record(
        self, action: PlannedAction, *, size: int, sha256: str | None, item: RemoteItem | None
    ) -> DocumentRecord:
        drive = self.ctx.drives.get(action.drive_id)
        return DocumentRecord(
            drive_id=action.drive_id,
            item_id=action.item_id,
            name=action.name,
            folder_path=action.folder_path,
            storage_key=action.storage_key,
            size=size,
            sha256=sha256,
            content_type=content_type_for(action.name),
            drive_name=drive.name if drive else None,
            web_url=item.web_url if item else None,
            ctag=action.ctag,
            quickxor=action.quickxor,
            modified=item.modified if item else None,
        )

    def _manifest(self, action: PlannedAction, outcome: ManifestOutcome, **values: object) -> None:
        row = ManifestRow(
            drive_id=action.drive_id,
            item_id=action.item_id,
            path=action.display_path,
            outcome=outcome,
            at=self.ctx.clock.now(),
            **values,  # type: ignore[arg-type]
        )
        self.ctx.state.add_manifest_rows(self.ctx.job_id, [row])

    def _shore(self, action: PlannedAction, status: str, **values: object) -> None:
        if self.ctx.shore is None or not self.ctx.account_upn:
            return
        try:
            self.ctx.shore.file_state(
                self.ctx.account_upn,
                drive_id=action.drive_id,
                item_id=action.item_id,
                status=status,
                path="/".join(action.folder_path),
                name=action.name,
                size=action.size,
                ctag=action.ctag,
                quickxor=action.quickxor,
                **values,  # type: ignore[arg-type]
            )
        except Exception:  # shore-side status is best effort; the delivery itself stands
            log.exception("could not queue the shore-side status of %s", action.display_path)

    # -- dispatch ----------------------------------------------------------------------------

    async def run(self, action: PlannedAction, *, transferred: Callable[[], None] | None = None) -> ActionResult:
        """Carry out ``action``; ``transferred()`` is called once a file's bytes have crossed, so
        the caller can give its transfer slot to the next file while this one registers (a
        round trip or two on a satellite link)."""
        _TRANSFERRED.set(transferred)  # this call runs in a task of its own: the value is its own
        if action.kind is ActionKind.SKIP:
            return self.skip(action)
        if action.kind is ActionKind.DELETE:
            return await self.delete(action)
        if action.kind is ActionKind.REGISTER:
            return await self.register(action)
        if action.kind is ActionKind.RELOCATE:
            return await self.relocate(action)
        return await self.upload(action)

    def skip(self, action: PlannedAction) -> ActionResult:
        state = self.ctx.state
        item = self._item(action)
        state.set_file_state(action.drive_id, action.item_id, FileState.SKIPPED)
        state.set_problem(
            FileProblem(
                drive_id=action.drive_id,
                item_id=action.item_id,
                path=action.display_path,
                kind=FileProblemKind.SKIPPED,
                code=action.reason_code,
                message=action.reason,
                web_url=item.web_url if item else None,
                updated_at=self.ctx.clock.now(),
            )
        )
        self._manifest(action, ManifestOutcome.SKIPPED, size=action.size, reason=action.reason)
        self.ctx.emit(
            FileSkipped(self.ctx.job_id, action.item_id, action.display_path, action.reason_code, action.reason)
        )
        return ActionResult(Outcome.SKIPPED)

    async def delete(self, action: PlannedAction) -> ActionResult:
        delivered = self.ctx.state.delivered_file(action.drive_id, action.item_id)
        key = delivered.storage_key if delivered else action.storage_key
        record = self._record(action, size=action.size, sha256=delivered.sha256 if delivered else None, item=None)
        record = DocumentRecord(**{**record.__dict__, "storage_key": key})
        await self.ctx.destination.mark_deleted(record)
        if self.ctx.delete_objects_on_remove and key:
            await self.ctx.destination.delete(key)
        self._manifest(action, ManifestOutcome.DELETED, storage_key=key, reason=action.reason)
        self._shore(action, "deleted", storage_path=key)
        self.ctx.state.mark_deleted(action.drive_id, action.item_id)
        return ActionResult(Outcome.DELETED)

    async def register(self, action: PlannedAction) -> ActionResult:
        delivered = self.ctx.state.delivered_file(action.drive_id, action.item_id)
        size = delivered.size if delivered else action.size
        sha = delivered.sha256 if delivered else None
        registration = await self.ctx.destination.register(
            self._record(action, size=size, sha256=sha, item=self._item(action))
        )
        self._manifest(action, ManifestOutcome.DELIVERED, size=size, sha256=sha, storage_key=action.storage_key,
                       registration_id=registration, reason=action.reason)  # fmt: skip
        self.ctx.state.mark_registered(action.drive_id, action.item_id)
        self.ctx.state.clear_problem(action.drive_id, action.item_id)
        return ActionResult(Outcome.REGISTERED)

    async def relocate(self, action: PlannedAction) -> ActionResult:
        previous = action.previous_key
        if previous is None or previous == action.storage_key:
            return await self.register(action)
        outcome = await self.ctx.destination.move(previous, action.storage_key)
        delivered = self.ctx.state.delivered_file(action.drive_id, action.item_id)
        if outcome in (MoveOutcome.SOURCE_MISSING, MoveOutcome.DESTINATION_EXISTS):
            # A crash after an earlier move but before it was recorded leaves the object already
            # at its new key: recognise that instead of sending the bytes again.
            size = await self.ctx.destination.object_size(action.storage_key)
            moved_before = outcome is MoveOutcome.SOURCE_MISSING and delivered is not None and size == delivered.size
            if not moved_before:
                log.info("%s: cannot move %s (%s); uploading instead", action.display_path, previous, outcome.value)
                return await self.upload(action)
        staging = action.reason_code == "staging"
        registration = None
        if not staging:
            size = delivered.size if delivered else action.size
            sha = delivered.sha256 if delivered else None
            record = self._record(action, size=size, sha256=sha, item=self._item(action))
            registration = await self.ctx.destination.register(record, reindex=False)
        if not staging:
            self._manifest(action, ManifestOutcome.RELOCATED, size=action.size, storage_key=action.storage_key,
                           registration_id=registration, reason=action.reason)  # fmt: skip
            self._shore(action, "completed", storage_path=action.storage_key, synced_at=self.ctx.clock.now())
        self.ctx.state.mark_relocated(
            action.drive_id, action.item_id, storage_key=action.storage_key, folder_path=action.folder_path,
            name=action.name, registered=not staging,
        )  # fmt: skip
        return ActionResult(Outcome.RELOCATED)

    # -- the transfer --------------------------------------------------------------------------

    async def upload(self, action: PlannedAction) -> ActionResult:
        ctx = self.ctx
        state = ctx.state
        item = self._item(action)
        if item is None:
            raise CelesteError("the file is no longer listed in OneDrive; it will be re-checked next sync",
                               path=action.display_path)  # fmt: skip
        checkpoint = state.checkpoint(action.drive_id, action.item_id)
        if checkpoint is not None and (
            checkpoint.source_size != action.size
            or checkpoint.source_ctag != action.ctag
            or checkpoint.source_quickxor != action.quickxor
        ):
            # The file changed upstream since this transfer began: never mix old and new bytes.
            log.info("%s changed in OneDrive since its transfer began; starting again", action.display_path)
            remove_spool(Path(checkpoint.spool_path))
            state.clear_checkpoint(action.drive_id, action.item_id)
            checkpoint = None
        if ctx.recheck_existing and (checkpoint is None or not checkpoint.download_complete):
            # After the local state was rebuilt: a file already in storage at its key with its
            # size is taken as delivered rather than crossing the link again.
            existing = await ctx.destination.object_size(action.storage_key)
            if existing is not None and existing == action.size:
                spool = Path(checkpoint.spool_path) if checkpoint else self._spool_path(action)
                return await self._finish(action, item, spool, sha256=None, size=action.size,
                                          bytes_down=0, bytes_up=0, note="already in storage")  # fmt: skip
        if checkpoint is None and action.size <= SMALL_FILE_BYTES:
            return await self._upload_small(action, item)
        if checkpoint is None:
            spool = self._spool_path(action)
            spool.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(OSError):
                spool.unlink()
            checkpoint = state.start_transfer(
                action.drive_id, action.item_id, spool_path=str(spool), source_size=action.size,
                source_ctag=action.ctag, source_quickxor=action.quickxor,
            )  # fmt: skip
        spool = Path(checkpoint.spool_path)
        if checkpoint.download_complete and not spool_present(spool):
            # The spool vanished (a cleaner, a disk swap): the checkpoint cannot be trusted, so the
            # file is fetched again rather than failing the job.
            log.info("%s: spool file missing; downloading again", action.display_path)
            checkpoint = state.start_transfer(
                action.drive_id, action.item_id, spool_path=str(spool), source_size=action.size,
                source_ctag=action.ctag, source_quickxor=action.quickxor,
            )  # fmt: skip
        downloaded = 0

        already_up = checkpoint.upload_key == action.storage_key and checkpoint.tus_offset >= action.size > 0
        uploaded = 0
        if not checkpoint.download_complete and not already_up:
            # Download and upload side by side (the upload trails the bytes written to the spool).
            result, uploaded = await self._stream(action, item, spool, checkpoint.download_offset)
            downloaded = result.size - result.resumed_from
            sha256, size, note = result.sha256, result.size, result.note or ""
            state.save_tus_progress(action.drive_id, action.item_id, tus_url=checkpoint.tus_url or "",
                                    offset=size, upload_key=action.storage_key)  # fmt: skip
        else:
            if not checkpoint.download_complete:
                result = await self._download(action, item, spool, checkpoint.download_offset)
                downloaded = result.size - result.resumed_from
                sha256, size, note = result.sha256, result.size, result.note or ""
            else:
                sha256, _qxh, size = await asyncio.to_thread(hash_spool, spool)
                note = ""
            already_up = checkpoint.upload_key == action.storage_key and checkpoint.tus_offset >= size > 0
            if not already_up:
                state.set_file_state(action.drive_id, action.item_id, FileState.UPLOADING)
                uploaded = await self._send(action, spool, size)
                state.save_tus_progress(action.drive_id, action.item_id, tus_url=checkpoint.tus_url or "",
                                        offset=size, upload_key=action.storage_key)  # fmt: skip
        state.set_file_state(action.drive_id, action.item_id, FileState.REGISTERING)
        return await self._finish(action, item, spool, sha256=sha256, size=size, bytes_down=downloaded,
                                  bytes_up=uploaded, note=note)  # fmt: skip

    async def _download(
        self,
        action: PlannedAction,
        item: RemoteItem,
        spool: Path,
        offset: int,
        arrival: _Arrival | None = None,
        *,
        small: bool = False,
    ) -> DownloadResult:
        """Download into the spool, telling ``arrival`` how far the written bytes reach; a large
        file (not ``small``) saves a durable checkpoint as it goes."""
        ctx = self.ctx
        state = ctx.state
        drive = ctx.drives.get(action.drive_id)
        if not small:
            state.set_file_state(action.drive_id, action.item_id, FileState.DOWNLOADING)

        def on_durable(progress: DownloadProgress) -> None:
            if not small:
                state.save_download_progress(action.drive_id, action.item_id, progress.offset)

        def on_written(end: int) -> None:
            ctx.emit(FileProgress(ctx.job_id, action.item_id, action.display_path, "download", end, action.size))
            ctx.progress(action.item_id, end, arrival.uploaded if arrival else 0)
            if arrival is not None:
                arrival.advance(end)

        try:
            result = await ctx.source.download(
                item, spool, offset=offset, on_progress=on_durable, drive_kind=drive.kind if drive else None,
                durable=not small, on_written=on_written,
            )  # fmt: skip
        except BaseException:
            if arrival is not None:
                arrival.fail()
            raise
        if not small:
            state.save_download_progress(action.drive_id, action.item_id, result.size, complete=True)
        if arrival is not None:
            arrival.finish(result.size)
        return result

    async def _stream(
        self, action: PlannedAction, item: RemoteItem, spool: Path, offset: int, *, small: bool = False
    ) -> tuple[DownloadResult, int]:
        """Download and upload at once: each piece of the upload waits until its bytes are written
        to the spool, and the last one until the download is verified, so an unverified file never
        completes in storage. If the download had to start over (a hash mismatch, a server
        that ignored Range) or its size is not the listed one, what was uploaded so far is not
        trusted: the upload starts afresh once the download is done.
        """
        arrival = _Arrival(action.size)
        downloading = asyncio.create_task(self._download(action, item, spool, offset, arrival, small=small))
        uploading = asyncio.create_task(self._send(action, spool, action.size, arrival=arrival))
        try:
            done, _ = await asyncio.wait({downloading, uploading}, return_when=asyncio.FIRST_EXCEPTION)
            refused = uploading.exception() if uploading in done and not uploading.cancelled() else None
            if refused is not None and not isinstance(refused, _NotStreamable):
                raise refused  # the download is cancelled below
            result = await downloading  # raises the download's error (the upload is cancelled below)
            try:
                uploaded = await uploading
            except _NotStreamable:
                log.info("%s: the download started over; uploading it afresh", action.display_path)
                # Forget the upload URL: the next upload is a new one (what the server holds of
                # the old one expires by itself).
                if not small:
                    self.ctx.state.save_tus_progress(action.drive_id, action.item_id, tus_url="", offset=0)
                uploaded = await self._send(action, spool, result.size)
            return result, uploaded
        finally:
            for task in (downloading, uploading):
                if not task.done():
                    task.cancel()
            await asyncio.gather(downloading, uploading, return_exceptions=True)

    async def _upload_small(self, action: PlannedAction, item: RemoteItem) -> ActionResult:
        """A small file: download, upload and register with no checkpoint (see the module
        docstring); the upload streams behind the download like a large file's."""
        spool = self._spool_path(action)
        spool.parent.mkdir(parents=True, exist_ok=True)
        try:
            result, uploaded = await self._stream(action, item, spool, 0, small=True)
        except BaseException:
            remove_spool(spool)  # no checkpoint names it: nothing would resume from it
            raise
        return await self._finish(action, item, spool, sha256=result.sha256, size=result.size,
                                  bytes_down=result.size, bytes_up=uploaded, note=result.note or "")  # fmt: skip

    def _spool_path(self, action: PlannedAction) -> Path:
        return (
            self.ctx.spool_dir
            / hashlib.sha1(action.drive_id.encode(), usedforsecurity=False).hexdigest()[:12]
            / (f"{hashlib.sha1(action.item_id.encode(), usedforsecurity=False).hexdigest()}.part")
        )

    async def _send(self, action: PlannedAction, spool: Path, size: int, *, arrival: _Arrival | None = None) -> int:
        """Upload the spool to the action's key; returns the body bytes sent.

        With ``arrival`` the spool is still being downloaded: each chunk waits for its bytes.
        """
        ctx = self.ctx
        if action.previous_key and action.previous_key != action.storage_key:
            # Renamed and changed: move the old object first so no stale copy is left at the
            # old key (a yacht key may move but not delete), then upsert the new content.
            with contextlib.suppress(CelesteError):
                await ctx.destination.move(action.previous_key, action.storage_key)

        def on_upload(done: int) -> None:
            ctx.emit(FileProgress(ctx.job_id, action.item_id, action.display_path, "upload", done, size))
            if arrival is None:
                ctx.progress(action.item_id, size, done)
            else:
                arrival.uploaded = done
                ctx.progress(action.item_id, arrival.written, done)

        if arrival is None:
            sent = await ctx.destination.upload(
                spool, action.storage_key, upload_id=upload_id(action), content_type=content_type_for(action.name),
                display_path=action.display_path, progress=on_upload,
            )  # fmt: skip
        else:
            sent = await ctx.destination.upload(
                spool, action.storage_key, upload_id=upload_id(action), content_type=content_type_for(action.name),
                display_path=action.display_path, progress=on_upload, size=size, ready=arrival.wait_for,
            )  # fmt: skip
        return sent.bytes_sent

    async def _finish(
        self, action: PlannedAction, item: RemoteItem, spool: Path, *, sha256: str | None, size: int,
        bytes_down: int, bytes_up: int, note: str,
    ) -> ActionResult:  # fmt: skip
        ctx = self.ctx
        state = ctx.state
        transferred = _TRANSFERRED.get()
        if transferred is not None:
            transferred()
        registration = await ctx.destination.register(self._record(action, size=size, sha256=sha256, item=item))
        # One transaction: the manifest row, the shore-side status and the delivery commit
        # together (mark_delivered also drops the checkpoint and clears failure problems).
        with state.batch():
            self._manifest(
                action, ManifestOutcome.DELIVERED, size=size, sha256=sha256, quickxor=action.quickxor,
                storage_key=action.storage_key, registration_id=registration, reason=note or action.reason,
            )  # fmt: skip
            self._shore(action, "completed", sha256=sha256, storage_path=action.storage_key,
                        synced_at=ctx.clock.now())  # fmt: skip
            state.mark_delivered(
                DeliveredFile(
                    drive_id=action.drive_id, item_id=action.item_id, storage_key=action.storage_key,
                    ctag=action.ctag, quickxor=action.quickxor, size=size, sha256=sha256 or "",
                    folder_path=action.folder_path, name=action.name, registered=True,
                    delivered_at=ctx.clock.now(),
                )
            )  # fmt: skip
            state.clear_problem(action.drive_id, action.item_id)  # an old note too
            if note:
                state.set_problem(FileProblem(
                    drive_id=action.drive_id, item_id=action.item_id, path=action.display_path,
                    kind=FileProblemKind.NOTE, code="note", message=note, web_url=item.web_url,
                    updated_at=ctx.clock.now(),
                ))  # fmt: skip
        remove_spool(spool)
        return ActionResult(Outcome.DELIVERED, bytes_downloaded=bytes_down, bytes_uploaded=bytes_up, note=note)
