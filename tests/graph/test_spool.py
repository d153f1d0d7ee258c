"""The download spool: a writer thread that falls behind makes writes bigger, not the network
wait, and never lets memory grow past its bound; what lands on disk and the hashes are exact."""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
import time
from pathlib import Path

from celeste_desktop.domain.quickxor import QuickXorHash
from celeste_desktop.graph.download import _Spool

KIB = 1024
MIB = 1024 * KIB


class SlowDiskSpool(_Spool):
    """A spool on a disk that takes 30 ms per write (a busy bridge PC, an fsync on a laptop HDD)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.write_sizes: list[int] = []
        self.most_buffered = 0
        self.gate = threading.Event()
        self.gate.set()

    def _write(self, chunks: list[bytes]) -> None:
        self.write_sizes.append(sum(len(c) for c in chunks))
        self.gate.wait(5)
        time.sleep(0.03)
        super()._write(chunks)

    async def feed(self, chunk: bytes) -> None:
        await super().feed(chunk)
        self.most_buffered = max(self.most_buffered, self.buffered)


async def test_a_lagging_writer_gathers_chunks_into_bigger_writes(tmp_path: Path) -> None:
    data = os.urandom(12 * MIB)
    written: list[int] = []
    spool = SlowDiskSpool(tmp_path / "spool.bin", MIB, 4 * MIB, on_written=written.append)
    for at in range(0, len(data), 256 * KIB):
        await spool.feed(data[at : at + 256 * KIB])
    await spool.sync()
    spool.close()

    assert (tmp_path / "spool.bin").read_bytes() == data
    assert spool.sha256.hexdigest() == hashlib.sha256(data).hexdigest()
    expected = QuickXorHash()
    expected.update(data)
    assert spool.quickxor.digest() == expected.digest()
    assert spool.synced == spool.offset == len(data)
    # Fewer, bigger writes than one per MiB: 30 ms each would make twelve take 0.36 s.
    assert max(spool.write_sizes) > MIB
    assert len(spool.write_sizes) < 12
    assert written == sorted(written) and written[-1] == len(data)  # the upload's view only grows


async def test_memory_stays_bounded_while_the_writer_is_stuck(tmp_path: Path) -> None:
    spool = SlowDiskSpool(tmp_path / "spool.bin", MIB, 4 * MIB)
    spool.gate.clear()  # the first write hangs until released
    chunk = os.urandom(256 * KIB)
    feeding = asyncio.ensure_future(_feed(spool, chunk, 64))
    await asyncio.sleep(0.3)
    assert not feeding.done()  # the reader waits for the disk...
    assert spool.buffered <= spool.LAG_WRITES * MIB  # ...with a bounded backlog
    spool.gate.set()
    await feeding
    await spool.sync()
    spool.close()
    assert (tmp_path / "spool.bin").stat().st_size == 64 * len(chunk)
    assert spool.most_buffered <= spool.LAG_WRITES * MIB


async def _feed(spool: _Spool, chunk: bytes, times: int) -> None:
    for _ in range(times):
        await spool.feed(chunk)


class SlowFsyncSpool(_Spool):
    """A disk whose fsync takes 50 ms (writes themselves are quick)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fsyncs: list[int] = []  # the file's size at each fsync
        self.writing_during_fsync = 0

    def _fsync_file(self) -> None:
        size = os.fstat(self.file.fileno()).st_size
        self.fsyncs.append(size)
        time.sleep(0.05)
        if os.fstat(self.file.fileno()).st_size > size:
            self.writing_during_fsync += 1
        super()._fsync_file()


async def test_checkpoint_fsyncs_run_beside_the_writes(tmp_path: Path) -> None:
    data = os.urandom(16 * MIB)
    spool = SlowFsyncSpool(tmp_path / "spool.bin", MIB, 2 * MIB)
    synced_seen: list[int] = []
    for at in range(0, len(data), 256 * KIB):
        await spool.feed(data[at : at + 256 * KIB])
        await asyncio.sleep(0.001)  # the network's pace
        synced_seen.append(spool.synced)
        assert spool.synced <= spool.offset
    await spool.sync()
    spool.close()
    assert spool.synced == len(data)
    assert (tmp_path / "spool.bin").read_bytes() == data
    assert synced_seen == sorted(synced_seen)  # checkpoints only move forward...
    assert 0 < synced_seen[-1] < len(data)  # ...and trail the bytes received
    # Writes went on while a 50 ms fsync ran, instead of waiting for it.
    assert spool.writing_during_fsync > 0
    # Fewer fsyncs than checkpoints: one runs at a time and covers all written before it.
    assert 1 < len(spool.fsyncs) <= 8


async def test_sync_makes_everything_durable_without_durability_too(tmp_path: Path) -> None:
    spool = _Spool(tmp_path / "spool.bin", MIB, 2 * MIB, durable=False)
    await spool.feed(b"x" * (3 * MIB + 5))
    await spool.sync()
    assert spool.synced == spool.offset == 3 * MIB + 5
    await spool.reset()
    assert spool.synced == spool.offset == 0
    spool.close()
