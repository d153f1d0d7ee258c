#!/usr/bin/env python3
"""Mint a yacht-scoped key: an HS256 JWT that Supabase accepts as role `authenticated`.

The fleet's row-level security policies (supabase/migrations) let such a key read and write
only its own yacht's rows and upload only under `documents/{yacht_id}/`. See docs/fleet-keys.md.

The project's JWT secret is read from $SUPABASE_JWT_SECRET, from --secret-file, or typed at a
prompt; never from the command line, where it would land in shell history. The key is printed
on stdout; its jti and expiry on stderr, for the fleet register (revocation needs the jti).

    SUPABASE_JWT_SECRET=... python scripts/mint_yacht_key.py \\
        --yacht-id 85fe1119-b04c-41ac-80f1-829d23322598 --expires-in 180d > yacht.key
"""

from __future__ import annotations

import argparse
import getpass
import os
import re
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt

ENV_VARIABLE = "SUPABASE_JWT_SECRET"
AUDIENCE = "authenticated"
KEY_KIND = "celeste_yacht_sync"
MAX_LIFETIME = timedelta(days=400)
_DURATION = re.compile(r"^\s*(\d+)\s*([dhm])\s*$")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def yacht_key_claims(
    yacht_id: uuid.UUID,
    expires_at: datetime,
    *,
    now: datetime | None = None,
    sub: uuid.UUID | None = None,
    jti: str | None = None,
) -> dict[str, Any]:
    """The claims of a yacht key. ``sub`` defaults to the yacht id (see docs/fleet-keys.md)."""
    issued = now or datetime.now(UTC)
    if expires_at.tzinfo is None:
        raise ValueError("expires_at must be timezone-aware")
    if expires_at <= issued:
        raise ValueError("the expiry must be in the future")
    if expires_at - issued > MAX_LIFETIME:
        raise ValueError(f"a yacht key may live at most {MAX_LIFETIME.days} days")
    return {
        "role": "authenticated",
        "aud": AUDIENCE,
        # Must be a uuid: auth.uid() casts it, and Storage records it as the object's owner.
        "sub": str(sub or yacht_id),
        # Lowercase canonical form: the policies compare it with the object-key prefix.
        "yacht_id": str(yacht_id),
        "key_kind": KEY_KIND,
        "iat": int(issued.timestamp()),
        "exp": int(expires_at.timestamp()),
        "jti": jti or str(uuid.uuid4()),
    }


def mint_yacht_key(secret: str, claims: dict[str, Any]) -> str:
    """Sign ``claims`` with the project's JWT secret (HS256, as Supabase's legacy secret)."""
    if len(secret) < 32:
        raise ValueError("that is not a Supabase JWT secret (too short)")
    return jwt.encode(claims, secret, algorithm="HS256")


def parse_expiry(expires_in: str | None, expires_at: str | None, now: datetime) -> datetime:
    """``180d``/``12h``/``30m`` from now, or an ISO date/time (UTC when no zone is given)."""
    if expires_in is not None:
        match = _DURATION.match(expires_in)
        if match is None:
            raise ValueError(f"--expires-in: expected e.g. 180d, 12h or 30m, not {expires_in!r}")
        return now + timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    if expires_at is None:
        raise ValueError("give --expires-in or --expires-at")
    moment = datetime.fromisoformat(expires_at)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _read_secret(secret_file: Path | None) -> str:
    if secret_file is not None:
        return secret_file.read_text(encoding="utf-8").strip()
    from_env = os.environ.get(ENV_VARIABLE, "").strip()
    if from_env:
        return from_env
    if sys.stdin.isatty():
        return getpass.getpass("Supabase JWT secret (not echoed): ").strip()
    raise ValueError(f"no JWT secret: set ${ENV_VARIABLE} or use --secret-file")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--yacht-id", required=True, type=uuid.UUID, help="the yacht's uuid")
    when = parser.add_mutually_exclusive_group(required=True)
    when.add_argument("--expires-in", help="lifetime from now: 180d, 12h, 30m")
    when.add_argument("--expires-at", help="ISO date/time, UTC unless a zone is given")
    parser.add_argument("--secret-file", type=Path, help=f"file holding the secret (else ${ENV_VARIABLE})")
    parser.add_argument("--sub", type=uuid.UUID, help="subject uuid (default: the yacht id)")
    args = parser.parse_args(argv)
    now = datetime.now(UTC)
    try:
        expires = parse_expiry(args.expires_in, args.expires_at, now)
        claims = yacht_key_claims(args.yacht_id, expires, now=now, sub=args.sub)
        token = mint_yacht_key(_read_secret(args.secret_file), claims)
    except (ValueError, OSError) as exc:
        print(f"mint_yacht_key: {exc}", file=sys.stderr)
        return 2
    print(token)
    print(
        f"yacht_id={claims['yacht_id']} jti={claims['jti']} "
        f"issued={now.isoformat(timespec='seconds')} expires={expires.isoformat(timespec='seconds')}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
