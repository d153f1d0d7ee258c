"""JSON Web Tokens minted and checked by the simulators (Entra access tokens, Supabase keys).

The simulated Entra ID signs access tokens that the simulated Graph checks; the simulated
Supabase checks project keys and yacht-scoped keys. HS256 with per-run secrets is enough: the
app never verifies these signatures itself (it treats tokens as opaque, as it must).
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt


class TokenError(Exception):
    """A token was refused; ``status`` and ``code`` are what the service would answer."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass
class TokenAuthority:
    """Mints and verifies HS256 JWTs for one issuer; supports early expiry and revocation."""

    issuer: str
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    clock_skew_s: float = 0.0  # tests move time forward to expire tokens early
    _revoked: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def now(self) -> float:
        return time.time() + self.clock_skew_s

    def mint(self, claims: dict[str, Any], lifetime_s: int | None = 3600) -> str:
        now = int(self.now())
        body: dict[str, Any] = {"iss": self.issuer, "iat": now, "nbf": now, "jti": uuid.uuid4().hex}
        if lifetime_s is not None:
            body["exp"] = now + lifetime_s
        body.update(claims)
        return jwt.encode(body, self.secret, algorithm="HS256")

    def verify(self, token: str, *, audience: str | None = None) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self.secret,
                algorithms=["HS256"],
                options={"verify_exp": False, "verify_aud": False, "verify_nbf": False, "verify_iat": False},
            )
        except jwt.PyJWTError as exc:
            raise TokenError(401, "InvalidAuthenticationToken", "Access token validation failure.") from exc
        if claims.get("iss") != self.issuer:
            raise TokenError(401, "InvalidAuthenticationToken", "Access token has an invalid issuer.")
        exp = claims.get("exp")
        if exp is not None and self.now() >= float(exp):
            raise TokenError(401, "InvalidAuthenticationToken", "Lifetime validation failed, the token is expired.")
        if audience is not None and claims.get("aud") != audience:
            raise TokenError(401, "InvalidAuthenticationToken", "Invalid audience.")
        with self._lock:
            if claims.get("jti") in self._revoked:
                raise TokenError(401, "InvalidAuthenticationToken", "The token has been revoked.")
        return claims

    def revoke(self, jti: str) -> None:
        with self._lock:
            self._revoked.add(jti)

    def expire_all_now(self, seconds: float = 3600 * 24) -> None:
        """Jump the authority's clock so every token issued so far is expired."""
        self.clock_skew_s += seconds
