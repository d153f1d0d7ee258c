"""Graph JSON → domain types, at the edge and defensively.

Everything Graph sends is treated as untrusted: a field may be missing, of the wrong type or
``null``; a body may be truncated. The rules:

- a body that is not a JSON object (truncated transfer, proxy error page) raises
  `MalformedResponse`; the client retries it a few times before giving up;
- an item without an ``id`` (or, unless deleted, without a name or parent) cannot be placed
  in the tree: it is skipped and counted in ``ItemPage.skipped``, never a crash;
- any other missing or mistyped field becomes its default (no hash, no size, no date).

Names are kept exactly as sent (any Unicode, ``#``, ``%``, long paths): mapping them to storage
keys is ``storage.keys``' job.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from celeste_desktop.domain.errors import MalformedResponse
from celeste_desktop.domain.models import Drive, DriveKind, RemoteChange, RemoteDeletion, RemoteItem

__all__ = [
    "ITEM_SELECT",
    "ItemPage",
    "JsonObject",
    "Site",
    "UserProfile",
    "download_url_of",
    "load_json",
    "parse_drive",
    "parse_item",
    "parse_item_page",
    "parse_site",
    "parse_user",
    "same_hash",
]

log = logging.getLogger(__name__)

JsonObject = dict[str, Any]

# The driveItem properties the app reads. Selecting them keeps a 1,000-item page small on a
# satellite link (the per-file download URL alone is ~300 bytes). ``deleted`` is asked for
# explicitly so tombstones keep their facet.
ITEM_SELECT = (
    "id,name,size,eTag,cTag,file,folder,package,malware,root,deleted,parentReference,"
    "lastModifiedDateTime,webUrl"
)


@dataclass(frozen=True, slots=True)
class UserProfile:
    """The signed-in user (``/me``)."""

    user_id: str
    display_name: str
    user_principal_name: str
    mail: str | None = None


@dataclass(frozen=True, slots=True)
class Site:
    """A SharePoint site found by search."""

    site_id: str
    name: str
    display_name: str
    web_url: str | None = None


@dataclass(frozen=True, slots=True)
class ItemPage:
    """One page of a children listing or a delta enumeration."""

    changes: tuple[RemoteChange, ...]
    next_link: str | None
    delta_link: str | None
    skipped: int  # entries that could not be placed (no id, no name…)


# -- bodies -------------------------------------------------------------------------------------


def load_json(response: httpx.Response, *, service: str, what: str | None = None) -> JsonObject:
    """The reply's JSON object, or `MalformedResponse` (never a bare ValueError)."""
    where = f" while {what}" if what else ""
    try:
        data = json.loads(response.content)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedResponse(
            f"{service} sent a reply that is not valid JSON{where} (it was probably cut off "
            "in transit). The copy will try again; if it keeps happening, a proxy on the "
            "vessel's network may be altering traffic.",
            status=response.status_code,
            service=service,
        ) from exc
    if not isinstance(data, dict):
        raise MalformedResponse(
            f"{service} sent a reply of an unexpected shape{where} (a JSON "
            f"{type(data).__name__} instead of an object). If it keeps happening, export "
            "diagnostics for support.",
            status=response.status_code,
            service=service,
        )
    return data


# -- small readers that never raise -------------------------------------------------------------


def _dict(data: Mapping[str, Any], key: str) -> Mapping[str, Any] | None:
    value = data.get(key)
    return value if isinstance(value, dict) else None


def _str(data: Mapping[str, Any] | None, key: str) -> str | None:
    if data is None:
        return None
    value = data.get(key)
    return value if isinstance(value, str) and value != "" else None


def _int(data: Mapping[str, Any] | None, key: str) -> int | None:
    if data is None:
        return None
    value = data.get(key)
    if isinstance(value, bool):  # bool is an int in Python; never a size
        return None
    if isinstance(value, int):
        return max(0, value)
    if isinstance(value, float) and math.isfinite(value) and value >= 0:
        return int(value)
    if isinstance(value, str) and value.isdigit():  # Int64 may come as a string (OData IEEE754Compatible)
        return int(value)
    return None


def _time(data: Mapping[str, Any] | None, key: str) -> datetime | None:
    text = _str(data, key)
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


# -- items --------------------------------------------------------------------------------------


def parse_item(data: object, *, drive_id: str | None = None) -> RemoteChange | None:
    """A driveItem as a `RemoteItem`, a tombstone as a `RemoteDeletion`, or None when unplaceable.

    ``drive_id`` is the drive the caller asked about; it wins over ``parentReference.driveId``
    so the index keys every item the same way (Graph may spell a drive id differently across
    endpoints).
    """
    if not isinstance(data, dict):
        return None
    item_id = _str(data, "id")
    if item_id is None:
        return None
    parent = _dict(data, "parentReference")
    drive = drive_id or _str(parent, "driveId")
    if drive is None:
        return None
    if "deleted" in data and data["deleted"] is not None:
        # Business tombstones may lack name and cTag: the id is all that identifies them.
        return RemoteDeletion(drive_id=drive, item_id=item_id)
    is_root = "root" in data and data["root"] is not None
    parent_id = None if is_root else _str(parent, "id")
    name = _str(data, "name") or ("root" if is_root else None)
    if name is None or (parent_id is None and not is_root):
        return None  # cannot be placed in the tree
    file_facet = _dict(data, "file")
    folder_facet = _dict(data, "folder")
    package = _dict(data, "package")
    hashes = _dict(file_facet, "hashes") if file_facet is not None else None
    return RemoteItem(
        drive_id=drive,
        item_id=item_id,
        parent_id=parent_id,
        name=name,
        # A OneNote notebook is a package, not a folder, even though it has children.
        is_folder=package is None and (folder_facet is not None or is_root),
        size=_int(data, "size") or 0,
        etag=_str(data, "eTag"),
        ctag=_str(data, "cTag"),
        quickxor=_str(hashes, "quickXorHash"),
        mime_type=_str(file_facet, "mimeType"),
        modified=_time(data, "lastModifiedDateTime"),
        web_url=_str(data, "webUrl"),
        package_type=(_str(package, "type") or "unknown") if package is not None else None,
        malware="malware" in data and data["malware"] is not None,
        is_root=is_root,
        child_count=_int(folder_facet, "childCount"),
    )


def download_url_of(data: Mapping[str, Any]) -> str | None:
    """The pre-authenticated ``@microsoft.graph.downloadUrl`` of a file item, if given."""
    return _str(data, "@microsoft.graph.downloadUrl")


def parse_item_page(data: JsonObject, *, drive_id: str, service: str, what: str | None = None) -> ItemPage:
    """A page of items; the ``value`` array must be there, its entries may be anything."""
    values = data.get("value")
    if not isinstance(values, list):
        where = f" while {what}" if what else ""
        raise MalformedResponse(
            f"{service} sent a page without its list of items{where}. The copy will try again; "
            "if it keeps happening, export diagnostics for support.",
            service=service,
        )
    changes: list[RemoteChange] = []
    skipped = 0
    for raw in values:
        change = parse_item(raw, drive_id=drive_id)
        if change is None:
            skipped += 1
        else:
            changes.append(change)
    if skipped:
        log.warning("skipped %d item(s) that could not be placed in drive %s%s", skipped, drive_id,
                    f" while {what}" if what else "")
    return ItemPage(
        changes=tuple(changes),
        next_link=_str(data, "@odata.nextLink"),
        delta_link=_str(data, "@odata.deltaLink"),
        skipped=skipped,
    )


def same_hash(left: str | None, right: str | None) -> bool:
    """Two base64 QuickXorHashes are equal (line breaks do not matter)."""
    if left is None or right is None:
        return False
    if left == right:
        return True
    try:
        decoded = [base64.b64decode("".join(text.split()), validate=True) for text in (left, right)]
    except (binascii.Error, ValueError):
        return False
    return bool(decoded[0]) and decoded[0] == decoded[1]


# -- drives, sites, users -----------------------------------------------------------------------


def parse_drive(data: object, *, site: Site | None = None) -> Drive | None:
    """A drive; None when it has no id. An unknown ``driveType`` is placed by its owner."""
    if not isinstance(data, dict):
        return None
    drive_id = _str(data, "id")
    if drive_id is None:
        return None
    owner = _dict(data, "owner")
    user = _dict(owner, "user") if owner is not None else None
    group = _dict(owner, "group") if owner is not None else None
    kind_text = _str(data, "driveType")
    try:
        kind = DriveKind(kind_text or "")
    except ValueError:
        kind = DriveKind.SHAREPOINT if site is not None or group is not None else DriveKind.ONEDRIVE
    owner_name = site.display_name if site is not None else _str(user, "displayName") or _str(group, "displayName")
    return Drive(
        drive_id=drive_id,
        name=_str(data, "name") or ("OneDrive" if kind is not DriveKind.SHAREPOINT else "Documents"),
        kind=kind,
        owner=owner_name,
        site_id=site.site_id if site is not None else None,
        web_url=_str(data, "webUrl"),
    )


def parse_site(data: object) -> Site | None:
    if not isinstance(data, dict):
        return None
    site_id = _str(data, "id")
    if site_id is None:
        return None
    name = _str(data, "name") or site_id
    return Site(site_id=site_id, name=name, display_name=_str(data, "displayName") or name,
                web_url=_str(data, "webUrl"))


def parse_user(data: JsonObject, *, service: str) -> UserProfile:
    user_id = _str(data, "id")
    upn = _str(data, "userPrincipalName") or _str(data, "mail")
    if user_id is None or upn is None:
        raise MalformedResponse(
            f"{service} described the signed-in user without an id or user name. Sign in again; "
            "if it keeps happening, export diagnostics for support.",
            service=service,
        )
    return UserProfile(user_id=user_id, display_name=_str(data, "displayName") or upn,
                       user_principal_name=upn, mail=_str(data, "mail"))
