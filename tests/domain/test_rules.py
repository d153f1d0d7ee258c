"""Skip rules, indexability and content types."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from celeste_desktop.domain.errors import ConfigError
from celeste_desktop.domain.rules import (
    GIB,
    MIB,
    SkipCode,
    SkipPatterns,
    content_type_for,
    format_size,
    is_indexable,
    skip_reason,
)

ENGINE_ROOM = ("02_ENGINEERING", "Main Engines")


def code(
    name: str,
    parts: Sequence[str] = ENGINE_ROOM,
    size: int | None = 1000,
    facets: Any = (),
    patterns: SkipPatterns | None = None,
) -> SkipCode | None:
    reason = skip_reason(parts, name, size, facets, patterns)
    return None if reason is None else reason.code


def test_plain_documents_are_copied() -> None:
    for name in ("Service Manual.pdf", "Logbook 2024.xlsx", "IMG_0001.JPG", "README", "a.b.c"):
        assert skip_reason(ENGINE_ROOM, name, 1000, {"file": {}}) is None


def test_onenote_and_other_packages_are_skipped_with_advice() -> None:
    onenote = {"package": {"type": "oneNote"}}
    reason = skip_reason(["06_PROCEDURES"], "Bridge Notebook", None, onenote)
    assert reason is not None
    assert reason.code is SkipCode.ONENOTE
    assert "export them to PDF in OneNote" in reason.message
    assert reason.title == "OneNote notebook"
    assert str(reason) == reason.message
    assert code("Notebook", facets={"package"}) is SkipCode.ONENOTE
    assert code("Notebook", facets={"package": {}}) is SkipCode.ONENOTE
    other = skip_reason([], "Bundle", None, {"package": {"type": "album"}})
    assert other is not None and other.code is SkipCode.PACKAGE and "album" in other.message


def test_malware_is_skipped_before_anything_else() -> None:
    reason = skip_reason([], "Invoice.pdf", 10, {"malware": {"description": "x"}, "package": {}})
    assert reason is not None and reason.code is SkipCode.MALWARE
    assert "IT administrator" in reason.message


@pytest.mark.parametrize("name", [".hidden.pdf", ".git", "~$Engine Log.docx", "~$x.xlsx"])
def test_hidden_and_office_lock_files(name: str) -> None:
    assert code(name) is SkipCode.HIDDEN


def test_hidden_folders_hide_their_contents() -> None:
    reason = skip_reason(["02_ENGINEERING", ".archive"], "Manual.pdf", 1)
    assert reason is not None and reason.code is SkipCode.HIDDEN
    assert ".archive" in reason.message


@pytest.mark.parametrize(
    "name", ["a.tmp", "b.part", "c.crdownload", "d.swp", "e.lock", "f.bak", "g.TMP", "Plan.PDF.Bak"]
)
def test_temporary_files(name: str) -> None:
    assert code(name) is SkipCode.TEMPORARY


@pytest.mark.parametrize(
    "name", ["Thumbs.db", "thumbs.db", "desktop.ini", "Desktop.INI", ".DS_Store"]
)
def test_system_files(name: str) -> None:
    assert code(name) is SkipCode.SYSTEM_FILE


@pytest.mark.parametrize(
    "folder",
    ["@eaDir", "#recycle", "$RECYCLE.BIN", "$Recycle.Bin", "__MACOSX", "System Volume Information"],
)
def test_system_folders_anywhere_in_the_path(folder: str) -> None:
    assert code("Manual.pdf", ["02_ENGINEERING", folder, "Sub"]) is SkipCode.SYSTEM_FOLDER
    assert code("Manual.pdf", [folder]) is SkipCode.SYSTEM_FOLDER
    assert code(folder, ["02_ENGINEERING"], None) is SkipCode.SYSTEM_FOLDER  # the folder itself


def test_size_limit_is_5_gib_and_says_so() -> None:
    assert code("Survey.mp4", size=5 * GIB) is None
    reason = skip_reason([], "Survey.mp4", 5 * GIB + 1)
    assert reason is not None and reason.code is SkipCode.TOO_LARGE
    assert "5 GB" in reason.message and "max_file_bytes" in reason.message
    assert code("Survey.mp4", size=None) is None
    assert code("Survey.mp4", size=10**15, patterns=SkipPatterns(max_file_bytes=None)) is None


def test_path_length_counts_below_the_root_plus_the_prefix() -> None:
    parts = ["a" * 100, "b" * 100, "c" * 100]
    name = "d" * 95 + ".pdf"  # 3 * 101 + 99 = 402 characters
    reason = skip_reason(parts, name, 1)
    assert reason is not None and reason.code is SkipCode.PATH_TOO_LONG
    assert "402" in reason.message
    assert code(name[5:], parts) is None  # 397
    prefixed = SkipPatterns(path_prefix_chars=len("/personal/jane_doe_yacht_com/Documents/"))
    assert code(name[5:], parts, patterns=prefixed) is SkipCode.PATH_TOO_LONG
    assert code(name, parts, patterns=SkipPatterns(max_path_chars=None)) is None


def test_overrides_add_to_or_replace_the_patterns() -> None:
    patterns = SkipPatterns.from_overrides(
        {"system_files": ["Index.DAT"], "temporary_extensions": ["old"], "max_file_bytes": 50 * MIB}
    )
    assert code("index.dat", patterns=patterns) is SkipCode.SYSTEM_FILE
    assert code("Thumbs.db", patterns=patterns) is SkipCode.SYSTEM_FILE
    assert code("x.OLD", patterns=patterns) is SkipCode.TEMPORARY
    assert code("x.tmp", patterns=patterns) is SkipCode.TEMPORARY
    assert code("x.pdf", size=51 * MIB, patterns=patterns) is SkipCode.TOO_LARGE

    replaced = SkipPatterns.from_overrides(
        {"replace": True, "hidden_prefixes": ["_"], "system_folders": []}
    )
    assert code("_draft.pdf", patterns=replaced) is SkipCode.HIDDEN
    assert code(".hidden.pdf", patterns=replaced) is None
    assert code("x.pdf", ["@eaDir"], patterns=replaced) is None
    assert code("x.tmp", patterns=replaced) is SkipCode.TEMPORARY  # not given: default
    assert SkipPatterns.from_overrides(None) == SkipPatterns()
    assert SkipPatterns.from_overrides({"path_prefix_chars": 55}).path_prefix_chars == 55


@pytest.mark.parametrize(
    "overrides",
    [
        [],
        {"hidden": ["."]},
        {"replace": 1},
        {"system_files": "Thumbs.db"},
        {"system_files": {"Thumbs.db": True}},
        {"system_files": [""]},
        {"system_folders": [3]},
        {"max_file_bytes": 0},
        {"max_file_bytes": "5GB"},
        {"max_file_bytes": True},
        {"max_path_chars": -1},
        {"path_prefix_chars": None},
        {"path_prefix_chars": -3},
    ],
)
def test_bad_overrides_name_the_setting(overrides: Any) -> None:
    with pytest.raises(ConfigError) as caught:
        SkipPatterns.from_overrides(overrides)
    assert caught.value.setting == "skip_patterns"


def test_every_reason_has_a_title_and_an_actionable_message() -> None:
    cases = [
        skip_reason([], "x", None, {"malware": {}}),
        skip_reason([], "x", None, {"package": {"type": "oneNote"}}),
        skip_reason([], "x", None, {"package": {"type": "other"}}),
        skip_reason([], ".x"),
        skip_reason([], "x.tmp"),
        skip_reason([], "Thumbs.db"),
        skip_reason(["@eaDir"], "x"),
        skip_reason([], "x", 10 * GIB),
        skip_reason([], "x" * 500),
    ]
    assert {reason.code for reason in cases if reason} == set(SkipCode)
    for reason in cases:
        assert reason is not None and reason.title and reason.message.endswith(".")


@settings(max_examples=300, deadline=None)
@given(
    st.text(st.characters(codec="utf-8"), max_size=40),
    st.sampled_from([".tmp", ".PART", ".Crdownload", ".swp", ".lock", ".bak"]),
)
def test_any_name_with_a_temporary_extension_is_never_copied(stem: str, extension: str) -> None:
    assert skip_reason([], "x" + stem.replace(".", "") + extension, 1) is not None


@pytest.mark.parametrize(
    ("name", "size", "indexable"),
    [
        ("Manual.pdf", 1000, True),
        ("Manual.PDF", 100 * MIB, True),
        ("Manual.pdf", 100 * MIB + 1, False),
        ("Photo.heic", 3 * MIB, True),
        ("Sheet.xlsx", None, True),
        ("Mail.eml", 10, True),
        ("Old.doc", 10, False),
        ("Clip.mp4", 10, False),
        ("Drawing.dwg", 10, False),
        ("README", 10, False),
    ],
)
def test_is_indexable(name: str, size: int | None, indexable: bool) -> None:
    assert is_indexable(name, size) is indexable


def test_is_indexable_takes_other_lists() -> None:
    assert is_indexable("x.dwg", 10, extensions={".dwg"})
    assert not is_indexable("x.pdf", 11, max_bytes=10)


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("Manual.pdf", "application/pdf"),
        ("Report.DOCX", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
        ("Log.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        ("IMG_1.JPG", "image/jpeg"),
        ("IMG_1.heic", "image/heic"),
        ("notes.txt", "text/plain"),
        ("data.csv", "text/csv"),
        ("clip.mov", "video/quicktime"),
        ("backup.zip", "application/zip"),
        ("README", "application/octet-stream"),
        ("engine.dat", "application/octet-stream"),
        (".bashrc", "application/octet-stream"),
    ],
)
def test_content_type_for(name: str, content_type: str) -> None:
    assert content_type_for(name) == content_type


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=30))
def test_unknown_types_are_never_text_plain(name: str) -> None:
    if not name.lower().endswith((".txt", ".log")):
        assert content_type_for(name) != "text/plain"


def test_format_size() -> None:
    assert format_size(5 * GIB) == "5 GB"
    assert format_size(1536 * 1024) == "1.5 MB"
    assert format_size(512) == "512 bytes"
    assert format_size(3 * 1024**4) == "3 TB"
