"""scripts/mint_yacht_key.py: the keys it mints are the keys the policies accept."""

from __future__ import annotations

import importlib.util
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest

from .api import Conn, add_connection_with, upload
from .conftest import REPO


def _load_minter() -> Any:
    spec = importlib.util.spec_from_file_location("mint_yacht_key", REPO / "scripts" / "mint_yacht_key.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.postgres
def test_a_minted_key_decodes_to_claims_the_policies_accept(db: Conn) -> None:
    minter = _load_minter()
    secret = "s" * 40
    yacht = uuid.uuid4()
    expires = datetime.now(UTC) + timedelta(days=180)
    token = minter.mint_yacht_key(secret, minter.yacht_key_claims(yacht, expires))
    claims = jwt.decode(token, secret, algorithms=["HS256"], audience="authenticated")
    assert claims["role"] == "authenticated" and claims["yacht_id"] == str(yacht)
    assert claims["exp"] == int(expires.timestamp()) and claims["jti"]
    upload(db, yacht, "documents", f"{yacht}/minted.pdf", claims=claims)
    add_connection_with(db, yacht, claims)


def test_the_minter_refuses_bad_expiries_and_short_secrets() -> None:
    minter = _load_minter()
    now = datetime.now(UTC)
    yacht = uuid.uuid4()
    with pytest.raises(ValueError, match="future"):
        minter.yacht_key_claims(yacht, now - timedelta(seconds=1), now=now)
    with pytest.raises(ValueError, match="at most"):
        minter.yacht_key_claims(yacht, now + timedelta(days=401), now=now)
    with pytest.raises(ValueError, match="too short"):
        minter.mint_yacht_key("short", minter.yacht_key_claims(yacht, now + timedelta(days=1)))
    assert minter.parse_expiry("12h", None, now) == now + timedelta(hours=12)
    assert minter.parse_expiry(None, "2030-01-01", now) == datetime(2030, 1, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="expires-in"):
        minter.parse_expiry("soon", None, now)


def test_the_minter_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    minter = _load_minter()
    secret_file = tmp_path / "secret"
    secret_file.write_text("k" * 48 + "\n")
    yacht = uuid.uuid4()
    assert minter.main(["--yacht-id", str(yacht), "--expires-in", "30d", "--secret-file", str(secret_file)]) == 0
    out, err = capsys.readouterr()
    claims = jwt.decode(out.strip(), "k" * 48, algorithms=["HS256"], audience="authenticated")
    assert claims["yacht_id"] == str(yacht) and f"jti={claims['jti']}" in err
    assert "k" * 48 not in out + err
    assert minter.main(["--yacht-id", str(yacht), "--expires-in", "30d", "--secret-file", str(tmp_path / "none")]) == 2
