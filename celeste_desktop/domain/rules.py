"""Which OneDrive items are skipped (and why, in words a person can act on), which are sent for
text extraction, and the content type each file is uploaded with.

The skip rules are the ones the on-board NAS agent learned, plus the Graph items that have no
downloadable content (a ``package`` facet such as a OneNote notebook, a ``malware`` facet).
A skip is never silent: :func:`skip_reason` returns a :class:`SkipReason` that the engine
records and the GUI lists. The patterns can be changed through the ``skip_patterns`` setting.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from enum import StrEnum
from typing import Any

from celeste_desktop.domain.errors import ConfigError
from celeste_desktop.domain.metadata import DEFAULT_IMAGE_EXTENSIONS, extension_of

SETTING = "skip_patterns"

GIB = 1024**3
MIB = 1024**2
# Binary units, because Windows Explorer shows sizes in them: a file it calls "4.9 GB" is
# under the limit here too.
DEFAULT_MAX_FILE_BYTES = 5 * GIB
MAX_INDEXABLE_BYTES = 100 * MIB
# OneDrive's limit on the whole decoded server path ("/personal/<user>/Documents/...").
DEFAULT_MAX_PATH_CHARS = 400

INDEXABLE_EXTENSIONS = frozenset({
    ".pdf", ".docx", ".xlsx", ".pptx", ".csv", ".txt", ".md", ".json", ".xml", ".html", ".htm",
    ".rtf", ".odt", ".ods", ".eml",
}) | DEFAULT_IMAGE_EXTENSIONS  # fmt: skip

# An explicit table rather than the mimetypes module, whose answers come from the Windows
# registry or /etc/mime.types and so differ between bridge PCs.
CONTENT_TYPES: Mapping[str, str] = {
    ".pdf": "application/pdf",
    ".doc": "application/msword",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".xls": "application/vnd.ms-excel",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".ppt": "application/vnd.ms-powerpoint",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ".odt": "application/vnd.oasis.opendocument.text",
    ".ods": "application/vnd.oasis.opendocument.spreadsheet",
    ".odp": "application/vnd.oasis.opendocument.presentation",
    ".rtf": "application/rtf",
    ".txt": "text/plain", ".log": "text/plain",
    ".csv": "text/csv",
    ".md": "text/markdown",
    ".json": "application/json",
    ".xml": "application/xml",
    ".html": "text/html", ".htm": "text/html",
    ".eml": "message/rfc822",
    ".msg": "application/vnd.ms-outlook",
    ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".gif": "image/gif",
    ".bmp": "image/bmp",
    ".webp": "image/webp",
    ".tif": "image/tiff", ".tiff": "image/tiff",
    ".heic": "image/heic",
    ".svg": "image/svg+xml",
    ".mp4": "video/mp4",
    ".mov": "video/quicktime",
    ".avi": "video/x-msvideo",
    ".mkv": "video/x-matroska",
    ".mp3": "audio/mpeg",
    ".wav": "audio/wav",
    ".zip": "application/zip",
    ".7z": "application/x-7z-compressed",
    ".rar": "application/vnd.rar",
    ".tar": "application/x-tar",
    ".gz": "application/gzip", ".tgz": "application/gzip",
    ".dwg": "image/vnd.dwg",
    ".dxf": "image/vnd.dxf",
}  # fmt: skip
FALLBACK_CONTENT_TYPE = "application/octet-stream"


class SkipCode(StrEnum):
    ONENOTE = "onenote"
    PACKAGE = "package"
    MALWARE = "malware"
    HIDDEN = "hidden"
    TEMPORARY = "temporary"
    SYSTEM_FILE = "system_file"
    SYSTEM_FOLDER = "system_folder"
    TOO_LARGE = "too_large"
    PATH_TOO_LONG = "path_too_long"


_TITLES: Mapping[SkipCode, str] = {
    SkipCode.ONENOTE: "OneNote notebook",
    SkipCode.PACKAGE: "Not a plain file",
    SkipCode.MALWARE: "Blocked as malware",
    SkipCode.HIDDEN: "Hidden file",
    SkipCode.TEMPORARY: "Temporary file",
    SkipCode.SYSTEM_FILE: "System file",
    SkipCode.SYSTEM_FOLDER: "In a system folder",
    SkipCode.TOO_LARGE: "File too large",
    SkipCode.PATH_TOO_LONG: "Path too long",
}


@dataclass(frozen=True)
class SkipReason:
    """Why an item is not copied: a stable ``code`` for state and filters, a ``message`` for
    people (what it is, what to do)."""

    code: SkipCode
    message: str

    @property
    def title(self) -> str:
        return _TITLES[self.code]

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class SkipPatterns:
    """What :func:`skip_reason` skips. Names are compared case-insensitively.

    Path length is counted in characters on the decoded path below the drive root
    (``a/b/file.pdf``) plus ``path_prefix_chars``, and compared with ``max_path_chars``.
    OneDrive counts its 400-character limit on the whole server path; set
    ``path_prefix_chars`` to the length of the drive's own prefix (``/personal/<user>/
    Documents/``, about 55) to flag exactly what OneDrive would refuse. It defaults to 0 because
    the prefix is not known here: with the defaults only paths no OneDrive could hold are
    flagged. Storage keys are shortened deterministically, so length never fails the upload.
    ``None`` turns the size or path limit off.
    """

    hidden_prefixes: tuple[str, ...] = (".", "~$")
    temporary_extensions: frozenset[str] = frozenset(
        {".tmp", ".part", ".crdownload", ".swp", ".lock", ".bak"}
    )
    system_files: frozenset[str] = frozenset({"thumbs.db", "desktop.ini", ".ds_store"})
    system_folders: frozenset[str] = frozenset(
        {"@eadir", "#recycle", "$recycle.bin", "__macosx", "system volume information"}
    )
    max_file_bytes: int | None = DEFAULT_MAX_FILE_BYTES
    max_path_chars: int | None = DEFAULT_MAX_PATH_CHARS
    path_prefix_chars: int = 0

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen dataclass: normalise once, here
        set_(self, "hidden_prefixes", tuple(self.hidden_prefixes))
        set_(self, "temporary_extensions", _extensions(self.temporary_extensions))
        set_(self, "system_files", _lowered(self.system_files))
        set_(self, "system_folders", _lowered(self.system_folders))

    @classmethod
    def from_overrides(cls, overrides: Mapping[str, Any] | None) -> SkipPatterns:
        """The defaults changed by the ``skip_patterns`` setting.

        Lists (``hidden_prefixes``, ``temporary_extensions``, ``system_files``,
        ``system_folders``) add to the defaults, or replace them with ``"replace": true``;
        numbers (``max_file_bytes``, ``max_path_chars``, ``path_prefix_chars``) replace them.
        """
        patterns = cls()
        if overrides is None:
            return patterns
        if not isinstance(overrides, Mapping):
            raise ConfigError(SETTING, "must be a table of skip settings")
        unknown = sorted(str(key) for key in overrides if key not in _OVERRIDABLE)
        if unknown:
            raise ConfigError(
                SETTING, f"unknown entries {unknown}; expected some of {_OVERRIDABLE}"
            )
        wholesale = overrides.get("replace", False)
        if not isinstance(wholesale, bool):
            raise ConfigError(SETTING, "replace must be true or false")
        changes: dict[str, Any] = {}
        for name in ("hidden_prefixes", "temporary_extensions", "system_files", "system_folders"):
            if name in overrides:
                given = _strings(name, overrides[name])
                kept = () if wholesale else tuple(getattr(patterns, name))
                changes[name] = type(getattr(patterns, name))((*kept, *given))
        for name, smallest in (("max_file_bytes", 1), ("max_path_chars", 1)):
            if name in overrides:
                changes[name] = _number(name, overrides[name], smallest, allow_none=True)
        if "path_prefix_chars" in overrides:
            changes["path_prefix_chars"] = _number(
                "path_prefix_chars", overrides["path_prefix_chars"], 0, allow_none=False
            )
        return replace(patterns, **changes)


_OVERRIDABLE = [*(field.name for field in fields(SkipPatterns)), "replace"]


def skip_reason(
    path_parts: Sequence[str],
    name: str,
    size: int | None = None,
    facets: Collection[str] | Mapping[str, object] = (),
    patterns: SkipPatterns | None = None,
) -> SkipReason | None:
    """Why the item ``name`` in folders ``path_parts`` (below the drive root) is skipped, or
    ``None`` to copy it. ``facets`` are the Graph facet names of the item (or the item's JSON).
    Works for folders too: pass the folder's name and no size."""
    patterns = patterns or SkipPatterns()
    if "malware" in facets:
        return SkipReason(
            SkipCode.MALWARE,
            "Microsoft flagged this file as malware and blocks its download; "
            "ask your IT administrator to check it.",
        )
    if "package" in facets:
        package = facets.get("package") if isinstance(facets, Mapping) else None
        kind = (package.get("type") if isinstance(package, Mapping) else None) or "oneNote"
        if kind == "oneNote":
            return SkipReason(
                SkipCode.ONENOTE,
                "OneNote notebooks have no downloadable file; "
                "export them to PDF in OneNote to include them.",
            )
        return SkipReason(
            SkipCode.PACKAGE,
            f"This item is a “{kind}” package with no downloadable file; "
            "export its contents to ordinary files to include them.",
        )
    for part in (*path_parts, name):
        if part.lower() in patterns.system_folders:
            return SkipReason(
                SkipCode.SYSTEM_FOLDER,
                f"Inside “{part}”, a folder that a NAS, Windows or macOS keeps for itself; "
                "it holds no documents.",
            )
    if name.lower() in patterns.system_files:
        return SkipReason(
            SkipCode.SYSTEM_FILE,
            f"“{name}” is a file Windows or macOS keeps for itself, not a document.",
        )
    for part in (*path_parts, name):
        if part.startswith(patterns.hidden_prefixes):
            return SkipReason(
                SkipCode.HIDDEN,
                f"“{part}” is hidden or an Office lock file (its name starts with "
                f"{' or '.join(f'“{prefix}”' for prefix in patterns.hidden_prefixes)}); "
                "it is not a document.",
            )
    extension = extension_of(name)
    if extension in patterns.temporary_extensions:
        return SkipReason(
            SkipCode.TEMPORARY,
            f"A temporary or partial file ({extension}); "
            "it is copied once it is saved under its final name.",
        )
    limit = patterns.max_file_bytes
    if size is not None and limit is not None and size > limit:
        return SkipReason(
            SkipCode.TOO_LARGE,
            f"The file is {format_size(size)}, over the {format_size(limit)} limit; "
            "raise max_file_bytes in the skip settings to include it.",
        )
    length = len("/".join((*path_parts, name))) + patterns.path_prefix_chars
    if patterns.max_path_chars is not None and length > patterns.max_path_chars:
        return SkipReason(
            SkipCode.PATH_TOO_LONG,
            f"The path is {length} characters long, over the limit of "
            f"{patterns.max_path_chars}; shorten folder or file names in OneDrive.",
        )
    return None


def is_indexable(
    name: str,
    size: int | None,
    *,
    extensions: Collection[str] = INDEXABLE_EXTENSIONS,
    max_bytes: int = MAX_INDEXABLE_BYTES,
) -> bool:
    """Whether the pipeline extracts text (``pending_extraction``) or only stores the file
    (``storage_only``): indexable extensions up to 100 MiB."""
    return extension_of(name) in extensions and (size is None or size <= max_bytes)


def content_type_for(name: str) -> str:
    """The upload's Content-Type; ``application/octet-stream`` when unknown (never the
    ``text/plain`` that storage3 would pick)."""
    return CONTENT_TYPES.get(extension_of(name), FALLBACK_CONTENT_TYPE)


def format_size(size: int) -> str:
    """Bytes in Explorer's units: ``5 GB`` for 5 GiB, ``1.5 MB``, ``512 bytes``."""
    for unit, scale in (("TB", 1024**4), ("GB", GIB), ("MB", MIB), ("KB", 1024)):
        if size >= scale:
            return f"{size / scale:.1f}".removesuffix(".0") + f" {unit}"
    return f"{size} bytes"


def _lowered(values: Iterable[str]) -> frozenset[str]:
    return frozenset(value.lower() for value in values)


def _extensions(values: Iterable[str]) -> frozenset[str]:
    return frozenset(v.lower() if v.startswith(".") else "." + v.lower() for v in values)


def _strings(name: str, values: object) -> tuple[str, ...]:
    if isinstance(values, str | Mapping) or not isinstance(values, Iterable):
        raise ConfigError(SETTING, f"{name} must be a list of names")
    result = tuple(values)
    if not all(isinstance(value, str) and value for value in result):
        raise ConfigError(SETTING, f"{name} must hold only non-empty names")
    return result


def _number(name: str, value: object, smallest: int, *, allow_none: bool) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < smallest:
        none = " or null for no limit" if allow_none else ""
        raise ConfigError(SETTING, f"{name} must be a whole number of at least {smallest}{none}")
    return value
