"""The pipeline's ``doc_type`` and ``system_tag``, read from a file's folder path below the root.

Both tags come from the folders only (never from the drive or library name), walked from the
top, so ticking ``Yacht Docs/02_ENGINEERING`` or a drive whose root holds ``02_ENGINEERING``
gives the same tags: ``Yacht Docs`` matches nothing and the walk goes on.

- ``doc_type``: the first folder whose name, stripped of leading digits, ``_``, ``-``, ``.``
  and spaces and lower-cased (``04_MANUALS`` -> ``manuals``), is a key of the table decides.
  ``general`` is a key too, so a ``00_GENERAL`` folder stops the walk. Image extensions force
  ``photo`` and video extensions ``video``, wherever the file sits.
- ``system_tag``: the first folder holding a table word as a *whole word* decides. Folder
  names are cut into words at anything that is not a letter or digit, between letters and
  digits, and at camel-case humps (``02_ENGINEERING`` -> 02 engineering, ``HVAC-Units`` ->
  hvac units, ``MainEngines`` -> main engines, ``CCTVCameras`` -> cctv cameras); matching is
  case-insensitive. So ``Lavatory`` and ``Heavy Weather`` do not match ``av``. A table key of
  several words (``fire fighting``) matches those words in a row. Within one folder the word
  that comes first wins (the longest key when several start at the same word).

Defaults are the CelesteOS pipeline's tables; the ``metadata_rules`` setting may extend or
replace them (see :meth:`MetadataRules.from_overrides`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from types import MappingProxyType
from typing import Any

from celeste_desktop.domain.errors import ConfigError

SETTING = "metadata_rules"
GENERAL = "general"

DEFAULT_DOC_TYPES: Mapping[str, str] = MappingProxyType({
    "manual": "manual", "manuals": "manual",
    "engineering": "schematic", "systems": "schematic", "schematics": "schematic",
    "drawings": "drawing",
    "procedures": "sop", "safety": "sop",
    "maintenance": "maintenance_log",
    "logs": "log",
    "inspections": "inspection",
    "vendors": "vendor_doc",
    "warranties": "warranty",
    "certifications": "certification", "certs": "certification",
    "photos": "photo",
    "videos": "video",
    "bridge": "chart",
    "general": GENERAL,
})  # fmt: skip

DEFAULT_SYSTEM_TAGS: Mapping[str, str] = MappingProxyType({
    "electrical": "electrical",
    "hvac": "hvac",
    "plumbing": "plumbing",
    "engine": "propulsion", "engines": "propulsion", "thrusters": "propulsion",
    "propulsion": "propulsion",
    "generator": "power", "generators": "power",
    "navigation": "navigation",
    "communications": "communications", "comms": "communications",
    "fire": "safety", "safety": "safety",
    "galley": "galley", "kitchen": "galley",
    "sanitation": "sanitation",
    "water": "water",
    "fuel": "fuel",
    "hydraulic": "hydraulic", "hydraulics": "hydraulic",
    "deck": "deck", "anchoring": "deck",
    "hull": "hull",
    "interior": "interior",
    "av": "av", "audio": "av", "video": "av",
    "entertainment": "entertainment",
    "cctv": "security", "security": "security",
    "stabilizers": "stabilization", "stabilisers": "stabilization",
    "tender": "tender", "tenders": "tender",
    "bridge": "bridge",
    "steering": "steering",
    "laundry": "laundry",
})  # fmt: skip

DEFAULT_IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".heic", ".gif", ".bmp", ".webp"}
)
DEFAULT_VIDEO_EXTENSIONS = frozenset({".mp4", ".mov", ".avi", ".mkv"})

_OVERRIDE_KEYS = frozenset(
    {"doc_types", "system_tags", "image_extensions", "video_extensions", "replace"}
)
_TAG = re.compile(r"[a-z][a-z0-9_]{0,63}")
_EXTENSION = re.compile(r"\.[a-z0-9]{1,16}")
_ALNUM_RUN = re.compile(r"[^\W_]+")  # letters and digits of any script; "_" separates
_DOC_KEY_JUNK = "0123456789_-. "


@dataclass(frozen=True)
class Classification:
    doc_type: str
    system_tag: str


def extension_of(name: str) -> str:
    """The lower-cased extension with its dot (``.pdf``); ``""`` for ``.bashrc`` or ``notes.``."""
    dot = name.rfind(".")
    return name[dot:].lower() if 0 < dot < len(name) - 1 else ""


def folder_words(name: str) -> tuple[str, ...]:
    """The whole words of a folder name, lower-cased (``HVAC-Units`` -> ``("hvac", "units")``)."""
    words: list[str] = []
    for run in _ALNUM_RUN.findall(name):
        start = 0
        for i in range(1, len(run)):
            before, here = run[i - 1], run[i]
            after = run[i + 1] if i + 1 < len(run) else ""
            if (
                before.isdigit() != here.isdigit()
                or (before.islower() and here.isupper())
                or (before.isupper() and here.isupper() and after.islower())
            ):
                words.append(run[start:i].lower())
                start = i
        words.append(run[start:].lower())
    return tuple(words)


def _coarse_words(name: str) -> tuple[str, ...]:
    # Without the camel-case cut, so oddly cased words ("eNGINE") still match whole.
    return tuple(
        piece.lower()
        for run in _ALNUM_RUN.findall(name)
        for piece in re.findall(r"\d+|\D+", run)
    )


def doc_type_key(folder_name: str) -> str:
    """``04_MANUALS`` -> ``manuals``: the form looked up in the doc_type table."""
    return folder_name.lstrip(_DOC_KEY_JUNK).strip().lower()


def _phrase_key(words: str) -> str:
    return " ".join(folder_words(words))


def split_folder_path(folder_path: Sequence[str] | str) -> tuple[str, ...]:
    """Folder names from a ``/``- or ``\\``-separated path (OneDrive forbids both in names)."""
    if isinstance(folder_path, str):
        folder_path = re.split(r"[/\\]", folder_path)
    return tuple(part for part in folder_path if part)


@dataclass(frozen=True)
class MetadataRules:
    """The tables ``classify`` uses. Keys are normalised on construction; bad ones raise
    :class:`ConfigError` naming ``metadata_rules``."""

    doc_types: Mapping[str, str]
    system_tags: Mapping[str, str]
    image_extensions: frozenset[str]
    video_extensions: frozenset[str]
    _phrases: Mapping[tuple[str, ...], str] = field(init=False, repr=False, compare=False)
    _longest: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        doc_types = _normalised_table("doc_types", self.doc_types, doc_type_key)
        system_tags = _normalised_table("system_tags", self.system_tags, _phrase_key)
        phrases = {tuple(key.split(" ")): tag for key, tag in system_tags.items()}
        set_ = object.__setattr__  # frozen dataclass: normalise once, here
        set_(self, "doc_types", MappingProxyType(doc_types))
        set_(self, "system_tags", MappingProxyType(system_tags))
        set_(self, "image_extensions", _extensions("image_extensions", self.image_extensions))
        set_(self, "video_extensions", _extensions("video_extensions", self.video_extensions))
        set_(self, "_phrases", MappingProxyType(phrases))
        set_(self, "_longest", max((len(words) for words in phrases), default=0))

    @classmethod
    def default(cls) -> MetadataRules:
        return _default_rules()

    @classmethod
    def from_overrides(cls, overrides: Mapping[str, Any] | None) -> MetadataRules:
        """The defaults changed by the ``metadata_rules`` setting.

        Shape: ``{"doc_types": {word: tag}, "system_tags": {word(s): tag},
        "image_extensions": [".ext", ...], "video_extensions": [...], "replace": false}``,
        every key optional. Without ``replace`` the tables merge over the defaults (a ``null``
        tag removes a default entry) and extension lists add to the defaults; with
        ``"replace": true`` each table or list given replaces its default whole.
        """
        base = cls.default()
        if overrides is None:
            return base
        if not isinstance(overrides, Mapping):
            raise ConfigError(SETTING, f"must be a table with some of {sorted(_OVERRIDE_KEYS)}")
        unknown = sorted(str(key) for key in overrides if key not in _OVERRIDE_KEYS)
        if unknown:
            raise ConfigError(
                SETTING, f"unknown entries {unknown}; expected some of {sorted(_OVERRIDE_KEYS)}"
            )
        replace = overrides.get("replace", False)
        if not isinstance(replace, bool):
            raise ConfigError(SETTING, "replace must be true or false")
        return cls(
            doc_types=_merged_table(
                "doc_types", base.doc_types, overrides.get("doc_types"), replace, doc_type_key
            ),
            system_tags=_merged_table(
                "system_tags", base.system_tags, overrides.get("system_tags"), replace, _phrase_key
            ),
            image_extensions=_merged_extensions(
                "image_extensions", base.image_extensions, overrides.get("image_extensions"),
                replace,
            ),
            video_extensions=_merged_extensions(
                "video_extensions", base.video_extensions, overrides.get("video_extensions"),
                replace,
            ),
        )

    def doc_type(self, folders: Sequence[str], filename: str) -> str:
        extension = extension_of(filename)
        if extension in self.image_extensions:
            return "photo"
        if extension in self.video_extensions:
            return "video"
        for folder in folders:
            doc_type = self.doc_types.get(doc_type_key(folder))
            if doc_type is not None:
                return doc_type
        return GENERAL

    def system_tag(self, folders: Sequence[str]) -> str:
        for folder in folders:
            for words in (folder_words(folder), _coarse_words(folder)):
                tag = self._first_phrase(words)
                if tag is not None:
                    return tag
        return GENERAL

    def _first_phrase(self, words: Sequence[str]) -> str | None:
        for start in range(len(words)):
            for length in range(min(self._longest, len(words) - start), 0, -1):
                tag = self._phrases.get(tuple(words[start : start + length]))
                if tag is not None:
                    return tag
        return None


def classify(
    folder_path: Sequence[str] | str, filename: str, rules: MetadataRules | None = None
) -> Classification:
    """Tags for ``filename`` in ``folder_path`` (folder names below the drive or library root)."""
    rules = rules or MetadataRules.default()
    folders = split_folder_path(folder_path)
    return Classification(rules.doc_type(folders, filename), rules.system_tag(folders))


@cache
def _default_rules() -> MetadataRules:
    return MetadataRules(
        doc_types=DEFAULT_DOC_TYPES,
        system_tags=DEFAULT_SYSTEM_TAGS,
        image_extensions=DEFAULT_IMAGE_EXTENSIONS,
        video_extensions=DEFAULT_VIDEO_EXTENSIONS,
    )


def _table_error(name: str) -> ConfigError:
    example = '{"manuals": "manual"}'
    return ConfigError(SETTING, f"{name} must map folder words to tags, e.g. {example}")


def _normalised_table(
    name: str, table: object, normalise: Callable[[str], str]
) -> dict[str, str]:
    if not isinstance(table, Mapping):
        raise _table_error(name)
    result: dict[str, str] = {}
    for key, tag in table.items():
        if not isinstance(key, str) or not normalise(key):
            raise ConfigError(SETTING, f"{name}: {key!r} has no letters or digits to match")
        if not isinstance(tag, str) or not _TAG.fullmatch(tag):
            raise ConfigError(
                SETTING,
                f"{name}[{key!r}] must be a lower-case tag such as 'manual' "
                "(letters, digits, _), or null to remove it",
            )
        result[normalise(key)] = tag
    return result


def _merged_table(
    name: str,
    base: Mapping[str, str],
    given: object,
    replace: bool,
    normalise: Callable[[str], str],
) -> dict[str, str]:
    if given is None:
        return dict(base)
    if not isinstance(given, Mapping):
        raise _table_error(name)
    result = {} if replace else dict(base)
    for key, tag in given.items():
        if tag is None and isinstance(key, str):
            result.pop(normalise(key), None)
        else:
            result.update(_normalised_table(name, {key: tag}, normalise))
    return result


def _extensions(name: str, values: object) -> frozenset[str]:
    if isinstance(values, str | Mapping) or not isinstance(values, Iterable):
        raise ConfigError(SETTING, f'{name} must be a list such as [".jpg", ".png"]')
    result: set[str] = set()
    for value in values:
        ext = value.lower() if isinstance(value, str) else ""
        ext = ext if ext.startswith(".") else "." + ext
        if not _EXTENSION.fullmatch(ext):
            raise ConfigError(SETTING, f"{name}: {value!r} is not an extension such as '.jpg'")
        result.add(ext)
    return frozenset(result)


def _merged_extensions(
    name: str, base: frozenset[str], given: object, replace: bool
) -> frozenset[str]:
    if given is None:
        return base
    extensions = _extensions(name, given)
    return extensions if replace else base | extensions
