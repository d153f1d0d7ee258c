"""Supabase Storage object keys for OneDrive files: ``{yacht_id}/{system_path}/{file name}``.

Supabase accepts only ``A-Z a-z 0-9`` and ``_/!.*'() &$=@;:+,?-`` in a key. Each folder and
file name (a *segment*) is mapped on its own, deterministically and readably:

1. A segment made only of letters, digits and ``_!.'() &$=@;+,-``, not ending in ``.`` or a
   space and at most :data:`MAX_SEGMENT_LENGTH` long, is kept as it is
   (``Passage Plan 2024.pdf``). ``* : ? /`` are never kept: OneDrive forbids them in names
   anyway, and ``*`` marks the tag below.
2. Any other segment is rewritten readably: accents dropped (NFKD), letters such as ``ß``,
   ``æ``, ``ø``, Greek and Cyrillic transliterated, symbols replaced by a look-alike
   (``#`` -> ``No.``, ``%`` -> ``pct``, ``[]{}<>`` -> ``()``), invisible marks dropped,
   and each run of anything left (emoji, CJK, control characters) replaced by one ``_``.
   Then a tag `` (*xxxxxxxx)`` -- the first 8 hex digits of the SHA-256 of the *original*
   segment -- goes before the extension: ``Café #2.pdf`` -> ``Cafe No.2 (*1f77be15).pdf``.
   The rewriting can merge names (``é`` and ``e``); the tag keeps them apart, and because only
   tagged segments contain ``*``, a rewritten name never equals a kept one.
3. A key longer than :data:`MAX_KEY_LENGTH` keeps its leading folders, replaces the rest by
   one ``(*<16 hex digits>)`` segment (SHA-256 of all the folder names) and keeps the file.

So keys never hold ``//``, never start or end with ``/``, and have no empty, ``.`` or ``..``
segments. The mapping depends on Python's Unicode tables for step 2: keep the key that was
used for an upload rather than recomputing it after a Python upgrade.
docs/storage-keys.md explains it with examples for support engineers.
"""

from __future__ import annotations

import hashlib
import json
import re
import string
import unicodedata
from collections.abc import Mapping, Sequence

from celeste_desktop.domain.errors import ConfigError

# Supabase's rule, with \Z rather than $ so that a trailing newline does not slip through.
KEY_PATTERN = re.compile(r"^[A-Za-z0-9_/!.*'() &$=@;:+,?-]*\Z")
# Segments become file names on Supabase's file backend (255 bytes on most file systems).
MAX_SEGMENT_LENGTH = 200
# S3 caps a key at 1024 bytes and Supabase prefixes ours with tenant, bucket and version.
MAX_KEY_LENGTH = 900
S3_MAX_KEY_LENGTH = 1024

_KEPT = frozenset(string.ascii_letters + string.digits + "_!.'() &$=@;+,-")
_UNMAPPED = "\x00"  # stands for a character with no readable form until runs are collapsed
_YACHT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_MAX_EXTENSION = 10

_LOOKALIKES: Mapping[str, str] = {
    "#": "No.", "%": "pct", "[": "(", "]": ")", "{": "(", "}": ")", "<": "(", ">": ")",
    "~": "-", "^": "-", "|": "-", "\\": "-", "/": "-", ":": "-", '"': "'", "`": "'",
    "*": "_", "?": "_", "\t": " ",
    "ß": "ss", "ẞ": "SS", "æ": "ae", "Æ": "AE", "ø": "o", "Ø": "O", "œ": "oe", "Œ": "OE",
    "đ": "d", "Đ": "D", "ð": "d", "Ð": "D", "þ": "th", "Þ": "Th", "ł": "l", "Ł": "L",
    "ı": "i", "ħ": "h", "Ħ": "H", "ŧ": "t", "Ŧ": "T", "ŋ": "ng", "Ŋ": "Ng", "ĸ": "k",
    "ƒ": "f", "‘": "'", "’": "'", "‚": "'", "‛": "'", "′": "'", "“": "'", "”": "'",
    "„": "'", "″": "'", "«": "'", "»": "'", "‹": "'", "›": "'", "‐": "-", "‑": "-",
    "‒": "-", "–": "-", "—": "-", "―": "-", "−": "-", "•": "-", "·": "-", "⁄": "-",
    "×": "x", "°": "deg", "±": "+-", "€": "EUR", "£": "GBP", "¥": "JPY", "©": "(c)",
    "®": "(R)", "§": "S", "¶": "P",
}  # fmt: skip
# Lower-case letters; the capitals follow. Hard and soft signs have no sound, so no letters.
_CYRILLIC = dict(zip(
    "абвгдежзийклмнопрстуфхцчшщъыьэюяёєіїґў",
    ("a", "b", "v", "g", "d", "e", "zh", "z", "i", "y", "k", "l", "m", "n", "o", "p", "r",
     "s", "t", "u", "f", "kh", "ts", "ch", "sh", "shch", "", "y", "", "e", "yu", "ya", "yo",
     "ye", "i", "yi", "g", "u"),
    strict=True,
))  # fmt: skip
_GREEK = dict(zip(
    "αβγδεζηθικλμνξοπρσςτυφχψω",
    ("a", "v", "g", "d", "e", "z", "i", "th", "i", "k", "l", "m", "n", "x", "o", "p", "r",
     "s", "s", "t", "y", "f", "ch", "ps", "o"),
    strict=True,
))  # fmt: skip


def _transliterations() -> dict[str, str]:
    table = dict(_LOOKALIKES)
    for lower, latin in (*_CYRILLIC.items(), *_GREEK.items()):
        table[lower] = latin
        table.setdefault(lower.upper(), latin.capitalize())  # "σ" and "ς" share "Σ"
    return table


_TRANSLITERATIONS: Mapping[str, str] = _transliterations()


def encode_segment(segment: str) -> str:
    """One folder or file name as a key segment (see the module docstring)."""
    if _is_kept(segment):
        return segment
    stem, extension = _split_extension(segment)
    tag = f" (*{_digest(segment, 8)})"
    readable = _readable(stem)[: MAX_SEGMENT_LENGTH - len(tag) - len(extension)]
    return f"{readable.rstrip('. ') or '_'}{tag}{extension}"


def storage_key(yacht_id: str, folder_parts: Sequence[str], filename: str) -> str:
    """The object key of ``filename`` in ``folder_parts`` (folder names from the drive or
    library root; empty for a file at the root)."""
    if isinstance(folder_parts, str):
        raise TypeError("folder_parts must be a sequence of folder names, not one string")
    if not _YACHT_ID.fullmatch(yacht_id):
        raise ConfigError(
            "yacht_id", "must be the yacht's id as issued by CelesteOS (letters, digits, - or _)"
        )
    folders = [encode_segment(part) for part in folder_parts]
    name = encode_segment(filename)
    key = "/".join((yacht_id, *folders, name))
    if len(key) <= MAX_KEY_LENGTH:
        return key
    # Deterministic shortening: as many leading folders as fit, then one segment standing for
    # the whole folder path. No ordinary segment starts with "(*", so it cannot be mistaken.
    marker = f"(*{_digest(json.dumps(list(folder_parts)), 16)})"
    budget = MAX_KEY_LENGTH - len(yacht_id) - len(marker) - len(name) - 2
    kept: list[str] = []
    for folder in folders:
        if len(folder) + 1 > budget:
            break
        kept.append(folder)
        budget -= len(folder) + 1
    return "/".join((yacht_id, *kept, marker, name))


def is_valid_key(key: str) -> bool:
    """Whether ``key`` passes Supabase's character rule and has the shape this app relies on:
    not empty, no leading or trailing ``/``, no empty, ``.`` or ``..`` segment, at most
    :data:`S3_MAX_KEY_LENGTH` characters."""
    return (
        bool(key)
        and len(key) <= S3_MAX_KEY_LENGTH
        and KEY_PATTERN.match(key) is not None
        and all(segment not in ("", ".", "..") for segment in key.split("/"))
    )


def _is_kept(segment: str) -> bool:
    return (
        0 < len(segment) <= MAX_SEGMENT_LENGTH
        and not segment.endswith((".", " "))
        and all(char in _KEPT for char in segment)
    )


def _split_extension(segment: str) -> tuple[str, str]:
    # Only a short ASCII letters-and-digits extension is kept apart, so ".pdf" survives and
    # the tag lands before it; "v1.2 #3" has no extension worth keeping.
    dot = segment.rfind(".")
    extension = segment[dot + 1 :]
    if dot > 0 and 0 < len(extension) <= _MAX_EXTENSION and _is_ascii_alnum(extension):
        return segment[:dot], segment[dot:]
    return segment, ""


def _is_ascii_alnum(text: str) -> bool:
    return text.isascii() and text.isalnum()


def _readable(text: str) -> str:
    readable = "".join(_readable_char(char) for char in text)
    return re.sub(f"{_UNMAPPED}+", "_", readable)


def _readable_char(char: str) -> str:
    if char in _KEPT:
        return char
    if char in _TRANSLITERATIONS:
        return _TRANSLITERATIONS[char]
    pieces: list[str] = []
    for piece in unicodedata.normalize("NFKD", char):
        category = unicodedata.category(piece)
        if category.startswith("M") or category == "Cf":
            continue  # accents and invisible marks (zero-width space, direction marks)
        if piece in _KEPT:
            pieces.append(piece)
        else:
            pieces.append(_TRANSLITERATIONS.get(piece, _UNMAPPED))
    return "".join(pieces)


def _digest(text: str, length: int) -> str:
    # surrogatepass: JSON from Graph may carry lone surrogates; they must hash, not raise.
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:length]
