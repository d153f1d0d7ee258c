"""Graph JSON → domain types: odd, partial and hostile input never crashes the app."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from celeste_desktop.domain.errors import MalformedResponse
from celeste_desktop.domain.models import DriveKind, RemoteDeletion, RemoteItem
from celeste_desktop.graph.wire import (
    load_json,
    parse_drive,
    parse_item,
    parse_item_page,
    parse_site,
    parse_user,
    same_hash,
)

DRIVE = "b!drive"


def file_json(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": "01FILE",
        "name": "Manual.pdf",
        "size": 1234,
        "eTag": '"{A},2"',
        "cTag": '"c:{A},1"',
        "lastModifiedDateTime": "2024-05-01T10:20:30.1234567Z",
        "webUrl": "https://example.sharepoint.com/Manual.pdf",
        "parentReference": {"driveId": "B!DRIVE", "id": "01PARENT", "path": "/drives/b!drive/root:/Docs"},
        "file": {"mimeType": "application/pdf", "hashes": {"quickXorHash": "AAAAAAAAAAAAAAAAAAAAAAAAAAA="}},
    }
    data.update(overrides)
    return data


def test_a_complete_file() -> None:
    item = parse_item(file_json(), drive_id=DRIVE)
    assert item == RemoteItem(
        drive_id=DRIVE,  # the drive asked about wins over Graph's spelling of it
        item_id="01FILE",
        parent_id="01PARENT",
        name="Manual.pdf",
        is_folder=False,
        size=1234,
        etag='"{A},2"',
        ctag='"c:{A},1"',
        quickxor="AAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        mime_type="application/pdf",
        modified=datetime(2024, 5, 1, 10, 20, 30, 123456, tzinfo=UTC),
        web_url="https://example.sharepoint.com/Manual.pdf",
    )


def test_root_folder_notebook_and_malware() -> None:
    root = parse_item({"id": "R", "name": "root", "root": {}, "folder": {"childCount": 3},
                       "parentReference": {"driveId": DRIVE}}, drive_id=DRIVE)
    assert isinstance(root, RemoteItem) and root.is_root and root.is_folder and root.parent_id is None
    assert root.child_count == 3
    notebook = parse_item({"id": "N", "name": "Bridge Notebook", "package": {"type": "oneNote"},
                           "parentReference": {"id": "R"}}, drive_id=DRIVE)
    assert isinstance(notebook, RemoteItem) and notebook.package_type == "oneNote" and not notebook.is_folder
    flagged = parse_item(file_json(malware={"description": "Trojan"}), drive_id=DRIVE)
    assert isinstance(flagged, RemoteItem) and flagged.malware


def test_business_tombstone_without_name() -> None:
    gone = parse_item({"id": "X", "deleted": {"state": "deleted"}, "parentReference": {"id": "P"}}, drive_id=DRIVE)
    assert gone == RemoteDeletion(DRIVE, "X")


@pytest.mark.parametrize(
    "name",
    ["Fiche sécurité #2.pdf", "Fuel 100% Transfer Log.xlsx", "Ölwechsel – 2024.xlsx", "船舶証書.pdf",
     "emoji 🚢 plan.pdf", "a" * 255, "  leading and trailing spaces  "],
)
def test_any_unicode_name_is_kept_verbatim(name: str) -> None:
    item = parse_item(file_json(name=name), drive_id=DRIVE)
    assert isinstance(item, RemoteItem) and item.name == name


@pytest.mark.parametrize(
    "change",
    [
        {"file": {}},  # no hashes, no mime type
        {"file": {"hashes": None}},
        {"file": {"hashes": {"quickXorHash": ""}}},
        {"file": {"hashes": {"sha1Hash": "ABC"}}},  # a personal-OneDrive-only hash
        {"file": "not an object"},
    ],
)
def test_files_without_a_quickxor_hash(change: dict[str, Any]) -> None:
    item = parse_item(file_json(**change), drive_id=DRIVE)
    assert isinstance(item, RemoteItem) and item.quickxor is None


@pytest.mark.parametrize(
    ("field", "value", "attribute", "expected"),
    [
        ("size", "12", "size", 12),  # Int64 as a string
        ("size", -5, "size", 0),
        ("size", True, "size", 0),
        ("size", float("nan"), "size", 0),
        ("size", 1e3, "size", 1000),
        ("size", None, "size", 0),
        ("eTag", 42, "etag", None),
        ("lastModifiedDateTime", "yesterday", "modified", None),
        ("lastModifiedDateTime", "2024-05-01T10:20:30", "modified", datetime(2024, 5, 1, 10, 20, 30, tzinfo=UTC)),
        ("webUrl", ["x"], "web_url", None),
        ("folder", {"childCount": "many"}, "child_count", None),
    ],
)
def test_wrong_types_become_defaults(field: str, value: object, attribute: str, expected: object) -> None:
    item = parse_item(file_json(**{field: value}), drive_id=DRIVE)
    assert isinstance(item, RemoteItem)
    assert getattr(item, attribute) == expected


@pytest.mark.parametrize(
    "data",
    [
        None, [], "text", 3,
        {"name": "no id.pdf", "parentReference": {"id": "P"}},
        {"id": 7, "name": "numeric id", "parentReference": {"id": "P"}},
        {"id": "X", "parentReference": {"id": "P"}},  # live item without a name
        {"id": "X", "name": "orphan.pdf"},  # not the root, and no parent: cannot be placed
        {"id": "X", "name": "bad parent.pdf", "parentReference": "P"},
    ],
)
def test_unplaceable_items_are_skipped(data: object) -> None:
    assert parse_item(data, drive_id=DRIVE) is None


def test_a_page_counts_what_it_skips() -> None:
    page = parse_item_page(
        {"value": [file_json(), {"name": "no id"}, "junk", {"id": "D", "deleted": {}}],
         "@odata.nextLink": "https://graph/next"},
        drive_id=DRIVE, service="Graph",
    )
    assert [type(c) for c in page.changes] == [RemoteItem, RemoteDeletion]
    assert page.skipped == 2 and page.next_link == "https://graph/next" and page.delta_link is None


def test_a_page_without_its_list_is_malformed() -> None:
    with pytest.raises(MalformedResponse):
        parse_item_page({"value": {"not": "a list"}}, drive_id=DRIVE, service="Graph")


@pytest.mark.parametrize(
    "body", [b'{"value": [ {"id": "truncated', b"<html>proxy error</html>", b"[1, 2]", b"\xff\xfe"]
)
def test_bodies_that_are_not_json_objects(body: bytes) -> None:
    with pytest.raises(MalformedResponse) as caught:
        load_json(httpx.Response(200, content=body), service="Microsoft Graph", what="listing a folder")
    assert "listing a folder" in caught.value.message


def test_drives_sites_and_users() -> None:
    site = parse_site({"id": "host,1,2", "name": "FleetTechnical", "displayName": "Fleet Technical"})
    assert site is not None and site.display_name == "Fleet Technical"
    library = parse_drive({"id": "b!lib", "driveType": "documentLibrary", "name": "Documents"}, site=site)
    assert library is not None and library.kind is DriveKind.SHAREPOINT and library.owner == "Fleet Technical"
    assert library.site_id == "host,1,2"
    mine = parse_drive({"id": "b!me", "driveType": "business", "owner": {"user": {"displayName": "Morgan"}}})
    assert mine is not None and mine.kind is DriveKind.ONEDRIVE and mine.owner == "Morgan"
    odd = parse_drive({"id": "b!x", "driveType": "somethingNew", "owner": {"group": {"displayName": "Crew"}}})
    assert odd is not None and odd.kind is DriveKind.SHAREPOINT
    assert parse_drive({"name": "no id"}) is None and parse_site([]) is None
    user = parse_user({"id": "u1", "userPrincipalName": "officer@yacht.example"}, service="Graph")
    assert user.display_name == "officer@yacht.example"
    with pytest.raises(MalformedResponse):
        parse_user({"displayName": "nobody"}, service="Graph")


def test_hashes_compare_by_value() -> None:
    assert same_hash("AAAAAAAAAAAAAAAAAAAAAAAAAAA=", "AAAAAAAAAAAAAAAAAAAAAAAAAAA=")
    assert same_hash("AAAAAAAAAAAAAAAAAAAAAAAAAAA=", "AAAAAAAAAAAAAA\nAAAAAAAAAAAAA=")
    assert not same_hash("AAAAAAAAAAAAAAAAAAAAAAAAAAA=", "AQAAAAAAAAAAAAAAAAAAAAAAAAA=")
    assert not same_hash(None, "x") and not same_hash("!!!", "???")
