"""doc_type and system_tag from real yacht folder names, whole-word matching, overrides."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from celeste_desktop.domain.errors import ConfigError
from celeste_desktop.domain.metadata import (
    DEFAULT_SYSTEM_TAGS,
    Classification,
    MetadataRules,
    classify,
    doc_type_key,
    extension_of,
    folder_words,
)

TOP_FOLDERS = [
    "01_BRIDGE", "02_ENGINEERING", "03_SYSTEMS", "04_MANUALS", "05_DRAWINGS", "06_PROCEDURES",
    "07_SAFETY", "08_MAINTENANCE", "13_CERTIFICATIONS", "14_PHOTOS",
]  # fmt: skip
EQUIPMENT = [
    "Main Engines", "Generators", "Stabilisers", "HVAC", "Navigation", "Lavatory",
    "Heavy Weather", "Tender", "Galley", "Fire Detection", "Hydraulics", "CCTV", "Misc",
]  # fmt: skip


@pytest.mark.parametrize(
    ("folder", "doc_type", "system_tag"),
    [
        ("01_BRIDGE", "chart", "bridge"),
        ("02_ENGINEERING", "schematic", "general"),
        ("03_SYSTEMS", "schematic", "general"),
        ("04_MANUALS", "manual", "general"),
        ("05_DRAWINGS", "drawing", "general"),
        ("06_PROCEDURES", "sop", "general"),
        ("07_SAFETY", "sop", "safety"),
        ("08_MAINTENANCE", "maintenance_log", "general"),
        ("13_CERTIFICATIONS", "certification", "general"),
        ("14_PHOTOS", "photo", "general"),
        ("Manual", "manual", "general"),
        ("10 - Logs", "log", "general"),
        ("11.Inspections", "inspection", "general"),
        ("12 Vendors", "vendor_doc", "general"),
        ("Warranties", "warranty", "general"),
        ("Certs", "certification", "general"),
        ("Videos", "video", "general"),
        ("Schematics", "schematic", "general"),
    ],
)
def test_real_top_folders(folder: str, doc_type: str, system_tag: str) -> None:
    assert classify([folder], "Document.pdf") == Classification(doc_type, system_tag)


@pytest.mark.parametrize(
    ("equipment", "system_tag"),
    [
        ("Main Engines", "propulsion"),
        ("Generators", "power"),
        ("Stabilisers", "stabilization"),
        ("Stabilizers", "stabilization"),
        ("HVAC", "hvac"),
        ("HVAC-Units", "hvac"),
        ("Navigation", "navigation"),
        ("Lavatory", "general"),  # not "av"
        ("Heavy Weather", "general"),  # not "av"
        ("Travel Docs", "general"),  # not "av"
        ("AV Rack", "av"),
        ("Audio-Visual", "av"),
        ("MainEngines", "propulsion"),
        ("CCTVCameras", "security"),
        ("Bow Thrusters", "propulsion"),
        ("Fire Detection", "safety"),
        ("Fresh Water Makers", "water"),
        ("Comms", "communications"),
        ("Tenders", "tender"),
        ("Anchoring & Mooring", "deck"),
        ("Engineering Notes", "general"),  # "engine" only as a whole word
        ("Firewall", "general"),
    ],
)
def test_equipment_subfolders(equipment: str, system_tag: str) -> None:
    result = classify(["02_ENGINEERING", equipment], "Spec.pdf")
    assert result == Classification("schematic", system_tag)


def test_ticked_subfolder_and_drive_root_give_the_same_tags() -> None:
    for equipment in EQUIPMENT:
        below_root = classify(["02_ENGINEERING", equipment], "x.pdf")
        assert classify(["Yacht Docs", "02_ENGINEERING", equipment], "x.pdf") == below_root
        assert classify(f"Yacht Docs/02_ENGINEERING/{equipment}", "x.pdf") == below_root


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(TOP_FOLDERS + EQUIPMENT), max_size=4), st.sampled_from(
    ["Manual.pdf", "photo.JPG", "clip.MOV", "notes.txt", "README"]))  # fmt: skip
def test_an_unmatched_wrapper_folder_changes_nothing(folders: list[str], filename: str) -> None:
    expected = classify(folders, filename)
    assert classify(["Yacht Docs", *folders], filename) == expected
    assert classify(["Shared Documents", "Yacht Docs", *folders], filename) == expected


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(sorted(DEFAULT_SYSTEM_TAGS)),
    st.text("abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=6),
    st.text("abcdefghijklmnopqrstuvwxyz", max_size=6),
)
def test_table_words_inside_longer_words_never_match(word: str, before: str, after: str) -> None:
    folder = (before + word + after).capitalize()
    assume(folder.lower() not in DEFAULT_SYSTEM_TAGS)
    assert classify([folder], "x.pdf").system_tag == "general"


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(sorted(DEFAULT_SYSTEM_TAGS)),
    st.sampled_from(["", "01_", "Aft ", "Spare-"]),
    st.sampled_from(["", " Room", "_2024", " (old)"]),
    st.sampled_from([str.upper, str.lower, str.title]),
)
def test_table_words_match_whole_in_any_case(
    word: str, before: str, after: str, case: Any
) -> None:
    folder = before + case(word) + after
    assert classify([folder], "x.pdf").system_tag == DEFAULT_SYSTEM_TAGS[word]


def test_first_folder_decides_and_first_word_within_a_folder() -> None:
    assert classify(["07_SAFETY", "Generators"], "x.pdf").system_tag == "safety"
    assert classify(["Misc", "Generators", "Fire"], "x.pdf").system_tag == "power"
    assert classify(["Fuel and Water"], "x.pdf").system_tag == "fuel"
    assert classify(["04_MANUALS", "06_PROCEDURES"], "x.pdf").doc_type == "manual"
    assert classify(["Misc", "05_DRAWINGS"], "x.pdf").doc_type == "drawing"
    # "general" is in the doc_type table, so it stops the walk (the pipeline's rule).
    assert classify(["00_GENERAL", "04_MANUALS"], "x.pdf").doc_type == "general"


def test_media_extensions_force_the_doc_type() -> None:
    for name in ("a.jpg", "b.JPEG", "c.png", "d.tif", "e.TIFF", "f.heic", "g.gif", "h.bmp",
                 "i.webp"):  # fmt: skip
        assert classify(["04_MANUALS", "Main Engines"], name) == Classification(
            "photo", "propulsion"
        )
    for name in ("a.mp4", "b.MOV", "c.avi", "d.mkv"):
        assert classify(["04_MANUALS"], name).doc_type == "video"
    assert classify(["04_MANUALS"], ".jpg").doc_type == "manual"  # a hidden name, no extension


def test_root_files_and_unknown_folders_are_general() -> None:
    assert classify([], "Ship Particulars.pdf") == Classification("general", "general")
    assert classify("", "x.pdf") == Classification("general", "general")
    assert classify("/Random/Stuff/", "x.pdf") == Classification("general", "general")
    assert classify("Docs\\04_MANUALS", "x.pdf").doc_type == "manual"


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("02_ENGINEERING", ("02", "engineering")),
        ("Main Engines", ("main", "engines")),
        ("HVAC-Units", ("hvac", "units")),
        ("MainEngines", ("main", "engines")),
        ("CCTVCameras", ("cctv", "cameras")),
        ("Deck2Aft", ("deck", "2", "aft")),
        ("  ", ()),
        ("Gödel_Ölwechsel", ("gödel", "ölwechsel")),
    ],
)
def test_folder_words(name: str, words: tuple[str, ...]) -> None:
    assert folder_words(name) == words


def test_helpers() -> None:
    assert doc_type_key("04_MANUALS") == "manuals"
    assert doc_type_key("01 - .Bridge ") == "bridge"
    assert extension_of("Report.PDF") == ".pdf"
    assert extension_of(".bashrc") == ""
    assert extension_of("notes.") == ""
    assert extension_of("archive.tar.gz") == ".gz"


def test_overrides_merge_remove_and_add_multi_word_phrases() -> None:
    rules = MetadataRules.from_overrides({
        "doc_types": {"11_CREW": "crew_doc", "Logs": None},
        "system_tags": {"Fire Fighting": "firefighting", "Water": None, "Watermaker": "water"},
        "image_extensions": ["raw", ".DNG"],
    })  # fmt: skip
    assert classify(["11_CREW"], "x.pdf", rules).doc_type == "crew_doc"
    assert classify(["Logs"], "x.pdf", rules).doc_type == "general"
    assert classify(["04_MANUALS"], "x.pdf", rules).doc_type == "manual"  # defaults kept
    assert classify(["Fire Fighting Gear"], "x.pdf", rules).system_tag == "firefighting"
    assert classify(["Fire Alarm"], "x.pdf", rules).system_tag == "safety"
    assert classify(["Fresh Water"], "x.pdf", rules).system_tag == "general"
    assert classify(["Watermaker"], "x.pdf", rules).system_tag == "water"
    assert classify([], "IMG_1.dng", rules).doc_type == "photo"
    assert classify([], "IMG_1.jpg", rules).doc_type == "photo"


def test_overrides_can_replace_whole_tables() -> None:
    rules = MetadataRules.from_overrides({
        "replace": True, "system_tags": {"bilge": "plumbing"}, "video_extensions": [".mp4"],
    })  # fmt: skip
    assert classify(["Bilge Pumps"], "x.pdf", rules).system_tag == "plumbing"
    assert classify(["Generators"], "x.pdf", rules).system_tag == "general"
    assert classify(["04_MANUALS"], "x.mov", rules).doc_type == "manual"
    assert classify(["04_MANUALS"], "x.pdf", rules).doc_type == "manual"  # not given: default


def test_no_overrides_means_the_defaults() -> None:
    assert MetadataRules.from_overrides(None) == MetadataRules.default()
    assert MetadataRules.from_overrides({}) == MetadataRules.default()


@pytest.mark.parametrize(
    "overrides",
    [
        ["doc_types"],
        "manuals=manual",
        {"doc_type": {"x": "y"}},
        {"replace": "yes"},
        {"doc_types": [["manuals", "manual"]]},
        {"doc_types": {"manuals": "Manual Docs"}},
        {"doc_types": {"manuals": 3}},
        {"doc_types": {"---": "manual"}},
        {"system_tags": {"   ": "hvac"}},
        {"system_tags": {"fire": ""}},
        {"image_extensions": ".jpg"},
        {"image_extensions": [".j pg"]},
        {"video_extensions": [3]},
        {"video_extensions": {"mp4": True}},
    ],
)
def test_bad_overrides_name_the_setting(overrides: Any) -> None:
    with pytest.raises(ConfigError) as caught:
        MetadataRules.from_overrides(overrides)
    assert caught.value.setting == "metadata_rules"
    assert "metadata_rules" in str(caught.value)
