"""What a simulated driveItem looks like on the wire: its bytes and its JSON.

Bytes are generated, never stored. A file is a list of parts: short literal byte strings (a PDF's
objects, a JPEG's markers, a whole small DOCX/XLSX) and *payloads*, runs of pseudo-random bytes
cut from a 1 MiB pool in 64 KiB blocks, each block stamped with its own header so no two blocks
repeat. QuickXorHash is linear (see ``quickxor``), so the hash of a 300 MB payload is assembled
from precomputed pool lanes in milliseconds, and a download streams it block by block.

Every generated file is valid for its type: the PDF has a correct xref table, the DOCX/XLSX are
stored zips with the minimal OPC parts, the JPEG decodes. Sizes are exact (padding goes into a
PDF stream, JPEG comment segments or a zip comment) unless a size below the format's minimum is
asked for.
"""

from __future__ import annotations

import base64
import functools
import io
import re
import struct
import time
import urllib.parse
import zipfile
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from random import Random
from typing import Any

from celeste_desktop.sim.quickxor import LANES, b64_from_lanes, lanes_of, rotate_lanes
from celeste_desktop.sim.tenant_model import FILE, LIBRARY, NOTEBOOK, ROOT, Item, Tenant

BLOCK = 64 * 1024
_POOL_SIZE = 1 << 20
_MASK64 = (1 << 64) - 1
_JPEG = base64.b64decode(
    "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAA0JCgsKCA0LCgsODg0PEyAVExISEyccHhcgLikxMC4pLSwzOko+MzZGNywt"
    "QFdBRkxOUlNSMj5aYVpQYEpRUk//2wBDAQ4ODhMREyYVFSZPNS01T09PT09PT09PT09PT09PT09PT09PT09PT09PT09P"
    "T09PT09PT09PT09PT09PT09PT0//wAARCAAMABADASIAAhEBAxEB/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcI"
    "CQoL/8QAtRAAAgEDAwIEAwUFBAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRol"
    "JicoKSo0NTY3ODk6Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ip"
    "qrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi4+Tl5ufo6erx8vP09fb3+Pn6/8QAHwEAAwEBAQEBAQEBAQAAAAAA"
    "AAECAwQFBgcICQoL/8QAtREAAgECBAQDBAcFBAQAAQJ3AAECAxEEBSExBhJBUQdhcRMiMoEIFEKRobHBCSMzUvAVYnLR"
    "ChYkNOEl8RcYGRomJygpKjU2Nzg5OkNERUZHSElKU1RVVldYWVpjZGVmZ2hpanN0dXZ3eHl6goOEhYaHiImKkpOUlZaX"
    "mJmaoqOkpaanqKmqsrO0tba3uLm6wsPExcbHyMnK0tPU1dbX2Nna4uPk5ebn6Onq8vP09fb3+Pn6/9oADAMBAAIRAxEA"
    "PwDJhsvar8Nl7VehiT0q/DEnpWlTEM4sFipaH//Z"
)
MIME = {
    "pdf": "application/pdf", "jpeg": "image/jpeg",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "txt": "text/plain", "zip": "application/x-zip-compressed", "jpg": "image/jpeg",
}
_SENTENCES = [
    "Check the sea water strainer and record the differential pressure.",
    "Confirm the fuel day tank level before starting the generator.",
    "Inspect the V-belts for wear and adjust tension to the maker's figure.",
    "Test the emergency stop from the bridge and from the engine control room.",
    "Record running hours, oil pressure and coolant temperature every watch.",
    "Replace the primary fuel filters at 500 hours or on high vacuum alarm.",
    "Verify the fire dampers close and the ventilation trips on release.",
    "Log any alarm, the action taken and the name of the engineer on watch.",
]


@dataclass(frozen=True, slots=True)
class Payload:
    """``length`` pseudo-random bytes drawn from the pool; ``seed`` makes them unique."""

    seed: int
    length: int


Part = bytes | Payload


@dataclass(frozen=True, slots=True)
class Content:
    parts: tuple[Part, ...]
    size: int


def _mix(seed: int, index: int) -> int:
    value = (seed * 0x9E3779B97F4A7C15 + index * 0xBF58476D1CE4E5B9 + 0x94D049BB133111EB) & _MASK64
    value ^= value >> 31
    value = (value * 0xD6E8FEB86659FD93) & _MASK64
    return value ^ (value >> 32)


class ContentSynth:
    """Generates, hashes and streams item content from a seeded pool (one per simulator)."""

    def __init__(self, seed: int) -> None:
        self.pool = Random(seed ^ 0x5EED).randbytes(_POOL_SIZE)
        rows = memoryview(self.pool)
        prefix = [0]
        for start in range(0, _POOL_SIZE, LANES):  # prefix[m]: lanes of the first m rows of 160 bytes
            prefix.append(prefix[-1] ^ int.from_bytes(rows[start : start + LANES], "little"))
        self._prefix = prefix

    # -- building -----------------------------------------------------------------------------

    def build(self, item: Item, *, enriched: bool = False) -> Content:
        kind, size = item.content_kind, item.size
        seed = _mix(item.content_seed, item.content_version)
        if kind == "empty" or size == 0:
            parts: list[Part] = []
        elif kind == "pdf":
            parts = _pdf(item, seed, size)
        elif kind == "jpeg":
            parts = _jpeg(item, seed, size)
        elif kind in ("docx", "xlsx"):
            parts = [_office(item, seed, size, enriched=enriched)]
        else:
            parts = [Payload(seed, size)]
        if enriched and kind not in ("docx", "xlsx"):
            parts.append(b"\n<!-- SharePoint library properties -->\n")  # e.g. a .pptx we only fake
        return Content(tuple(parts), sum(_len(p) for p in parts))

    # -- hashing ------------------------------------------------------------------------------

    def lanes(self, content: Content) -> int:
        total, offset = 0, 0
        for part in content.parts:
            if isinstance(part, Payload):
                total ^= self._payload_lanes(part, offset)
            else:
                total ^= lanes_of(part, offset)
            offset += _len(part)
        return total

    def quickxor(self, content: Content) -> str:
        return b64_from_lanes(self.lanes(content), content.size)

    def _pool_lanes(self, start: int, end: int) -> int:
        """Lanes of ``pool[start:end]`` with lane = pool offset mod 160."""
        inner_start = min(end, -(-start // LANES) * LANES)
        inner_end = max(inner_start, (end // LANES) * LANES)
        lanes = self._prefix[inner_end // LANES] ^ self._prefix[inner_start // LANES]
        lanes ^= lanes_of(self.pool[start:inner_start], start)
        return lanes ^ lanes_of(self.pool[inner_end:end], inner_end)

    def _block(self, payload: Payload, index: int) -> tuple[bytes, int, int]:
        """Block ``index``: its 16-byte header, pool offset and length (header included)."""
        length = min(BLOCK, payload.length - index * BLOCK)
        header = struct.pack("<QQ", payload.seed & _MASK64, index)
        return header, _mix(payload.seed, index) % (_POOL_SIZE - BLOCK), length

    def _payload_lanes(self, payload: Payload, offset: int) -> int:
        total = 0
        for index in range(-(-payload.length // BLOCK)):
            header, pool_at, length = self._block(payload, index)
            base = offset + index * BLOCK
            total ^= lanes_of(header[:length], base)
            if length > 16:
                body = self._pool_lanes(pool_at, pool_at + length - 16)
                total ^= rotate_lanes(body, base + 16 - pool_at)
        return total

    # -- streaming ----------------------------------------------------------------------------

    def iter_bytes(self, content: Content, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Bytes ``[start, end)`` in chunks of at most 64 KiB."""
        end = content.size if end is None else min(end, content.size)
        offset = 0
        for part in content.parts:
            length = _len(part)
            lo, hi = max(start, offset), min(end, offset + length)
            if lo < hi:
                if isinstance(part, Payload):
                    yield from self._payload_bytes(part, lo - offset, hi - offset)
                else:
                    for cut in range(lo - offset, hi - offset, BLOCK):
                        yield part[cut : min(cut + BLOCK, hi - offset)]
            offset += length
            if offset >= end:
                return

    def _payload_bytes(self, payload: Payload, start: int, end: int) -> Iterator[bytes]:
        for index in range(start // BLOCK, -(-end // BLOCK)):
            header, pool_at, length = self._block(payload, index)
            block = header + self.pool[pool_at : pool_at + max(0, length - 16)]
            base = index * BLOCK
            yield block[max(0, start - base) : min(length, end - base)]

    def read_all(self, content: Content) -> bytes:
        """Whole content in memory: for tests and small files only."""
        return b"".join(self.iter_bytes(content))


def _len(part: Part) -> int:
    return part.length if isinstance(part, Payload) else len(part)


def _ascii(text: str) -> str:
    return text.encode("ascii", "replace").decode("ascii")


def _pdf(item: Item, seed: int, size: int) -> list[Part]:
    """A one-page PDF; the padding is an unreferenced stream object (allowed by the format)."""
    title = _ascii(item.title).replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    lines = ["M/Y CELESTE - technical library", title, f"Revision {item.content_version}",
             f"Document ref {seed & 0xFFFFFFFF:08X}"]
    text = "BT /F1 14 Tf 56 780 Td " + " 0 -22 Td ".join(f"({line}) Tj" for line in lines) + " ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(text), text.encode()),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    head = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(head))
        head += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    padding = 0
    for _ in range(4):  # the digits of the padding length and of startxref move the total a bit
        stream_head = b"6 0 obj\n<< /Length %d >>\nstream\n" % padding
        stream_tail = b"\nendstream\nendobj\n"
        xref_at = len(head) + len(stream_head) + padding + len(stream_tail)
        table = b"xref\n0 7\n0000000000 65535 f \n" + b"".join(
            b"%010d 00000 n \n" % at for at in [*offsets, len(head)])
        tail = table + b"trailer\n<< /Size 7 /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % xref_at
        fixed = len(head) + len(stream_head) + len(stream_tail) + len(tail)
        wanted = max(0, size - fixed)
        if wanted == padding:
            break
        padding = wanted
    return [bytes(head) + stream_head, Payload(seed, padding), stream_tail + tail]


def _jpeg(item: Item, seed: int, size: int) -> list[Part]:
    """A small valid JPEG; comment segments (skipped by decoders) carry the padding."""
    note = f"M/Y Celeste {_ascii(item.title)} rev {item.content_version}".encode()
    remaining = size - len(_JPEG) - 4 - len(note)
    full, rest = divmod(max(0, remaining), 4 + 65533)
    if 0 < rest < 4:
        note += b" " * rest
        rest = 0
    parts: list[Part] = [_JPEG[:2] + b"\xff\xfe" + struct.pack(">H", len(note) + 2) + note]
    for index in range(full + (1 if rest else 0)):
        length = 65533 if index < full else rest - 4
        parts += [b"\xff\xfe" + struct.pack(">H", length + 2), Payload(_mix(seed, index), length)]
    parts.append(_JPEG[2:])
    return parts


_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>{overrides}'
    '<Override PartName="/docProps/core.xml" '
    'ContentType="application/vnd.openxmlformats-package.core-properties+xml"/></Types>'
)
_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/officeDocument" Target="{main}"/><Relationship Id="rId2" '
    'Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties" '
    'Target="docProps/core.xml"/></Relationships>'
)


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _office(item: Item, seed: int, size: int, *, enriched: bool) -> bytes:
    """A stored (uncompressed) DOCX or XLSX; a zip comment tops it up to the exact size."""
    rng = Random(seed)
    stamp = time.gmtime(max(item.created, 315532800.0))[:6]
    title = _xml(item.title.rsplit(".", 1)[0])
    core = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<cp:coreProperties '
        'xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/">'
        f"<dc:title>{title}</dc:title><dc:creator>M/Y Celeste</dc:creator>"
        f"<cp:revision>{item.content_version}</cp:revision></cp:coreProperties>"
    )
    if item.content_kind == "docx":
        body = "".join(f"<w:p><w:r><w:t>{rng.choice(_SENTENCES)}</w:t></w:r></w:p>"
                       for _ in range(rng.randint(3, 12)))
        main = ("word/document.xml",
                '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<w:document '
                'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>'
                f"<w:p><w:r><w:t>{title}</w:t></w:r></w:p>{body}<w:sectPr/></w:body></w:document>")
        overrides = ('<Override PartName="/word/document.xml" ContentType="application/vnd.'
                     'openxmlformats-officedocument.wordprocessingml.document.main+xml"/>')
        extra: list[tuple[str, str]] = []
    else:
        rows = "".join(
            f'<row r="{r}"><c r="A{r}" t="inlineStr"><is><t>{rng.choice(_SENTENCES)}</t></is></c>'
            f'<c r="B{r}"><v>{rng.randint(100, 40000)}</v></c></row>'
            for r in range(2, rng.randint(4, 30)))
        main = ("xl/workbook.xml",
                '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<workbook '
                'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
                'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
                '<sheets><sheet name="Log" sheetId="1" r:id="rId1"/></sheets></workbook>')
        overrides = (
            '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-'
            'officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/'
            'sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.'
            'spreadsheetml.worksheet+xml"/>')
        extra = [
            ("xl/_rels/workbook.xml.rels",
             '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Relationships '
             'xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship '
             'Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
             'worksheet" Target="worksheets/sheet1.xml"/></Relationships>'),
            ("xl/worksheets/sheet1.xml",
             '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<worksheet '
             'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
             f'<row r="1"><c r="A1" t="inlineStr"><is><t>{title}</t></is></c></row>{rows}'
             "</sheetData></worksheet>"),
        ]
    # What SharePoint adds to Office files it "enriches" with library metadata; the padding is
    # worked out without it, so the enriched file is bigger than the listed size.
    custom = ("docProps/custom.xml",
              '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Properties '
              'xmlns="http://schemas.openxmlformats.org/officeDocument/2006/custom-properties">'
              '<property fmtid="{D5CDD505-2E9C-101B-9397-08002B2CF9AE}" pid="2" '
              'name="ContentTypeId"><vt:lpwstr xmlns:vt="http://schemas.openxmlformats.org/'
              'officeDocument/2006/docPropsVTypes">0x0101009C2F</vt:lpwstr></property>'
              "</Properties>")
    entries = [("[Content_Types].xml", _TYPES.format(overrides=overrides)),
               ("_rels/.rels", _RELS.format(main=main[0])), main, *extra,
               ("docProps/core.xml", core)]

    def pack(filler: str, comment: bytes, with_custom: bool = enriched) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
            for name, text in [*entries, custom] if with_custom else entries:
                info = zipfile.ZipInfo(name, date_time=stamp)
                info.create_system = 0  # same bytes on every platform
                info.external_attr = 0
                archive.writestr(info, text + filler if name == main[0] else text)
            archive.comment = comment
        return buffer.getvalue()

    missing = size - len(pack("", b"", with_custom=False))
    if missing <= 0:
        return pack("", b"")
    if missing <= 0xFFFF:
        return pack("", b" " * missing)
    # Stored entries grow byte for byte, so an XML comment of exactly ``missing`` characters
    # after the root element gives the exact size. Hyphens go: "--" may not appear in comments.
    text = " ".join(rng.choice(_SENTENCES) for _ in range(missing // 50 + 2)).replace("-", " ")
    return pack("<!--" + text[: missing - 7] + "-->", b"")


# ------------------------------------------------------------------------------------------
# JSON


def iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


@functools.lru_cache(maxsize=65536)  # folder names repeat on every item below them
def quote_segment(name: str) -> str:
    return urllib.parse.quote(name, safe="!$&'()*+,;=@")


def mime_for(item: Item) -> str:
    ext = item.name.rsplit(".", 1)[-1].lower() if "." in item.name else ""
    return MIME.get(item.content_kind) or MIME.get(ext) or "application/octet-stream"


@dataclass
class RenderContext:
    """How one response renders items: which path style, delta or not, and the download URL maker."""

    tenant: Tenant
    synth: ContentSynth
    download_url: Callable[[Item], str]
    in_delta: bool = False
    path_style: str = "drives"  # "drive" for items fetched through /me/drive
    select: frozenset[str] | None = None
    hashes_hidden: bool = False


def content_info(synth: ContentSynth, item: Item) -> tuple[int, str]:
    """(size, quickXorHash) of the item's current content, memoised per content version."""
    cached = item.content_info
    if cached is None or cached[0] != item.content_version:
        content = synth.build(item)
        cached = (item.content_version, content.size, synth.quickxor(content))
        item.content_info = cached
    return cached[1], cached[2]


def _identity(tenant: Tenant) -> dict[str, Any]:
    return {"user": {"email": tenant.user_upn, "displayName": tenant.user_name}}


def render_item(item: Item, ctx: RenderContext, *, as_deleted: bool = False) -> dict[str, Any]:
    """The driveItem JSON; ``as_deleted`` renders a tombstone (an item that left a folder's view)."""
    tenant = ctx.tenant
    drive = tenant.drive_of(item)
    guid = Tenant.item_guid(item.id)
    data: dict[str, Any] = {"id": item.id}
    reference: dict[str, Any] = {"driveType": drive.drive_type, "driveId": drive.id}
    if drive.site_id:
        reference["siteId"] = drive.site_id
    if (item.deleted or as_deleted) and ctx.in_delta:
        # Business delta tombstones: no name and no cTag, just where the item used to be.
        if item.parent_id:
            reference["id"] = item.parent_id
        data.update({"parentReference": reference, "deleted": {"state": "deleted"},
                     "lastModifiedDateTime": iso(item.modified), "size": 0})
        data["file" if item.kind == FILE else "folder"] = {} if item.kind == FILE else {"childCount": 0}
        return _select(data, ctx.select)
    names = tenant.path_names(item)
    data.update({
        "name": item.name,
        "eTag": f'"{{{guid}}},{item.etag_version}"',
        "createdDateTime": iso(item.created),
        "lastModifiedDateTime": iso(item.modified),
        "webUrl": drive.web_url + "".join("/" + quote_segment(n) for n in names),
        "fileSystemInfo": {"createdDateTime": iso(item.created), "lastModifiedDateTime": iso(item.modified)},
    })
    if not ctx.in_delta:
        data["cTag"] = f'"c:{{{guid}}},{item.content_version}"'
        data["createdBy"] = data["lastModifiedBy"] = _identity(tenant)
    if item.kind == ROOT:
        data["root"] = {}
    elif item.parent_id:
        parent = tenant.items[item.parent_id]
        reference["id"] = parent.id
        if not ctx.in_delta:
            reference["name"] = "root" if parent.kind == ROOT else parent.name
            prefix = "/drive/root:" if ctx.path_style == "drive" else f"/drives/{drive.id}/root:"
            reference["path"] = prefix + "".join("/" + quote_segment(n) for n in names[:-1])
    data["parentReference"] = reference
    if item.kind == FILE:
        size, digest = content_info(ctx.synth, item)
        facet: dict[str, Any] = {"mimeType": mime_for(item)}
        if not (item.omit_hash or ctx.hashes_hidden):
            facet["hashes"] = {"quickXorHash": digest}
        data["file"] = facet
        data["size"] = size
        if item.malware:
            data["malware"] = {"description": item.malware}
        data["@microsoft.graph.downloadUrl"] = ctx.download_url(item)
    elif item.kind == NOTEBOOK:
        data["package"] = {"type": "oneNote"}
        data["size"] = 0
    else:
        data["folder"] = {"childCount": len(item.children or {})}
        # Graph reports a folder's size as the total of everything below it.
        data["size"] = folder_size(ctx.tenant, item)
    if drive.drive_type == LIBRARY and item.kind != ROOT:
        data["sharepointIds"] = {"listItemUniqueId": guid.lower(), "siteUrl": drive.web_url.rsplit("/", 1)[0]}
    return _select(data, ctx.select)


_FOLDER_SIZES: dict[int, tuple[int, dict[str, int]]] = {}


def folder_size(tenant: Tenant, folder: Item) -> int:
    """Total bytes below ``folder``; cached per tenant until the tenant next changes."""
    cached = _FOLDER_SIZES.get(id(tenant))
    if cached is None or cached[0] != tenant.seq:
        cached = (tenant.seq, {})
        _FOLDER_SIZES[id(tenant)] = cached
    sizes = cached[1]
    if folder.id not in sizes:
        sizes[folder.id] = sum(i.size for i in tenant.walk(folder.id) if i.kind == FILE)
    return sizes[folder.id]


def _select(data: dict[str, Any], select: frozenset[str] | None) -> dict[str, Any]:
    """``$select``: keep the named properties, plus id and (in delta) the deleted facet."""
    if select is None:
        return data
    keep = select | {"id", "deleted"}
    return {k: v for k, v in data.items() if k in keep}


# ------------------------------------------------------------------------------------------
# Downloads


def parse_range(header: str, size: int) -> tuple[int, int] | str | None:
    """One ``bytes=`` range as [start, end); None to ignore the header (as servers may)."""
    match = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", header)
    if not match or (not match[1] and not match[2]):
        return None
    if not match[1]:
        suffix = int(match[2])
        return (max(0, size - suffix), size) if suffix and size else "unsatisfiable"
    start = int(match[1])
    end = min(size, int(match[2]) + 1) if match[2] else size
    if start >= size or end <= start:
        return "unsatisfiable"
    return start, end


def flip_byte(chunks: Iterator[bytes], start: int, position: int) -> Iterator[bytes]:
    """Corrupt one byte (for hash-mismatch tests) without changing the size."""
    offset = start
    for chunk in chunks:
        if offset <= position < offset + len(chunk):
            mutable = bytearray(chunk)
            mutable[position - offset] ^= 0xFF
            yield bytes(mutable)
        else:
            yield chunk
        offset += len(chunk)


async def stream(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk
