"""Fixtures for the state tests: a fresh state per test, on a virtual clock."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from state_factories import START

from celeste_desktop.net.clock import FakeClock
from celeste_desktop.store import StateDB, open_state


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=START, auto_advance=False)


@pytest.fixture
def state_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "state.sqlite3"


@pytest.fixture
def state(state_path: Path, clock: FakeClock) -> Iterator[StateDB]:
    opened = open_state(state_path, now=clock.now)
    try:
        yield opened
    finally:
        opened.close()
