"""Keys and callers of the simulated Supabase: the gateway's ``apikey`` rule and the Bearer claims.

Supabase's gateway admits a request only with a **project key** (anon or service role) as
``apikey``; the services behind it then take the role and claims from ``Authorization: Bearer``
(the apikey when that header is absent). Row-level security in the sim is a small mirror of
the CelesteOS policies: a yacht-scoped key (``role: authenticated`` with a ``yacht_id`` claim)
sees and writes only its own yacht's rows and storage keys; ``service_role`` bypasses; ``anon``
can do nothing on the app's tables and bucket.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from celeste_desktop.sim.http import Request, Response
from celeste_desktop.sim.tokens import TokenAuthority, TokenError

PROJECT_ROLES = ("anon", "service_role")
# Real project keys are JWTs that live about ten years.
PROJECT_KEY_LIFETIME_S = 10 * 365 * 24 * 3600
YACHT_KEY_LIFETIME_S = 365 * 24 * 3600


@dataclass(frozen=True)
class Caller:
    """Who is asking, as row-level security sees it (from the Bearer JWT)."""

    role: str
    claims: dict[str, Any]

    @property
    def sub(self) -> str | None:
        value = self.claims.get("sub")
        return str(value) if value is not None else None

    @property
    def yacht_id(self) -> str | None:
        """The claim as a canonical lowercase uuid; None when absent or malformed.

        Mirrors ``celeste_fleet.current_yacht_id()``: a malformed claim makes every policy refuse.
        """
        if self.role != "authenticated":
            return None
        try:
            return str(uuid.UUID(str(self.claims.get("yacht_id"))))
        except ValueError:
            return None

    @property
    def bypasses_rls(self) -> bool:
        return self.role == "service_role"

    def may_touch_yacht(self, yacht_id: object) -> bool:
        """The RLS mirror for rows: service role always, a yacht key only for its own yacht."""
        if self.bypasses_rls:
            return True
        return self.yacht_id is not None and yacht_id is not None and str(yacht_id) == self.yacht_id

    def may_touch_key(self, object_name: str) -> bool:
        """The RLS mirror for storage.objects: a yacht key only when the first folder is its id."""
        if self.bypasses_rls:
            return True
        first, sep, _ = object_name.partition("/")
        return self.yacht_id is not None and bool(sep) and first == self.yacht_id


class KeyMint:
    """Mints the project's keys and yacht-scoped keys with one ``TokenAuthority``."""

    def __init__(self, tokens: TokenAuthority) -> None:
        self.tokens = tokens

    def anon_key(self) -> str:
        return self.tokens.mint({"role": "anon", "ref": "sim"}, lifetime_s=PROJECT_KEY_LIFETIME_S)

    def service_key(self) -> str:
        return self.tokens.mint({"role": "service_role", "ref": "sim"}, lifetime_s=PROJECT_KEY_LIFETIME_S)

    def yacht_key(self, yacht_id: str, *, sub: str | None = None, lifetime_s: int | None = YACHT_KEY_LIFETIME_S) -> str:
        claims = {
            "role": "authenticated",
            "aud": "authenticated",
            "yacht_id": str(uuid.UUID(yacht_id)),
            "sub": sub or str(uuid.uuid5(uuid.NAMESPACE_URL, f"yacht:{yacht_id}")),
        }
        return self.tokens.mint(claims, lifetime_s=lifetime_s)


class Refusal(Exception):
    """Raised by a handler to answer with ``response`` at once (auth, RLS, validation)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


class GatewayRefusal(Refusal):
    """The gateway (Kong) refused the request before any service saw it."""

    def __init__(self, message: str) -> None:
        super().__init__(Response.json({"message": message}, 401))


def check_apikey(tokens: TokenAuthority, request: Request) -> dict[str, Any]:
    """The gateway's rule: ``apikey`` must be the project's anon or service-role key."""
    apikey = request.header("apikey") or request.query.get("apikey")
    if not apikey:
        raise GatewayRefusal("No API key found in request")
    checked = request.state.get("apikey")
    if checked is not None and checked[0] == apikey:
        return dict(checked[1])  # the gateway checked it already; each service asks again
    try:
        claims = tokens.verify(apikey)
    except TokenError:
        raise GatewayRefusal("Invalid API key") from None
    if claims.get("role") not in PROJECT_ROLES or "yacht_id" in claims or "sub" in claims:
        raise GatewayRefusal("Invalid API key")
    request.state["apikey"] = (apikey, dict(claims))
    return claims


def bearer_token(request: Request) -> str | None:
    header = request.header("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return ""
    return token.strip()


def resolve_caller(tokens: TokenAuthority, request: Request, apikey_claims: dict[str, Any]) -> Caller:
    """The Bearer JWT's role and claims, or the apikey's when no Authorization is sent.

    Raises ``TokenError`` for a Bearer token the services refuse (bad signature, expired).
    """
    token = bearer_token(request)
    if token is None:
        return Caller(str(apikey_claims.get("role", "anon")), apikey_claims)
    if token.count(".") != 2:
        raise TokenError(401, "malformed", "jwt malformed")
    claims = tokens.verify(token)
    return Caller(str(claims.get("role", "anon")), claims)


def describe_token_error(exc: TokenError) -> str:
    """The short wording of the real services (node jsonwebtoken, PostgREST)."""
    text = exc.message.lower()
    if "expired" in text:
        return "jwt expired"
    if "malformed" in text:
        return "jwt malformed"
    return "invalid signature"
