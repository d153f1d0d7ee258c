"""Builders of domain records for the state tests (imported by the test modules)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from celeste_desktop.domain.models import DeliveredFile, Drive, DriveKind, RemoteItem

START = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
WORKER = Path(__file__).with_name("state_worker.py")


def drive(drive_id: str = "d1", name: str = "Documents") -> Drive:
    return Drive(drive_id=drive_id, name=name, kind=DriveKind.ONEDRIVE, owner="Bridge", web_url="https://example/d")


def file_item(item_id: str, parent_id: str | None = "root", drive_id: str = "d1", **extra: Any) -> RemoteItem:
    values: dict[str, Any] = {
        "drive_id": drive_id,
        "item_id": item_id,
        "parent_id": parent_id,
        "name": f"{item_id}.pdf",
        "is_folder": False,
        "size": 1234,
        "etag": f"e-{item_id}",
        "ctag": f"c-{item_id}",
        "quickxor": "AAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "mime_type": "application/pdf",
        "modified": START,
        "web_url": f"https://example/{item_id}",
    }
    values.update(extra)
    return RemoteItem(**values)


def folder_item(item_id: str, parent_id: str | None = "root", drive_id: str = "d1", **extra: Any) -> RemoteItem:
    values: dict[str, Any] = {
        "name": item_id,
        "is_folder": True,
        "size": 0,
        "ctag": None,
        "quickxor": None,
        "mime_type": None,
        "child_count": 0,
    }
    values.update(extra)
    return file_item(item_id, parent_id, drive_id, **values)


def delivered_file(item_id: str, drive_id: str = "d1", **extra: Any) -> DeliveredFile:
    values: dict[str, Any] = {
        "drive_id": drive_id,
        "item_id": item_id,
        "storage_key": f"yacht-1/Docs/{item_id}.pdf",
        "ctag": f"c-{item_id}",
        "quickxor": "AAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "size": 1234,
        "sha256": "ab" * 32,
        "folder_path": ("Docs",),
        "name": f"{item_id}.pdf",
    }
    values.update(extra)
    return DeliveredFile(**values)
