"""Local state in SQLite through SQLAlchemy: the index, per-file state, checkpoints, jobs, outbox.

Open it once per process with :func:`open_state`; everything else is a method of
:class:`StateDB`. No SQL lives outside this package.
"""

from celeste_desktop.store.db import StateDB, open_state
from celeste_desktop.store.migrations import CURRENT_VERSION
from celeste_desktop.store.records import (
    DeltaCursor,
    DeltaMode,
    FileState,
    ManifestOutcome,
    ManifestRow,
    OutboxEntry,
    RecoveryNotice,
    StateTooNew,
    StateUnavailable,
    StoredAccount,
    TransferCheckpoint,
    UsageDay,
)
from celeste_desktop.store.repo_files import DEFAULT_MAX_ATTEMPTS, retry_delay

__all__ = [
    "CURRENT_VERSION",
    "DEFAULT_MAX_ATTEMPTS",
    "DeltaCursor",
    "DeltaMode",
    "FileState",
    "ManifestOutcome",
    "ManifestRow",
    "OutboxEntry",
    "RecoveryNotice",
    "StateDB",
    "StateTooNew",
    "StateUnavailable",
    "StoredAccount",
    "TransferCheckpoint",
    "UsageDay",
    "open_state",
    "retry_delay",
]
