"""A separate process that writes to the state, for the kill-safety and multi-process tests.

    python state_worker.py pages PATH RUN      delta pages + file states in transactions, forever
    python state_worker.py usage PATH COUNT TAG  COUNT small writes racing another process

``pages`` continues from the stored cursor, so repeated kills and restarts build one history.
Page k upserts PAGE_SIZE items ``p{k}-{j}`` and deletes page k-3's items, sets a file state
per new item, moves the download checkpoint to k and adds one byte of usage: all in one
transaction, with the cursor's next link ``page-{k+1}``.
"""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime
from pathlib import Path

from celeste_desktop.domain.models import Drive, DriveKind, JobCounters, RemoteDeletion, RemoteItem
from celeste_desktop.store import FileState, open_state

PAGE_SIZE = 200
DAY = date(2024, 5, 1)


def page_items(page: int) -> list[RemoteItem]:
    return [
        RemoteItem("d1", f"p{page}-{n}", "root", f"page {page} file {n}.pdf", False, size=page * 1000 + n)
        for n in range(PAGE_SIZE)
    ]


def pages(path: Path, run: str) -> None:
    state = open_state(path)
    state.save_drive(Drive("d1", "Documents", DriveKind.ONEDRIVE))
    cursor = state.delta_cursor("d1")
    page = 0 if cursor is None or cursor.next_link is None else int(cursor.next_link.removeprefix("page-"))
    if state.checkpoint("d1", "big") is None:
        state.start_transfer("d1", "big", spool_path="/spool/big", source_size=10**9)
    state.start_job(run)
    announced = False
    while True:
        with state.batch():
            changes: list[RemoteItem | RemoteDeletion] = list(page_items(page))
            if page >= 3:
                changes += [RemoteDeletion("d1", item.item_id) for item in page_items(page - 3)]
            state.save_delta_page("d1", "", changes, next_link=f"page-{page + 1}")
            for item in page_items(page):
                state.set_file_state("d1", item.item_id, FileState.DOWNLOADING)
            state.save_download_progress("d1", "big", page)
            state.add_usage(DAY, sent=1)
            state.update_job_counters(run, JobCounters(files_found=page))
        if not announced:
            print("ready", flush=True)
            announced = True
        page += 1


def usage(path: Path, count: int, tag: str) -> None:
    state = open_state(path)
    moment = datetime(2024, 5, 1, tzinfo=UTC)
    for n in range(count):
        state.add_usage(DAY, sent=1, received=2)
        state.enqueue("race", {"tag": tag, "n": n})
        state.record_failure(tag, f"file-{n % 5}", "flaky", now=moment, max_attempts=10**6)
    state.close()
    print("done", flush=True)


def main(argv: list[str]) -> None:
    mode, path = argv[0], Path(argv[1])
    if mode == "pages":
        pages(path, argv[2])
    elif mode == "usage":
        usage(path, int(argv[2]), argv[3])
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main(sys.argv[1:])
