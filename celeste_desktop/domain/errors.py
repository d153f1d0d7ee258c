"""The error hierarchy: every failure a person may see carries a title and an actionable message.

    CelesteError                 base; ``title``, ``message`` (what is wrong, what to do), ``path``
    ├── ConfigError              a setting is missing or invalid; ``setting`` names it
    ├── VaultError               the encrypted vault cannot be read or written
    ├── AuthError                sign-in problems
    │   ├── SignInRequired       no account, or the refresh token died: sign in again
    │   ├── ConsentRequired      a tenant administrator must approve the app
    │   └── SignInCancelled      the user cancelled or the browser timed out
    ├── RemoteError              a remote service answered with an error or could not be reached
    │   ├── ServiceUnavailable   network down, DNS, TLS, 5xx after retries
    │   ├── AccessDenied         401/403 that a refresh cannot fix
    │   ├── NotFound             404
    │   ├── QuotaExceeded        507 / size limits
    │   └── MalformedResponse    a reply we cannot parse
    ├── IntegrityError           a transfer's bytes do not match what the source promised
    ├── SourceChanged            the source file changed while it was being copied
    └── BudgetExhausted          the data budget for the period is used up

Messages never contain tokens, keys or pre-authenticated URLs: they are shown to people and
written to logs and diagnostics.
"""

from __future__ import annotations


class CelesteError(Exception):
    """Base of every error the app raises on purpose."""

    default_title = "Something went wrong"

    def __init__(self, message: str, *, title: str | None = None, path: str | None = None) -> None:
        super().__init__(message)
        self.title = title or self.default_title
        self.message = message
        self.path = path

    def __str__(self) -> str:
        return f"{self.message} ({self.path})" if self.path else self.message


class ConfigError(CelesteError):
    default_title = "Setting needs attention"

    def __init__(self, setting: str, message: str, *, title: str | None = None) -> None:
        super().__init__(f"{setting}: {message}", title=title)
        self.setting = setting


class VaultError(CelesteError):
    default_title = "Saved sign-in could not be read"


class AuthError(CelesteError):
    default_title = "Microsoft sign-in problem"


class SignInRequired(AuthError):
    default_title = "Sign in again"


class ConsentRequired(AuthError):
    default_title = "Administrator approval needed"


class SignInCancelled(AuthError):
    default_title = "Sign-in cancelled"


class RemoteError(CelesteError):
    default_title = "The service answered with an error"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        service: str | None = None,
        title: str | None = None,
        path: str | None = None,
    ) -> None:
        super().__init__(message, title=title, path=path)
        self.status = status
        self.code = code
        self.service = service


class ServiceUnavailable(RemoteError):
    default_title = "Service unreachable"


class AccessDenied(RemoteError):
    default_title = "Access denied"


class NotFound(RemoteError):
    default_title = "Not found"


class QuotaExceeded(RemoteError):
    default_title = "Quota or size limit reached"


class MalformedResponse(RemoteError):
    default_title = "Unexpected reply from the service"


class IntegrityError(CelesteError):
    default_title = "File content did not verify"


class SourceChanged(CelesteError):
    """The file changed upstream during its own transfer: start again with the new version.

    Raised instead of mixing bytes of two versions in one copy; the engine restarts the file
    from the new listing. Not a failure of the file, so it should not count towards retries.
    """

    default_title = "File changed while copying"


class BudgetExhausted(CelesteError):
    default_title = "Data budget used up"
