"""Controls of the simulated Graph: change the tenant and the service's behaviour from a test.

The same operations are Python methods (for tests in the same process) and ``POST
/_sim/graph/<operation>`` endpoints taking the keyword arguments as JSON (for the demo stack
and out-of-process benchmarks); ``GET /_sim/graph/state`` describes the tenant. Items are named
by id or by a path from the drive root (``/01_BRIDGE/Navigation``); the personal OneDrive is
the default drive.
"""

from __future__ import annotations

import inspect
from typing import Any

from celeste_desktop.sim.graph_delta import DeltaEngine
from celeste_desktop.sim.graph_items import ContentSynth
from celeste_desktop.sim.http import Request, Response
from celeste_desktop.sim.tenant_model import FILE, LIBRARY, Item, Tenant, TenantError

_OPERATIONS = (
    "add_file", "add_files", "add_folder", "change", "rename", "move", "delete", "corrupt",
    "set_malware", "omit_hashes", "set_folder_delta_supported", "expire_delta_tokens",
    "set_download_url_lifetime", "set_enrichment", "set_ignore_range", "advance_clock",
)


class ControlMixin:
    """Test controls mixed into ``GraphSim``."""

    tenant: Tenant
    delta: DeltaEngine
    synth: ContentSynth
    download_url_lifetime_s: float
    hashes_hidden: bool
    enrichment: bool
    ignore_range: bool
    clock_skew_s: float

    def item_json(self, item: Item) -> dict[str, Any]:
        raise NotImplementedError

    # -- addressing ---------------------------------------------------------------------------

    @property
    def personal_drive_id(self) -> str:
        return self.tenant.personal_drive_id

    @property
    def library_drive_id(self) -> str:
        return next(d.id for d in self.tenant.drives.values() if d.drive_type == LIBRARY)

    def find(self, ref: str, drive_id: str | None = None) -> Item:
        """An item by id, or by path (``/a/b``) in ``drive_id`` (default: the personal drive)."""
        with self.tenant.lock:
            if ref.startswith("/") or ref == "":
                return self.tenant.resolve_path(drive_id or self.personal_drive_id, ref)
            return self.tenant.live(ref)

    # -- tenant changes -----------------------------------------------------------------------

    def add_folder(self, parent: str, name: str, drive_id: str | None = None) -> Item:
        with self.tenant.lock:
            return self.tenant.add_folder(self.find(parent, drive_id).id, name)

    def add_file(self, parent: str, name: str, size: int, seed: int | None = None,
                 kind: str | None = None, drive_id: str | None = None) -> Item:
        """A file with lazily generated content (``kind`` from the extension unless given)."""
        with self.tenant.lock:
            return self.tenant.add_file(self.find(parent, drive_id).id, name, size, seed=seed, kind=kind)

    def add_files(self, parent: str, count: int, size: int, prefix: str = "file",
                  extension: str = ".bin", drive_id: str | None = None) -> list[str]:
        """``count`` files of ``size`` bytes named ``<prefix>00001<extension>``…; returns their ids."""
        with self.tenant.lock:
            folder = self.find(parent, drive_id)
            width = max(5, len(str(count)))
            return [self.tenant.add_file(folder.id, f"{prefix}{n:0{width}d}{extension}", size).id
                    for n in range(1, count + 1)]

    def change(self, item: str, size: int | None = None, drive_id: str | None = None) -> Item:
        """New content: new cTag, eTag and quickXorHash."""
        with self.tenant.lock:
            return self.tenant.change_content(self.find(item, drive_id).id, size)

    def rename(self, item: str, name: str, drive_id: str | None = None) -> Item:
        with self.tenant.lock:
            return self.tenant.rename(self.find(item, drive_id).id, name)

    def move(self, item: str, parent: str, name: str | None = None, drive_id: str | None = None) -> Item:
        with self.tenant.lock:
            target = self.find(parent, drive_id)
            return self.tenant.move(self.find(item, drive_id).id, target.id, name)

    def delete(self, item: str, drive_id: str | None = None) -> None:
        with self.tenant.lock:
            self.tenant.delete(self.find(item, drive_id).id)

    def set_malware(self, item: str, description: str | None = "Simulated malware",
                    drive_id: str | None = None) -> Item:
        with self.tenant.lock:
            return self.tenant.set_malware(self.find(item, drive_id).id, description)

    # -- service behaviour --------------------------------------------------------------------

    def corrupt(self, item: str, corrupt: bool = True, drive_id: str | None = None) -> None:
        """Serve bytes that no longer match the listed hash (same size, one byte flipped)."""
        with self.tenant.lock:
            target = self.find(item, drive_id)
            if target.kind != FILE:
                raise TenantError("invalidRequest", "only files have content")
            target.corrupt = corrupt

    def omit_hashes(self, item: str | None = None, omit: bool = True, drive_id: str | None = None) -> None:
        """Leave ``file.hashes`` out for one file, or for every file when ``item`` is None."""
        with self.tenant.lock:
            if item is None:
                self.hashes_hidden = omit
            else:
                self.find(item, drive_id).omit_hash = omit

    def set_folder_delta_supported(self, supported: bool, drive_id: str | None = None) -> None:
        """False: delta on a folder answers 501 notSupported (older tenants, some libraries)."""
        with self.tenant.lock:
            self.tenant.drives[drive_id or self.personal_drive_id].folder_delta_supported = supported

    def expire_delta_tokens(self) -> None:
        """Every delta and nextLink token issued so far answers 410 Gone."""
        self.delta.expire_all()

    def set_download_url_lifetime(self, seconds: float) -> None:
        self.download_url_lifetime_s = seconds

    def set_enrichment(self, enabled: bool = True) -> None:
        """SharePoint libraries serve altered .docx/.xlsx/.pptx (size and hash differ from the listing)."""
        self.enrichment = enabled

    def set_ignore_range(self, enabled: bool = True) -> None:
        """The download host answers 200 with the whole body to Range requests (allowed by HTTP)."""
        self.ignore_range = enabled

    def advance_clock(self, seconds: float) -> None:
        """Move the service's clock (download-URL expiry) forward without sleeping."""
        self.clock_skew_s += seconds

    # -- HTTP ---------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        with self.tenant.lock:
            drives = [{"id": d.id, "name": d.name, "driveType": d.drive_type, "siteId": d.site_id,
                       "folderDeltaSupported": d.folder_delta_supported}
                      for d in self.tenant.drives.values()]
            return {"personalDriveId": self.personal_drive_id, "libraryDriveId": self.library_drive_id,
                    "sites": list(self.tenant.sites), "drives": drives, "items": self.tenant.count(),
                    "changeSequence": self.tenant.seq}

    async def control_endpoint(self, request: Request, operation: str) -> Response:
        if operation == "state" and request.method == "GET":
            return Response.json(self.state())
        if request.method != "POST" or operation not in _OPERATIONS:
            return Response.json({"error": {"code": "invalidRequest",
                                            "message": f"POST one of: {', '.join(_OPERATIONS)}"}}, 404)
        method = getattr(self, operation)
        try:
            arguments = await request.json() or {}
            inspect.signature(method).bind(**arguments)
            result = method(**arguments)
        except TenantError as exc:
            status = 404 if exc.code == "itemNotFound" else 409 if exc.code == "nameAlreadyExists" else 400
            return Response.json({"error": {"code": exc.code, "message": str(exc)}}, status)
        except (TypeError, ValueError) as exc:
            return Response.json({"error": {"code": "invalidRequest", "message": str(exc)}}, 400)
        if isinstance(result, Item):
            return Response.json(self.item_json(result))
        return Response.json({"result": result})
