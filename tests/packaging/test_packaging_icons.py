"""The icon generator's output: every size each platform wants, valid ICO/ICNS, and nothing stale."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from types import ModuleType

import pytest
from packaging_helpers import ICON_DIR
from pytestqt.qtbot import QtBot


def solid_png(size: int) -> bytes:
    """A real PNG of ``size`` pixels (one colour), so the generator runs without Qt."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\x0b\x4a\x8f\xff" * size for _ in range(size))
    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def fake_renderer(svg: bytes, size: int) -> bytes:
    assert svg.startswith(b"<?xml")
    return solid_png(size)


def test_committed_icons_match_the_svg_master(make_icons: ModuleType) -> None:
    assert make_icons.stale_files(ICON_DIR) == [], "run: python packaging/make_icons.py"


def test_a_png_for_every_size_named_as_the_gui_expects(make_icons: ModuleType) -> None:
    wanted = {16, 20, 24, 32, 40, 48, 64, 128, 256, 512, 1024}
    assert wanted <= set(make_icons.PNG_SIZES)
    for size in make_icons.PNG_SIZES:
        png = (ICON_DIR / f"celeste-{size}.png").read_bytes()
        assert make_icons.png_dimensions(png) == (size, size)


def test_ico_holds_every_windows_size_as_png(make_icons: ModuleType) -> None:
    entries = make_icons.read_ico((ICON_DIR / "celeste.ico").read_bytes())
    assert [size for size, _ in entries] == [16, 20, 24, 32, 40, 48, 64, 256]
    for size, png in entries:
        assert make_icons.png_dimensions(png) == (size, size)
        assert png == (ICON_DIR / f"celeste-{size}.png").read_bytes()


def test_icns_holds_every_macos_size_including_retina(make_icons: ModuleType) -> None:
    data = (ICON_DIR / "celeste.icns").read_bytes()
    entries = dict(make_icons.read_icns(data))
    expected = {
        "icp4": 16, "icp5": 32, "ic11": 32, "ic12": 64, "ic07": 128,
        "ic13": 256, "ic08": 256, "ic14": 512, "ic09": 512, "ic10": 1024,
    }  # fmt: skip
    assert set(entries) == set(expected)
    for kind, size in expected.items():
        assert make_icons.png_dimensions(entries[kind]) == (size, size), kind


def test_generator_writes_everything_and_the_check_notices_edits(make_icons: ModuleType, tmp_path: Path) -> None:
    master = tmp_path / "celeste.svg"
    master.write_bytes((ICON_DIR / "celeste.svg").read_bytes())
    outputs = make_icons.generate(master, tmp_path, renderer=fake_renderer)
    assert set(outputs) == {f"celeste-{size}.png" for size in make_icons.PNG_SIZES} | {"celeste.ico", "celeste.icns"}
    assert make_icons.stale_files(tmp_path) == []
    assert make_icons.main(["--check", "--out", str(tmp_path)]) == 0

    (tmp_path / "celeste-48.png").write_bytes(solid_png(47))
    master.write_bytes(master.read_bytes().replace(b"#3A9BEF", b"#FF0000"))
    problems = make_icons.stale_files(tmp_path)
    assert any(problem.startswith("celeste.svg") for problem in problems)
    assert any(problem.startswith("celeste-48.png") for problem in problems)
    assert make_icons.main(["--check", "--out", str(tmp_path)]) == 1


def test_containers_refuse_images_of_the_wrong_size(make_icons: ModuleType) -> None:
    with pytest.raises(ValueError, match="16px"):
        make_icons.build_ico({16: solid_png(17)})
    with pytest.raises(ValueError, match="at most 256"):
        make_icons.build_ico({512: solid_png(512)})
    with pytest.raises(ValueError, match="not a PNG"):
        make_icons.png_dimensions(b"GIF89a")
    with pytest.raises(ValueError, match="ICNS"):
        make_icons.read_icns(b"icns\x00\x00\x00\x09x")


@pytest.mark.gui
def test_qt_renders_the_master_with_transparent_corners(make_icons: ModuleType, qtbot: QtBot) -> None:
    from PySide6.QtGui import QImage

    png = make_icons.render_png((ICON_DIR / "celeste.svg").read_bytes(), 64)
    image = QImage.fromData(png)
    assert (image.width(), image.height()) == (64, 64)
    assert image.pixelColor(0, 0).alpha() == 0, "the rounded square leaves the corners transparent"
    assert image.pixelColor(32, 4).alpha() == 255


@pytest.mark.gui
def test_the_mark_still_reads_at_16_px(qtbot: QtBot) -> None:
    """White star and wave on blue: enough light pixels survive at the smallest size."""
    from PySide6.QtGui import QImage

    image = QImage(str(ICON_DIR / "celeste-16.png"))
    light = sum(
        1
        for x in range(16)
        for y in range(16)
        if image.pixelColor(x, y).alpha() > 200 and image.pixelColor(x, y).lightnessF() > 0.75
    )
    blue = image.pixelColor(2, 8)
    assert light >= 12, f"only {light} light pixels: the star and wave are lost at 16 px"
    assert blue.blue() > blue.red() + 60, "the background is CelesteOS blue"
