"""Render the one SVG master into every icon file the platforms want, and check they are current.

    python packaging/make_icons.py            # regenerate resources/icons/ from celeste.svg
    python packaging/make_icons.py --check    # exit 1 when the committed files are stale

Writes ``celeste-<size>.png`` (Linux hicolor sizes, the tray, the About box), ``celeste.ico``
(Windows: PNG-compressed entries, Vista and later) and ``celeste.icns`` (macOS: PNG-encoded
``icp4``/``icp5``/``ic07``…``ic14`` entries), plus ``MANIFEST.json`` recording the SHA-256 of
the master and of every output so a test notices an edited SVG that was not regenerated.

The SVG is rendered with QtSvg, which PySide6-Essentials ships (the app already depends on
it); the ICO and ICNS containers are written here, so no other tool or package is needed.
Qt is imported only inside ``render_png``: the container code runs without it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import struct
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
ICON_DIR = REPO_ROOT / "resources" / "icons"
MASTER_NAME = "celeste.svg"
MANIFEST_NAME = "MANIFEST.json"

# Linux hicolor and tray sizes, every ICO size, every ICNS pixel size.
PNG_SIZES = (16, 20, 22, 24, 32, 40, 48, 64, 96, 128, 256, 512, 1024)
# Windows: small icons at 100-250 % scaling (16, 20, 24, 32, 40), Explorer views (48, 64, 256).
ICO_SIZES = (16, 20, 24, 32, 40, 48, 64, 256)
# macOS: (type, pixels). ic11..ic14 and ic10 are the @2x variants of 16, 32, 128, 256 and 512.
ICNS_ENTRIES = (
    ("icp4", 16), ("icp5", 32), ("ic11", 32), ("ic12", 64), ("ic07", 128),
    ("ic13", 256), ("ic08", 256), ("ic14", 512), ("ic09", 512), ("ic10", 1024),
)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

Renderer = Callable[[bytes, int], bytes]


def png_file_name(size: int) -> str:
    """The name the GUI looks for: ``celeste-<size>.png``."""
    return f"celeste-{size}.png"


def png_dimensions(png: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    if not png.startswith(PNG_SIGNATURE) or png[12:16] != b"IHDR":
        raise ValueError("not a PNG file")
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def build_ico(pngs: Mapping[int, bytes]) -> bytes:
    """An ICO file whose entries are whole PNG files (the format Windows reads since Vista).

    Layout: ICONDIR (reserved 0, type 1, count), one 16-byte ICONDIRENTRY per image (width
    and height as a byte, 0 meaning 256; 32 bits per pixel; size and offset of the data),
    then the PNG files back to back.
    """
    sizes = sorted(pngs)
    header = struct.pack("<HHH", 0, 1, len(sizes))
    offset = len(header) + 16 * len(sizes)
    entries = b""
    images = b""
    for size in sizes:
        png = pngs[size]
        if png_dimensions(png) != (size, size):
            raise ValueError(f"the {size}px image is {png_dimensions(png)}")
        if size > 256:
            raise ValueError("ICO entries are at most 256 px")
        byte_size = 0 if size == 256 else size
        entries += struct.pack("<BBBBHHII", byte_size, byte_size, 0, 0, 1, 32, len(png), offset + len(images))
        images += png
    return header + entries + images


def read_ico(data: bytes) -> list[tuple[int, bytes]]:
    """``(pixels, png)`` for every entry of an ICO file written by ``build_ico``."""
    reserved, kind, count = struct.unpack("<HHH", data[:6])
    if reserved != 0 or kind != 1:
        raise ValueError("not an ICO file")
    entries = []
    for index in range(count):
        width, height, _, _, _, _, length, offset = struct.unpack("<BBBBHHII", data[6 + 16 * index : 22 + 16 * index])
        if width != height:
            raise ValueError("ICO entry is not square")
        entries.append((width or 256, data[offset : offset + length]))
    return entries


def build_icns(pngs: Mapping[int, bytes]) -> bytes:
    """An ICNS file of PNG-encoded entries.

    Layout (big-endian): ``icns`` and the total length, then per entry a four-character type,
    the entry length including its 8-byte header, and the PNG file.
    """
    body = b""
    for kind, size in ICNS_ENTRIES:
        png = pngs[size]
        if png_dimensions(png) != (size, size):
            raise ValueError(f"the {size}px image is {png_dimensions(png)}")
        body += kind.encode("ascii") + struct.pack(">I", len(png) + 8) + png
    return b"icns" + struct.pack(">I", len(body) + 8) + body


def read_icns(data: bytes) -> list[tuple[str, bytes]]:
    """``(type, payload)`` for every entry of an ICNS file."""
    if data[:4] != b"icns" or struct.unpack(">I", data[4:8])[0] != len(data):
        raise ValueError("not an ICNS file (bad magic or length)")
    entries = []
    position = 8
    while position < len(data):
        if position + 8 > len(data):
            raise ValueError("ICNS entry header overruns the file")
        kind = data[position : position + 4].decode("ascii")
        (length,) = struct.unpack(">I", data[position + 4 : position + 8])
        if length < 8 or position + length > len(data):
            raise ValueError(f"ICNS entry {kind!r} overruns the file")
        entries.append((kind, data[position + 8 : position + length]))
        position += length
    return entries


def render_png(svg: bytes, size: int) -> bytes:
    """Render the SVG to a square PNG of ``size`` pixels with QtSvg (antialiased, transparent)."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QBuffer, QByteArray, QCoreApplication, QIODevice, QRectF, Qt
    from PySide6.QtGui import QGuiApplication, QImage, QImageWriter, QPainter
    from PySide6.QtSvg import QSvgRenderer

    if QCoreApplication.instance() is None:
        # Kept referenced on the function so it outlives this call (Qt needs one per process).
        render_png.app = QGuiApplication([sys.argv[0]])  # type: ignore[attr-defined]
    renderer = QSvgRenderer(QByteArray(svg))
    if not renderer.isValid():
        raise ValueError("the SVG master could not be parsed by QtSvg")
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    renderer.render(painter, QRectF(0, 0, size, size))
    painter.end()
    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    # QImageWriter rather than QImage.save: PySide6's stubs and run time disagree on save's format type.
    writer = QImageWriter(buffer, QByteArray(b"png"))
    if not writer.write(image):
        raise RuntimeError(f"Qt could not encode the {size}px PNG: {writer.errorString()}")
    return bytes(buffer.data().data())


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def generate(svg_path: Path, out_dir: Path, renderer: Renderer = render_png) -> dict[str, bytes]:
    """Render every output and write it (with the manifest) to ``out_dir``; returns name → bytes."""
    svg = svg_path.read_bytes()
    pngs = {size: renderer(svg, size) for size in PNG_SIZES}
    outputs = {png_file_name(size): png for size, png in pngs.items()}
    outputs["celeste.ico"] = build_ico({size: pngs[size] for size in ICO_SIZES})
    outputs["celeste.icns"] = build_icns(pngs)
    manifest = {
        "source": svg_path.name,
        "source_sha256": _sha256(svg),
        "generator": "packaging/make_icons.py",
        "files": {name: _sha256(data) for name, data in sorted(outputs.items())},
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, data in outputs.items():
        (out_dir / name).write_bytes(data)
    (out_dir / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return outputs


def stale_files(icon_dir: Path) -> list[str]:
    """What is out of step with the manifest: the master, or an output missing or edited by hand."""
    manifest_path = icon_dir / MANIFEST_NAME
    if not manifest_path.is_file():
        return [MANIFEST_NAME]
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    problems = []
    master = icon_dir / str(manifest["source"])
    if not master.is_file() or _sha256(master.read_bytes()) != manifest["source_sha256"]:
        problems.append(f"{manifest['source']} (changed since the icons were generated)")
    expected = {png_file_name(size) for size in PNG_SIZES} | {"celeste.ico", "celeste.icns"}
    files: dict[str, str] = manifest["files"]
    problems += sorted(f"{name} (not generated)" for name in expected - set(files))
    for name, digest in sorted(files.items()):
        path = icon_dir / name
        if not path.is_file() or _sha256(path.read_bytes()) != digest:
            problems.append(f"{name} (missing or edited)")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--svg", type=Path, default=ICON_DIR / MASTER_NAME, help="the SVG master")
    parser.add_argument("--out", type=Path, default=ICON_DIR, help="where the icons go")
    parser.add_argument("--check", action="store_true", help="only check the icons match the master")
    args = parser.parse_args(argv)
    if args.check:
        problems = stale_files(args.out)
        for problem in problems:
            print(f"stale icon: {problem}", file=sys.stderr)
        if problems:
            print("run: python packaging/make_icons.py", file=sys.stderr)
        return 1 if problems else 0
    outputs = generate(args.svg, args.out)
    print(f"wrote {len(outputs)} icon files and {MANIFEST_NAME} to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
