"""Files inside a OneNote notebook (a package) belong to the notebook: skipped with its reason."""

from __future__ import annotations

from typing import Any

from celeste_desktop.domain.models import ActionKind, SelectionEntry
from celeste_desktop.engine.planner import plan_sync

YACHT = "3f2b6c1e-8a4d-4c2b-9e7f-1a2b3c4d5e6f"


def test_sections_inside_a_notebook_are_skipped_not_uploaded(drive: Any) -> None:
    drive.folder("bridge", "01_BRIDGE")
    drive.file("notebook", "Bridge Notebook", "bridge", package_type="oneNote")
    drive.file("section", "Watch Handover.one", "notebook")
    drive.file("toc", "Open Notebook.onetoc2", "notebook")
    drive.file("plan", "Passage Plan.pdf", "bridge")
    selection = [SelectionEntry(drive.drive_id, "bridge", True)]
    plan = plan_sync(yacht_id=YACHT, items=drive.items, selection=selection, delivered={})
    kinds = {action.item_id: (action.kind, action.reason_code) for action in plan.actions}
    assert kinds["plan"] == (ActionKind.UPLOAD, "new")
    for inside in ("notebook", "section", "toc"):
        assert kinds[inside] == (ActionKind.SKIP, "onenote"), inside
