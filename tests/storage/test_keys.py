"""Storage keys: always accepted by Supabase, readable, stable and never colliding."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from celeste_desktop.domain.errors import ConfigError
from celeste_desktop.storage.keys import (
    KEY_PATTERN,
    MAX_KEY_LENGTH,
    MAX_SEGMENT_LENGTH,
    encode_segment,
    is_valid_key,
    storage_key,
)

YACHT = "3f2b8c1e-0000-4000-8000-000000000001"
# Supabase's rule, spelled out independently of the module's regex.
SUPABASE_CHARS = frozenset(string.ascii_letters + string.digits + "_/!.*'() &$=@;:+,?-")
KEPT_CHARS = string.ascii_letters + string.digits + "_!.'() &$=@;+,-"

# Any text without lone surrogates: emoji, RTL, CJK, combining marks, control characters...
any_text = st.text(st.characters(codec="utf-8"), max_size=60)
# ...weighted towards what breaks naive mappings: look-alikes, escapes, dots and spaces.
tricky_text = st.lists(
    st.sampled_from(
        [
            *"eéèEÉ_ -.()*#%[]{}~^|\\\"<>/:?ßsæøØ’'–\u0301\u200b\u202e\t\n\x00😀Жשع",
            *("No.", "pct", "ss", "ae", " (*", "0", "a"),
        ]
    ),
    max_size=12,
).map("".join)
names = st.one_of(any_text, tricky_text, st.text(st.sampled_from(KEPT_CHARS), max_size=30))
folder_lists = st.lists(names, max_size=4)


def assert_well_formed(key: str) -> None:
    assert set(key) <= SUPABASE_CHARS
    assert KEY_PATTERN.match(key)
    assert is_valid_key(key)
    assert "//" not in key
    assert not key.startswith("/") and not key.endswith("/")
    assert len(key) <= MAX_KEY_LENGTH
    for segment in key.split("/"):
        assert segment not in ("", ".", "..")
        assert not segment.endswith((".", " "))
        assert len(segment) <= MAX_SEGMENT_LENGTH


@settings(max_examples=500, deadline=None)
@given(folder_lists, names)
def test_every_key_passes_supabase_rule_and_is_stable(folders: list[str], filename: str) -> None:
    key = storage_key(YACHT, folders, filename)
    assert_well_formed(key)
    assert key.startswith(YACHT + "/")
    assert key == storage_key(YACHT, list(folders), filename)
    assert key.count("/") == len(folders) + 1  # short inputs are never shortened


@settings(max_examples=500, deadline=None)
@given(folder_lists, names, folder_lists, names)
def test_distinct_inputs_give_distinct_keys(
    folders_a: list[str], name_a: str, folders_b: list[str], name_b: str
) -> None:
    assume((folders_a, name_a) != (folders_b, name_b))
    assert storage_key(YACHT, folders_a, name_a) != storage_key(YACHT, folders_b, name_b)


@settings(max_examples=200, deadline=None)
@given(st.sets(st.one_of(tricky_text, any_text), min_size=2, max_size=300))
def test_many_names_in_one_folder_never_collide(filenames: set[str]) -> None:
    keys = {storage_key(YACHT, ["02_ENGINEERING"], name) for name in filenames}
    assert len(keys) == len(filenames)


def test_look_alike_names_get_distinct_readable_keys() -> None:
    variants = [
        "Café.pdf", "Cafe\u0301.pdf", "Cafe.pdf", "CAFÉ.pdf", "Café .pdf", "Cafe (*x).pdf",
        "Café#.pdf", "CaféNo..pdf", "Cafe_.pdf", "Cafe😀.pdf", "Cafe🚤.pdf", "Café.PDF",
    ]  # fmt: skip
    keys = [storage_key(YACHT, [], name) for name in variants]
    assert len(set(keys)) == len(variants)
    for key in keys:
        assert_well_formed(key)
        assert key.split("/")[-1].lower().startswith("cafe")


@settings(max_examples=300, deadline=None)
@given(st.text(st.sampled_from(KEPT_CHARS), min_size=1, max_size=MAX_SEGMENT_LENGTH))
def test_safe_ascii_names_are_kept_as_they_are(name: str) -> None:
    assume(not name.endswith((".", " ")))
    assert encode_segment(name) == name


def test_real_yacht_paths_stay_readable() -> None:
    key = storage_key(YACHT, ["01_BRIDGE", "Charts"], "Passage Plan 2024.pdf")
    assert key == f"{YACHT}/01_BRIDGE/Charts/Passage Plan 2024.pdf"
    assert storage_key(YACHT, [], "Crew List (2024) - A&B.xlsx") == (
        f"{YACHT}/Crew List (2024) - A&B.xlsx"
    )


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # Pinned: a change here re-uploads every such file under a new key.
        ("Café #2.pdf", "Cafe No.2 (*1f77be15).pdf"),
        ("Руководство по эксплуатации.pdf", "Rukovodstvo po ekspluatatsii (*11ec4c23).pdf"),
        ("Straße Ærø ØL.docx", "Strasse AEro OL (*358609b9).docx"),
        ("Fire Plan – Deck 3.pdf", "Fire Plan - Deck 3 (*7baed985).pdf"),
        ("50% [draft] {v2} <ok>.xlsx", "50pct (draft) (v2) (ok) (*ebadcd83).xlsx"),
        ("Tender 🚤.jpg", "Tender _ (*175a5d67).jpg"),
        ("Pump #2", "Pump No.2 (*bcc56fda)"),
        ("Notes.", "Notes (*ae0272f9)"),
        (".", "_ (*cdb4ee2a)"),
        ("..", "_ (*5ec1f7e7)"),
        ("", "_ (*e3b0c442)"),
        ("Engine\u200b Log.pdf", "Engine Log (*2412a95e).pdf"),
        ("1/2 inch.pdf", "1-2 inch (*1b06b4b3).pdf"),
    ],
)
def test_segment_mapping_is_pinned(name: str, expected: str) -> None:
    assert encode_segment(name) == expected


def test_examples_in_the_support_docs_are_true() -> None:
    doc = Path(__file__).parents[2] / "docs" / "storage-keys.md"
    rows = re.findall(r"^\s*\| `([^`]*)`[^|]*\| `([^`]*)` \|$", doc.read_text("utf-8"), re.M)
    assert len(rows) >= 10
    for original, key in rows:
        assert "/".join(encode_segment(part) for part in original.split("/")) == key


def test_greek_and_cyrillic_capitals_are_transliterated() -> None:
    assert encode_segment("ΣΚΑΦΟΣ").startswith("SKAFOS (*")
    assert encode_segment("Щит Ёлка").startswith("Shchit Yolka (*")


def test_lone_surrogates_do_not_crash() -> None:
    assert_well_formed(storage_key(YACHT, ["a\ud800"], "b\udfff.pdf"))


def test_root_file_has_no_empty_system_path() -> None:
    assert storage_key(YACHT, [], "Ship Plan.pdf") == f"{YACHT}/Ship Plan.pdf"
    assert storage_key(YACHT, (), "x.pdf") == f"{YACHT}/x.pdf"


def test_empty_and_dot_folders_become_real_segments() -> None:
    for folders in ([""], ["."], [".."], ["", ""], ["a", "", "b"]):
        assert_well_formed(storage_key(YACHT, folders, "x.pdf"))


def test_long_segments_are_cut_with_the_extension_kept() -> None:
    name = "Engine Room " * 40 + ".pdf"
    encoded = encode_segment(name)
    assert len(encoded) <= MAX_SEGMENT_LENGTH
    assert encoded.startswith("Engine Room Engine Room")
    assert encoded.endswith(").pdf")
    assert encode_segment("a" * 300) != encode_segment("a" * 301)


def test_long_paths_are_shortened_deterministically_and_keep_the_top_folder() -> None:
    folders = ["02_ENGINEERING", *(f"Level {i} " + "x" * 180 for i in range(8))]
    key = storage_key(YACHT, folders, "Manual.pdf")
    assert_well_formed(key)
    assert key.startswith(f"{YACHT}/02_ENGINEERING/Level 0 ")
    assert key.endswith("/Manual.pdf")
    assert key == storage_key(YACHT, folders, "Manual.pdf")
    assert "/(*" in key
    changed = [*folders[:-1], folders[-1] + "y"]
    assert storage_key(YACHT, changed, "Manual.pdf") != key


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(min_size=50, max_size=250), min_size=3, max_size=12), any_text)
def test_deep_long_paths_stay_within_limits(folders: list[str], filename: str) -> None:
    assert_well_formed(storage_key(YACHT, folders, filename))


@pytest.mark.parametrize("yacht_id", ["", "a/b", "yacht id", "ÿacht", "x" * 65])
def test_bad_yacht_id_is_a_config_error(yacht_id: str) -> None:
    with pytest.raises(ConfigError) as caught:
        storage_key(yacht_id, [], "x.pdf")
    assert caught.value.setting == "yacht_id"


def test_a_string_is_not_taken_for_a_folder_list() -> None:
    with pytest.raises(TypeError):
        storage_key(YACHT, "01_BRIDGE/Charts", "x.pdf")


@pytest.mark.parametrize(
    "key",
    ["", "/a", "a/", "a//b", "a/./b", "a/../b", "a/b\n", "a#b", "café", "a[1]", "x" * 1025],
)
def test_is_valid_key_rejects(key: str) -> None:
    assert not is_valid_key(key)


def test_is_valid_key_accepts_supabase_specials() -> None:
    assert is_valid_key("y/a b/!*'()&$=@;:+,?-_.pdf")
