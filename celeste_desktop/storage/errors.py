"""What a refusal from Supabase means for the person at the bridge PC, in words naming the setting
or the file to fix.

The retry policy raises `RemoteError`s with the status and code that count; `explain` turns the
ones with a known cause into errors the GUI can act on:

- the gateway refuses the ``apikey`` → `ConfigError` naming ``supabase_anon_key`` (or the URL);
- the yacht key is refused (bad signature, expired, wrong project) → ``supabase_key``;
- row-level security refuses a write → "this key belongs to another yacht" (``supabase_key``,
  with ``yacht_id`` in the text);
- the bucket does not exist → ``bucket``;
- a size limit → `FileTooLarge` (a permanent problem of one file, never retried by itself).

Errors that no setting can fix (outages, malformed replies) pass through unchanged.
"""

from __future__ import annotations

from celeste_desktop.domain.errors import CelesteError, ConfigError, NotFound, QuotaExceeded, RemoteError
from celeste_desktop.domain.rules import format_size

__all__ = ["DigestFailed", "FileNotAccepted", "FileTooLarge", "explain", "is_rls_refusal"]


class FileTooLarge(QuotaExceeded):
    """A file over the bucket's (or the service's) size limit: a permanent per-file problem.

    The engine records it against the file and does not retry until the file or the limit
    changes.
    """

    default_title = "File too large"

    def __init__(
        self,
        message: str,
        *,
        limit_bytes: int | None,
        size: int | None = None,
        path: str | None = None,
        service: str | None = None,
    ) -> None:
        super().__init__(message, status=413, code="too_large", service=service, path=path)
        self.limit_bytes = limit_bytes
        self.size = size


class FileNotAccepted(CelesteError):
    """A file the destination refuses by rule (a content type it does not take): permanent."""

    default_title = "File not accepted"


class DigestFailed(RemoteError):
    """The digest service answered ``status: error`` for a file."""

    default_title = "The ingest service refused the file"


def too_large(
    display_path: str,
    size: int | None,
    limit_bytes: int | None,
    *,
    limit_name: str = "the bucket limit",
    service: str,
) -> FileTooLarge:
    """“<file> is too large for the bucket limit (N MB)”, with what to do about it."""
    sized = f" ({format_size(size)})" if size is not None else ""
    limit = f" ({max(1, round(limit_bytes / (1024 * 1024)))} MB)" if limit_bytes is not None else ""
    message = (
        f"“{display_path}”{sized} is too large for {limit_name}{limit}. It stays out of the copy "
        "until the file shrinks or the limit is raised (the office sets it in Supabase: Storage → "
        "bucket settings)."
    )
    return FileTooLarge(message, limit_bytes=limit_bytes, size=size, path=display_path, service=service)


def _text(exc: RemoteError) -> str:
    return f"{exc.code or ''} {exc.message}".lower()


def is_rls_refusal(exc: RemoteError) -> bool:
    """A write that row-level security refused (42501 from PostgREST, 403 from Storage)."""
    text = _text(exc)
    if "permission denied" in text:
        return False  # a missing grant, not a policy
    return exc.status == 403 or "row-level security" in text or "42501" in text


def explain(exc: RemoteError, *, yacht_id: str, url: str, bucket: str, op: str = "request") -> CelesteError:
    """The error to show for ``exc``; ``op`` is ``upload``, ``rest``, ``bucket``, ``read``…"""
    text = _text(exc)
    status = exc.status
    if status == 401 and ("api key" in text or "apikey" in text):
        return ConfigError(
            "supabase_anon_key",
            f"the project at {url} refused the anon key (“Invalid API key”). Copy the anon (public) key "
            "of this project from the office, and check supabase_url names the right project.",
            title="Supabase refused the anon key",
        )
    if status == 401 or "invalidjwt" in text or "jwt" in text or "pgrst30" in text:
        reason = "it has expired" if "expired" in text else "its signature does not match this project"
        return ConfigError(
            "supabase_key",
            f"the project at {url} refused the yacht key ({reason}). Ask the office for a new yacht key, "
            "or check supabase_url names the project that issued it.",
            title="Supabase refused the yacht key",
        )
    if "permission denied" in text:
        return ConfigError(
            "supabase_key",
            "the key has no permission on the CelesteOS tables. The office must apply the CelesteOS "
            "migrations (supabase/migrations) to the project, and the key must be a yacht key.",
            title="Supabase refused access",
        )
    if is_rls_refusal(exc):
        return ConfigError(
            "supabase_key",
            f"Supabase refused to write for yacht {yacht_id}: this key belongs to another yacht or has "
            "been revoked. Check yacht_id, or import this yacht's own key from the office.",
            title="The key belongs to another yacht",
        )
    if status == 404 and ("bucket" in text or op in ("upload", "bucket")):
        return ConfigError(
            "bucket",
            f"bucket “{bucket}” does not exist in the project at {url} (or this key may not see it). "
            "Check the bucket setting; the office creates the bucket and applies the CelesteOS migrations.",
            title="Storage bucket not found",
        )
    if status == 404 and ("pgrst205" in text or "42p01" in text or "schema cache" in text):
        return NotFound(
            f"a CelesteOS table is missing in the project at {url} ({exc.message}). The office must apply "
            "the CelesteOS migrations (supabase/migrations).",
            status=404,
            code=exc.code,
            service=exc.service,
            title="Supabase tables missing",
        )
    if status == 404 and op == "rest":
        return ConfigError(
            "supabase_url",
            f"{url} does not answer like a Supabase project (no /rest/v1). Check supabase_url.",
            title="Not a Supabase project",
        )
    return exc
