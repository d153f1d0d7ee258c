"""The deterministic demo tenant: a superyacht's OneDrive and its fleet's SharePoint library.

The tree is what a yacht's document share looks like: capitalised numbered top folders
(``01_BRIDGE`` … ``14_PHOTOS``), equipment sub-folders, PDFs, Office files and photos, and the
awkward cases a sync tool meets (accents and ``#`` in names, a path near the 400-character
limit, an empty file, a OneNote notebook, a malware-flagged file, a 300 MB drawing set under
``05_DRAWINGS``, Office owner files and ``Thumbs.db``). ``tenant_size`` tops it up with archive
folders to any number of items (100,000 build in about a second). The model lives in
``tenant_model`` and is re-exported here.
"""

from __future__ import annotations

import calendar
import math
import time
from collections.abc import Callable, Iterator
from random import Random

from celeste_desktop.sim.tenant_model import (
    BUSINESS,
    FILE,
    FOLDER,
    LIBRARY,
    NOTEBOOK,
    ROOT,
    Drive,
    Item,
    LogEntry,
    Site,
    Tenant,
    TenantError,
    kind_for,
)

__all__ = [
    "BUSINESS", "FILE", "FOLDER", "LIBRARY", "NOTEBOOK", "ROOT", "Drive", "Item", "LogEntry", "Site", "Tenant",
    "TenantError", "YachtTree", "build_demo_tenant", "iter_files", "kind_for",
]

_EPOCH_2019 = float(calendar.timegm((2019, 1, 1, 0, 0, 0)))
_EPOCH_2025 = float(calendar.timegm((2025, 6, 1, 0, 0, 0)))

_EQUIPMENT = {
    "Main Engines": "MTU 16V 4000 M73L", "Generators": "Kohler 99EFOZ",
    "Stabilisers": "Naiad 252 Multi-Mode", "HVAC": "Heinen & Hopman Chiller",
    "Navigation": "Furuno FAR-2228 Radar", "Tender": "Williams Dieseljet 565",
    "Fire Suppression": "Marioff Hi-Fog", "Galley": "Miele Professional Range",
    "Watermakers": "Sea Recovery Aqua Whisper", "Bow Thrusters": "ABT TRAC 250",
    "Sewage Treatment": "Hamann HL-CONT", "Steering": "Jastram Steering Gear",
    "Electrical": "ASEA Shore Power Converter", "Hydraulics": "Hydraulic Power Pack",
    "Communications": "Sailor VSAT 900", "CCTV": "Axis Camera Station",
    "AV Entertainment": "Kaleidescape Strato", "Fuel System": "Alfa Laval Separator",
}
_LAYOUT = {
    "01_BRIDGE": ["Navigation", "Communications", "Passage Plans", "Bridge Procedures"],
    "02_ENGINEERING": ["Main Engines", "Generators", "Stabilisers", "HVAC", "Watermakers",
                       "Bow Thrusters", "Fuel System", "Hydraulics"],
    "03_SYSTEMS": ["Electrical", "Sewage Treatment", "CCTV", "AV Entertainment", "Steering"],
    "04_MANUALS": ["Main Engines", "Generators", "Navigation", "Tender", "Galley", "HVAC",
                   "Stabilisers"],
    "05_DRAWINGS": ["General Arrangement", "Electrical", "Piping", "Fire Control Plan"],
    "06_PROCEDURES": ["Deck Operations", "Tender Launch", "Anchoring", "Bunkering"],
    "07_SAFETY": ["Fire Suppression", "Lifesaving Appliances", "ISM", "Drills"],
    "08_MAINTENANCE": ["Main Engines", "Generators", "Tender", "HVAC", "Watermakers"],
    "13_CERTIFICATIONS": ["Class", "Flag State", "Crew", "Radio"],
    "14_PHOTOS": ["Engine Room", "Tender", "Deck", "Bridge"],
}
_TEMPLATES = {
    "01_BRIDGE": ["{sub} Procedures.pdf", "{sub} Checklist.docx", "Passage Plan {a} - {b}.pdf",
                  "{sub} Log {year}.xlsx", "Bridge Standing Orders {year}.pdf"],
    "02_ENGINEERING": ["{model} System Overview.pdf", "{sub} Schematic.pdf", "{sub} Settings.xlsx",
                       "{sub} Commissioning Report.docx", "{sub} Alarm List.xlsx"],
    "03_SYSTEMS": ["{model} System Description.pdf", "{sub} Single Line Diagram.pdf",
                   "{sub} Configuration.xlsx", "{sub} Fault Finding Guide.docx"],
    "04_MANUALS": ["{model} Operator Manual.pdf", "{model} Service Manual.pdf",
                   "{model} Parts Catalogue.pdf", "{sub} Quick Reference.docx"],
    "05_DRAWINGS": ["{sub} Sheet {n}.pdf", "{sub} Rev {rev}.pdf", "{sub} Drawing Register.xlsx"],
    "06_PROCEDURES": ["SOP-{n} {sub}.docx", "SOP-{n} {sub} Risk Assessment.pdf",
                      "{sub} Checklist.xlsx"],
    "07_SAFETY": ["{sub} Plan.pdf", "{sub} Inspection Record {year}.xlsx",
                  "{sub} Training Record.docx", "Muster List {year}.pdf"],
    "08_MAINTENANCE": ["{sub} Maintenance Log {year}.xlsx", "Service Report {date}.pdf",
                       "Work Order WO-{n}.docx", "{sub} Running Hours {year}.xlsx"],
    "13_CERTIFICATIONS": ["{sub} Certificate {year}.pdf", "{sub} Survey Report {year}.pdf"],
    "14_PHOTOS": ["IMG_{n}.jpg"],
}
_PORTS = ["Antibes", "Monaco", "Palma", "Porto Cervo", "Valletta", "Gibraltar", "Split", "Bodrum"]


def _size(rng: Random, low: int, high: int) -> int:
    return int(math.exp(rng.uniform(math.log(low), math.log(high))))


class YachtTree:
    """Builds the demo tenant; ``tenant_size`` tops it up with archive files to that many items."""

    BIG_FILE = "05_DRAWINGS/General Arrangement/GA Full Drawing Set Rev F.pdf"
    BIG_SIZE = 300 * 1024 * 1024

    def __init__(self, tenant: Tenant, *, tenant_size: int | None = None,
                 with_library: bool = True) -> None:
        self.tenant = tenant
        self.rng = Random(tenant.seed)
        self.tenant_size = tenant_size
        self.with_library = with_library

    def _when(self) -> float:
        return self.rng.uniform(_EPOCH_2019, _EPOCH_2025)

    def folder(self, parent: Item, name: str) -> Item:
        return self.child(parent, name) or self.tenant.add_folder(parent.id, name, when=self._when(),
                                                                  log=False)

    def child(self, parent: Item, name: str) -> Item | None:
        return self.tenant.child(parent, name)

    def file(self, parent: Item, name: str, size: int) -> Item:
        existing = self.child(parent, name)
        if existing is not None:
            return existing
        created = self._when()
        item = self.tenant.add_file(parent.id, name, size, when=created, log=False)
        item.modified = min(_EPOCH_2025, created + self.rng.uniform(0, 400 * 86400))
        return item

    def build(self) -> Tenant:
        t = self.tenant
        with t.lock:
            slug = t.user_upn.replace("@", "_").replace(".", "_")
            personal = t.add_drive(
                name="OneDrive", drive_type=BUSINESS,
                web_url=f"https://{t.domain}-my.sharepoint.com/personal/{slug}/Documents",
                server_path=f"/personal/{slug}/Documents")
            t.personal_drive_id = personal.id
            self._yacht(t.live(personal.root_id))
            self._awkward(t.live(personal.root_id), personal)
            if self.with_library:
                self._library()
            if self.tenant_size:
                self._top_up(t.live(personal.root_id), self.tenant_size)
        return t

    def _yacht(self, root: Item) -> None:
        rng = self.rng
        for top_name, subs in _LAYOUT.items():
            top = self.folder(root, top_name)
            for sub_name in subs:
                sub = self.folder(top, sub_name)
                templates = _TEMPLATES[top_name]
                count = rng.randint(6, 10) if top_name == "14_PHOTOS" else rng.randint(3, 6)
                for index in range(count):
                    template = templates[index % len(templates)]
                    name = template.format(
                        sub=sub_name, model=_EQUIPMENT.get(sub_name, sub_name),
                        year=rng.randint(2019, 2025), n=rng.randint(100, 9999),
                        rev="ABCDEF"[rng.randint(0, 5)], a=rng.choice(_PORTS), b=rng.choice(_PORTS),
                        date=f"{rng.randint(2019, 2025)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}")
                    low, high = (20_000, 200_000) if name.endswith(".jpg") else (2_000, 200_000)
                    self.file(sub, name, _size(rng, low, high))

    def _awkward(self, root: Item, drive: Drive) -> None:
        t = self.tenant
        safety = t.resolve(root, ["07_SAFETY", "Fire Suppression"])
        manuals = t.resolve(root, ["04_MANUALS"])
        maint = t.resolve(root, ["08_MAINTENANCE"])
        assert safety and manuals and maint
        self.file(safety, "Fiche sécurité #2.pdf", 48_213)
        self.file(self.folder(manuals, "Generators"), "Manuel d'entretien – Générateur.pdf", 91_877)
        self.file(self.folder(maint, "Main Engines"), "Ölwechsel Protokoll 2024.xlsx", 23_456)
        self.file(self.folder(maint, "Generators"), "~$Generator Maintenance Log 2024.xlsx", 162)
        fuel = t.resolve(root, ["02_ENGINEERING", "Fuel System"])
        assert fuel
        self.file(fuel, "Fuel 100% Transfer Log.xlsx", 17_003)
        photos = t.resolve(root, ["14_PHOTOS", "Engine Room"])
        assert photos
        self.file(photos, "Thumbs.db", 9_216)
        bunkering = t.resolve(root, ["06_PROCEDURES", "Bunkering"])
        assert bunkering
        self.file(bunkering, "Bunker Receipt Template.txt", 0)
        bridge = t.resolve(root, ["01_BRIDGE"])
        assert bridge
        notebook = self.child(bridge, "Bridge Notebook") or t.add_notebook(
            bridge.id, "Bridge Notebook", when=self._when(), log=False)
        self.file(notebook, "Watch Handover.one", 38_912)
        self.file(notebook, "Open Notebook.onetoc2", 4_096)
        navigation = t.resolve(root, ["04_MANUALS", "Navigation"])
        assert navigation
        bad = self.file(navigation, "ECDIS Chart Updater.zip", 734_003)
        bad.malware = "Trojan:Win32/Wacatac.B!ml (simulated)"
        radio = t.resolve(root, ["13_CERTIFICATIONS", "Radio"])
        assert radio
        self.file(radio, "Ship Station Licence 2024.pdf", 64_000).omit_hash = True
        *folders, big_name = self.BIG_FILE.split("/")
        big_parent = root
        for name in folders:
            big_parent = self.folder(big_parent, name)
        self.file(big_parent, big_name, self.BIG_SIZE)
        self._long_path(root, drive)

    def _long_path(self, root: Item, drive: Drive) -> None:
        """A file whose decoded server path is 398 characters: valid in OneDrive, near the limit."""
        parts = ["06_PROCEDURES", "Deck Operations"]
        words = ["Mooring and Anchoring Arrangements", "Forward Deck Equipment and Windlass",
                 "Hydraulic Capstan Maintenance Records", "Chain Locker Inspections and Surveys",
                 "Anchor Chain Calibration and Gauging", "Manufacturer Correspondence Archive",
                 "Warranty Claims and Service Bulletins", "Superseded Revisions Kept For Reference"]
        file_name = "Windlass Brake Band Replacement Procedure.pdf"
        budget = 398 - len(drive.server_path) - 1 - len(file_name)
        used = sum(len(p) + 1 for p in parts)
        for word in words:
            if used + len(word) + 1 > budget:
                break
            parts.append(word)
            used += len(word) + 1
        pad = budget - used  # one more folder of ``pad - 1`` characters (plus its slash)
        if pad >= 2:
            length = pad - 1
            parts.append("Vol " + "I" * (length - 4) if length >= 5 else "X" * length)
        folder = root
        for name in parts:
            folder = self.folder(folder, name)
        self.file(folder, file_name, 12_345)

    def _library(self) -> None:
        t = self.tenant
        host = f"{t.domain}.sharepoint.com"
        site = Site(f"{host},{t.new_guid('site')},{t.new_guid('web')}", "FleetTechnical",
                    "Fleet Technical", f"https://{host}/sites/FleetTechnical", host, _EPOCH_2019)
        t.sites[site.id] = site
        drive = t.add_drive(name="Documents", drive_type=LIBRARY,
                            web_url=f"https://{host}/sites/FleetTechnical/Shared%20Documents",
                            server_path="/sites/FleetTechnical/Shared Documents", site_id=site.id)
        site.drive_ids.append(drive.id)
        root = t.live(drive.root_id)
        docs = self.folder(root, "Yacht Docs")
        for top, sub, names in [
            ("02_ENGINEERING", "Main Engines", ["Engine Room Checklist.docx", "MTU Service Plan.xlsx",
                                                "MTU 16V 4000 Overview.pdf"]),
            ("02_ENGINEERING", "Generators", ["Generator Load Test.xlsx", "Kohler Wiring.pdf"]),
            ("06_PROCEDURES", "Deck Operations", ["SOP-201 Mooring.docx", "Crane Operations.pdf"]),
            ("07_SAFETY", "ISM", ["Safety Management Manual.pdf", "Drill Matrix 2025.xlsx"]),
        ]:
            folder = self.folder(self.folder(docs, top), sub)
            for name in names:
                self.file(folder, name, _size(self.rng, 8_000, 120_000))
        standards = self.folder(root, "Fleet Standards")
        self.file(standards, "Fleet Maintenance Standard.docx", 54_321)
        self.file(standards, "Fleet Budget 2025.xlsx", 33_210)

    def _top_up(self, root: Item, target: int) -> None:
        """Archive folders of work orders and photos until the tenant holds ``target`` items."""
        tops = [self.folder(root, name) for name in ("08_MAINTENANCE", "02_ENGINEERING", "14_PHOTOS")]
        months = ["01 January", "02 February", "03 March", "04 April", "05 May", "06 June",
                  "07 July", "08 August", "09 September", "10 October", "11 November", "12 December"]
        count = self.tenant.count()
        serial = slot = 0
        while count < target:
            top = tops[slot % len(tops)]
            month_index = slot // len(tops)
            slot += 1
            folder = top
            for name in ("Archive", str(2000 + month_index // 12), months[month_index % 12]):
                existing = self.child(folder, name)
                folder = existing or self.folder(folder, name)
                count += existing is None
            photo = top.name == "14_PHOTOS"
            for _ in range(max(0, min(200, target - count))):
                serial += 1
                name = f"IMG_{serial:06d}.jpg" if photo else f"Work Order WO-{serial:06d}.pdf"
                self.file(folder, name, _size(self.rng, 2_000, 64_000))
                count += 1


def build_demo_tenant(*, seed: int = 1, tenant_size: int | None = None, with_library: bool = True,
                      domain: str = "mysimyacht",
                      user_upn: str = "it.officer@mysimyacht.onmicrosoft.com",
                      user_name: str = "Morgan Reyes",
                      clock: Callable[[], float] = time.time) -> Tenant:
    """The deterministic demo tenant: the same seed gives the same ids, names, sizes and bytes."""
    tenant = Tenant(seed=seed, domain=domain, user_upn=user_upn, user_name=user_name, clock=clock)
    return YachtTree(tenant, tenant_size=tenant_size, with_library=with_library).build()


def iter_files(tenant: Tenant, drive_id: str) -> Iterator[Item]:
    """Live files of a drive (tests and benchmarks pick targets from it)."""
    drive = tenant.drives[drive_id]
    return (i for i in tenant.walk(drive.root_id) if i.kind == FILE)
