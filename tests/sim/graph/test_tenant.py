"""The demo tenant and the simulator's content generator and QuickXorHash, in process."""

from __future__ import annotations

import base64
import io
import random
import re
import time
import zipfile

import pytest
import quickxorhash

from celeste_desktop.sim.graph_items import ContentSynth, content_info
from celeste_desktop.sim.quickxor import QuickXorHash, lanes_of, quickxor_b64
from celeste_desktop.sim.tenant import FILE, Tenant, TenantError, build_demo_tenant, iter_files


def c_quickxor(data: bytes) -> str:
    hasher = quickxorhash.quickxorhash()
    hasher.update(data)
    return base64.b64encode(hasher.digest()).decode()


@pytest.mark.parametrize("size", [0, 1, 19, 20, 159, 160, 161, 320, 65_537, 1_000_003])
def test_reference_quickxor_matches_the_c_package(size: int) -> None:
    data = random.Random(size).randbytes(size)
    assert quickxor_b64(data) == c_quickxor(data)
    streamed = QuickXorHash()
    rng = random.Random(size + 1)
    position = 0
    while position < size:
        step = rng.randint(1, 70_000)
        streamed.update(data[position : position + step])
        position += step
    assert streamed.b64digest() == c_quickxor(data)
    assert lanes_of(data[:7], 0) ^ lanes_of(data[7:], 7) == lanes_of(data, 0)


def test_the_tenant_is_deterministic() -> None:
    first, second = build_demo_tenant(seed=5), build_demo_tenant(seed=5)
    synth_a, synth_b = ContentSynth(5), ContentSynth(5)
    files_a = list(iter_files(first, first.personal_drive_id))
    files_b = list(iter_files(second, second.personal_drive_id))
    assert [(f.id, f.name, f.size) for f in files_a] == [(f.id, f.name, f.size) for f in files_b]
    assert [content_info(synth_a, f) for f in files_a] == [content_info(synth_b, f) for f in files_b]
    other = build_demo_tenant(seed=6)
    assert [f.name for f in iter_files(other, other.personal_drive_id)] != [f.name for f in files_a]


def test_the_demo_tree_has_the_awkward_cases() -> None:
    tenant = build_demo_tenant()
    drive = tenant.drives[tenant.personal_drive_id]
    root = tenant.live(drive.root_id)
    tops = [tenant.items[i].name for i in tenant.sorted_children(root)]
    assert tops == ["01_BRIDGE", "02_ENGINEERING", "03_SYSTEMS", "04_MANUALS", "05_DRAWINGS", "06_PROCEDURES",
                    "07_SAFETY", "08_MAINTENANCE", "13_CERTIFICATIONS", "14_PHOTOS"]
    assert 200 <= tenant.count() <= 500
    files = list(iter_files(tenant, drive.id))
    longest = max(len(drive.server_path + "/" + "/".join(tenant.path_names(f))) for f in files)
    assert longest == 398  # valid for OneDrive (< 400), awkward for anything stricter
    big = [f for f in files if f.size > 100_000_000]
    assert [tenant.path_names(f)[0] for f in big] == ["05_DRAWINGS"]
    assert any(f.size == 0 for f in files)
    assert any(f.malware for f in files) and any(f.omit_hash for f in files)
    assert any(i.kind == "notebook" for i in tenant.items.values())
    assert tenant.resolve_path(drive.id, "/07_safety/FIRE SUPPRESSION/fiche sécurité #2.pdf").kind == FILE
    library = next(d for d in tenant.drives.values() if d.drive_type == "documentLibrary")
    assert tenant.resolve_path(library.id, "/Yacht Docs/02_ENGINEERING").kind == "folder"


def test_a_hundred_thousand_items_build_quickly() -> None:
    started = time.perf_counter()
    tenant = build_demo_tenant(tenant_size=100_000)
    elapsed = time.perf_counter() - started
    assert tenant.count() == 100_000
    assert elapsed < 8, f"took {elapsed:.1f}s"
    assert all(not i.content_info for i in tenant.items.values())  # nothing generated yet


def test_generated_files_are_valid_and_exact_in_size() -> None:
    tenant = Tenant(seed=3)
    drive = tenant.add_drive(name="OneDrive", drive_type="business", web_url="https://x", server_path="/p/x")
    tenant.personal_drive_id = drive.id
    synth = ContentSynth(3)
    for name, size in [("a.pdf", 2_000), ("b.pdf", 150_001), ("c.docx", 9_999), ("d.xlsx", 180_000),
                       ("e.jpg", 3_000), ("f.jpg", 200_003), ("g.bin", 70_000), ("h.docx", 100)]:
        item = tenant.add_file(drive.root_id, name, size)
        content = synth.build(item)
        data = synth.read_all(content)
        assert len(data) == content.size
        if name != "h.docx":  # below the format's minimum the file is as small as it can be
            assert content.size == size, name
        assert synth.quickxor(content) == quickxor_b64(data)
        if name.endswith(".pdf"):
            found = re.search(rb"startxref\n(\d+)\n", data)
            assert found is not None
            xref_at = int(found[1])
            assert data[xref_at:].startswith(b"xref")
            offsets = [int(o) for o in re.findall(rb"(\d{10}) 00000 n", data)]
            for number, offset in enumerate(offsets, start=1):
                assert data[offset:].startswith(b"%d 0 obj" % number)
        elif name.endswith((".docx", ".xlsx")):
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                assert archive.testzip() is None
        elif name.endswith(".jpg"):
            assert data.startswith(b"\xff\xd8\xff\xfe") and data.endswith(b"\xff\xd9")
        changed = tenant.change_content(item.id)
        assert synth.quickxor(synth.build(changed)) != quickxor_b64(data)


def test_tenant_refuses_bad_changes() -> None:
    tenant = build_demo_tenant()
    drive = tenant.personal_drive_id
    folder = tenant.resolve_path(drive, "/02_ENGINEERING")
    with pytest.raises(TenantError):
        tenant.add_file(folder.id, "bad:name.pdf", 10)
    with pytest.raises(TenantError):
        tenant.add_folder(folder.id, "main engines")  # exists, case-insensitively
    with pytest.raises(TenantError):
        tenant.move(folder.id, tenant.resolve_path(drive, "/02_ENGINEERING/Main Engines").id)
