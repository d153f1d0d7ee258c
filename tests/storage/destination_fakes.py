"""Helpers for the destination tests: `Dest` (the app's client, policy and target aimed at the
simulated project, with a log of every request), and fakes of the local state -- TUS checkpoints
and the outbox, in memory and in a small SQLite file (to prove they survive an "app restart":
a new object, same file)."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from celeste_desktop.net.clock import FakeClock
from celeste_desktop.net.http import HttpOptions, make_async_client
from celeste_desktop.net.policy import RetryPolicy
from celeste_desktop.sim.stack import SimStack
from celeste_desktop.storage.registration import Registrar
from celeste_desktop.storage.rest import RestClient
from celeste_desktop.storage.target import SupabaseTarget
from celeste_desktop.storage.tus import TusCheckpoint, TusCheckpoints
from celeste_desktop.storage.uploader import StorageUploader


class MemoryCheckpoints:
    def __init__(self) -> None:
        self.saved: dict[str, TusCheckpoint] = {}
        self.history: list[tuple[str, str, int]] = []

    def load(self, upload_id: str) -> TusCheckpoint | None:
        return self.saved.get(upload_id)

    def save(self, upload_id: str, url: str, offset: int) -> None:
        self.saved[upload_id] = TusCheckpoint(url, offset)
        self.history.append((upload_id, url, offset))

    def clear(self, upload_id: str) -> None:
        self.saved.pop(upload_id, None)


class SqliteCheckpoints:
    """Checkpoints in a SQLite file; every call opens and closes it, as a crash would leave it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with self._db() as db:
            db.execute("create table if not exists tus (upload_id text primary key, url text, offset integer)")

    def _db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path)

    def load(self, upload_id: str) -> TusCheckpoint | None:
        db = self._db()
        try:
            row = db.execute("select url, offset from tus where upload_id = ?", (upload_id,)).fetchone()
        finally:
            db.close()
        return TusCheckpoint(row[0], row[1]) if row else None

    def save(self, upload_id: str, url: str, offset: int) -> None:
        db = self._db()
        try:
            with db:
                db.execute("insert or replace into tus values (?, ?, ?)", (upload_id, url, offset))
        finally:
            db.close()

    def clear(self, upload_id: str) -> None:
        db = self._db()
        try:
            with db:
                db.execute("delete from tus where upload_id = ?", (upload_id,))
        finally:
            db.close()


@dataclass(frozen=True)
class Entry:
    seq: int
    target: str
    payload: dict[str, Any]
    conflict: str
    attempts: int = 0
    last_error: str | None = None


@dataclass
class MemoryOutbox:
    entries: list[Entry] = field(default_factory=list)
    dedupe: dict[tuple[str, str], int] = field(default_factory=dict)
    next_seq: int = 1

    def enqueue(
        self, target: str, payload: Mapping[str, Any], *, conflict: str = "", dedupe_key: str | None = None
    ) -> int:
        if dedupe_key is not None:
            old = self.dedupe.pop((target, dedupe_key), None)
            self.entries = [e for e in self.entries if e.seq != old]
        seq = self.next_seq
        self.next_seq += 1
        self.entries.append(Entry(seq, target, json.loads(json.dumps(dict(payload))), conflict))
        if dedupe_key is not None:
            self.dedupe[(target, dedupe_key)] = seq
        return seq

    def peek_outbox(self, limit: int = 100) -> list[Entry]:
        return self.entries[:limit]

    def ack_outbox(self, seqs: Iterable[int]) -> int:
        gone = set(seqs)
        before = len(self.entries)
        self.entries = [e for e in self.entries if e.seq not in gone]
        return before - len(self.entries)

    def record_outbox_failure(self, seq: int, error: str) -> None:
        self.entries = [
            Entry(e.seq, e.target, e.payload, e.conflict, e.attempts + 1, error) if e.seq == seq else e
            for e in self.entries
        ]


class SqliteOutbox:
    """The outbox in a SQLite file, opened per call (a restart is just a new object)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._run(
            "create table if not exists outbox (seq integer primary key autoincrement, target text, "
            "payload text, conflict text, dedupe_key text, attempts integer default 0, last_error text)"
        )

    def _run(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        db = sqlite3.connect(self.path)
        try:
            with db:
                return db.execute(sql, args).fetchall()
        finally:
            db.close()

    def enqueue(
        self, target: str, payload: Mapping[str, Any], *, conflict: str = "", dedupe_key: str | None = None
    ) -> int:
        db = sqlite3.connect(self.path)
        try:
            with db:
                if dedupe_key is not None:
                    db.execute("delete from outbox where target = ? and dedupe_key = ?", (target, dedupe_key))
                cursor = db.execute(
                    "insert into outbox (target, payload, conflict, dedupe_key) values (?, ?, ?, ?)",
                    (target, json.dumps(dict(payload)), conflict, dedupe_key),
                )
                assert cursor.lastrowid is not None
                return cursor.lastrowid
        finally:
            db.close()

    def peek_outbox(self, limit: int = 100) -> list[Entry]:
        rows = self._run(
            "select seq, target, payload, conflict, attempts, last_error from outbox order by seq limit ?", (limit,)
        )
        return [Entry(seq, target, json.loads(payload), conflict, attempts, error) for seq, target, payload, conflict,
                attempts, error in rows]  # fmt: skip

    def ack_outbox(self, seqs: Iterable[int]) -> int:
        removed = 0
        for seq in seqs:
            removed += len(self._run("delete from outbox where seq = ? returning seq", (seq,)))
        return removed

    def record_outbox_failure(self, seq: int, error: str) -> None:
        self._run("update outbox set attempts = attempts + 1, last_error = ? where seq = ?", (error, seq))

    def size(self) -> int:
        return int(self._run("select count(*) from outbox")[0][0])


def write_file(path: Path, size: int, *, seed: int = 1) -> Path:
    """``size`` bytes that never repeat within a file (a misplaced chunk would show)."""
    with path.open("wb") as out:
        block = 0
        remaining = size
        while remaining > 0:
            piece = hashlib.sha256(f"{seed}:{block}".encode()).digest() * 2048  # 64 KiB
            out.write(piece[:remaining])
            remaining -= min(len(piece), remaining)
            block += 1
    return path


@dataclass(frozen=True)
class Sent:
    method: str
    url: str
    offset: int | None  # Upload-Offset of a TUS request
    length: int | None  # Content-Length
    upsert: str | None


@dataclass
class Dest:
    """One "app run": a client, a policy and a target; ``restart()`` builds fresh ones."""

    sim: SimStack
    clock: FakeClock
    target: SupabaseTarget
    sent: list[Sent] = field(default_factory=list)
    clients: list[httpx.AsyncClient] = field(default_factory=list)
    client: httpx.AsyncClient = field(init=False)
    policy: RetryPolicy = field(init=False)

    def __post_init__(self) -> None:
        self.restart()

    def restart(self, *, max_attempts: int = 4) -> None:
        """New client objects, as after an app restart (the old client is closed at teardown)."""
        options = HttpOptions(ca_bundle=Path(self.sim.tls.ca_bundle), use_system_trust=False)
        self.client = make_async_client(options)
        self.client.event_hooks = {"request": [self._record]}
        self.clients.append(self.client)
        self.policy = RetryPolicy(clock=self.clock, max_attempts=max_attempts, base_delay=0.5, max_delay=5)

    async def _record(self, request: httpx.Request) -> None:
        def number(name: str) -> int | None:
            value = request.headers.get(name)
            return int(value) if value is not None and value.isdigit() else None

        self.sent.append(
            Sent(request.method, str(request.url), number("upload-offset"), number("content-length"),
                 request.headers.get("x-upsert"))
        )  # fmt: skip

    def with_target(self, **changes: str) -> SupabaseTarget:
        values = {
            "url": self.target.url,
            "anon_key": self.target.anon_key,
            "key": self.target.key,
            "yacht_id": self.target.yacht_id,
            "bucket": self.target.bucket,
            **changes,
        }
        return SupabaseTarget(**values)  # unchecked on purpose: tests send what the server must refuse

    def uploader(self, checkpoints: TusCheckpoints, target: SupabaseTarget | None = None) -> StorageUploader:
        return StorageUploader(self.client, self.policy, target or self.target, checkpoints, clock=self.clock)

    def rest(self, target: SupabaseTarget | None = None) -> RestClient:
        return RestClient(self.client, self.policy, target or self.target)

    def registrar(self, target: SupabaseTarget | None = None) -> Registrar:
        return Registrar(self.rest(target), clock=self.clock)

    def of(self, method: str) -> list[Sent]:
        return [s for s in self.sent if s.method == method]
