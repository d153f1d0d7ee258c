"""Refusals become errors naming the setting or the file to fix: wrong keys, a missing bucket,
a size limit, another yacht's key; and the connection is dropped after a refused upload."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from destination_fakes import Dest, MemoryCheckpoints, write_file

from celeste_desktop.domain.errors import ConfigError
from celeste_desktop.net.clock import FakeClock
from celeste_desktop.net.http import HttpOptions, make_async_client
from celeste_desktop.net.policy import RetryPolicy
from celeste_desktop.sim.supabase_objects import BucketConfig
from celeste_desktop.storage.errors import FileTooLarge
from celeste_desktop.storage.target import SupabaseTarget
from celeste_desktop.storage.uploader import StorageUploader

MB = 1024 * 1024
OTHER_YACHT = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"


def key_for(dest: Dest, name: str) -> str:
    return f"{dest.target.yacht_id}/{name}"


def tampered(token: str) -> str:
    head, payload, signature = token.split(".")
    return f"{head}.{payload}.{'A' * len(signature)}"


@pytest.mark.parametrize("size", [100 * 1024, 8 * MB], ids=["standard", "tus"])
async def test_a_wrong_anon_key_names_supabase_anon_key(dest: Dest, tmp_path: Path, size: int) -> None:
    uploader = dest.uploader(MemoryCheckpoints(), dest.with_target(anon_key=tampered(dest.target.anon_key)))
    with pytest.raises(ConfigError) as caught:
        await uploader.upload(write_file(tmp_path / "f", size), key_for(dest, "f.pdf"), upload_id="u")
    assert caught.value.setting == "supabase_anon_key"
    assert dest.target.anon_key not in str(caught.value)


@pytest.mark.parametrize("size", [100 * 1024, 8 * MB], ids=["standard", "tus"])
async def test_a_refused_yacht_key_names_supabase_key(dest: Dest, tmp_path: Path, size: int) -> None:
    uploader = dest.uploader(MemoryCheckpoints(), dest.with_target(key=tampered(dest.target.key)))
    with pytest.raises(ConfigError) as caught:
        await uploader.upload(write_file(tmp_path / "f", size), key_for(dest, "f.pdf"), upload_id="u")
    assert caught.value.setting == "supabase_key"
    assert "refused the yacht key" in caught.value.message


@pytest.mark.parametrize("size", [100 * 1024, 8 * MB], ids=["standard", "tus"])
async def test_a_missing_bucket_names_bucket(dest: Dest, tmp_path: Path, size: int) -> None:
    uploader = dest.uploader(MemoryCheckpoints(), dest.with_target(bucket="docs"))
    with pytest.raises(ConfigError) as caught:
        await uploader.upload(write_file(tmp_path / "f", size), key_for(dest, "f.pdf"), upload_id="u")
    assert caught.value.setting == "bucket" and "“docs” does not exist" in caught.value.message


@pytest.mark.parametrize("size", [3 * MB, 9 * MB], ids=["standard", "tus"])
async def test_a_file_over_the_bucket_limit_is_a_permanent_file_problem(
    dest: Dest, tmp_path: Path, size: int
) -> None:
    dest.sim.supabase.objects.buckets["documents"] = BucketConfig(file_size_limit=2 * MB)
    uploader = dest.uploader(MemoryCheckpoints())
    with pytest.raises(FileTooLarge) as caught:
        await uploader.upload(
            write_file(tmp_path / "f", size), key_for(dest, "Big.pdf"), upload_id="u", display_path="01_BRIDGE/Big.pdf"
        )
    error = caught.value
    assert "too large for the bucket limit (2 MB)" in error.message
    assert "01_BRIDGE/Big.pdf" in error.message and error.limit_bytes == 2 * MB and error.size == size
    # Known from the bucket's settings: not a byte of the file crossed the link.
    assert [s.method for s in dest.sent] == ["GET"]


async def test_a_file_over_the_projects_limit_is_a_permanent_file_problem(dest: Dest, tmp_path: Path) -> None:
    dest.sim.supabase.storage.global_file_size_limit = 7 * MB  # not visible to a yacht key
    uploader = dest.uploader(MemoryCheckpoints())
    with pytest.raises(FileTooLarge) as caught:
        await uploader.upload(write_file(tmp_path / "f", 9 * MB), key_for(dest, "Big.pdf"), upload_id="u")
    assert "too large for the project's upload size limit" in caught.value.message
    assert dest.sim.supabase.counters.tus_bytes == 0 and len(dest.of("POST")) == 1  # refused at creation


@pytest.mark.parametrize("size", [100 * 1024, 8 * MB], ids=["standard", "tus"])
async def test_another_yachts_key_is_refused_with_a_clear_message(dest: Dest, tmp_path: Path, size: int) -> None:
    other_key = dest.sim.supabase.mint_yacht_key(OTHER_YACHT)
    uploader = dest.uploader(MemoryCheckpoints(), dest.with_target(key=other_key))
    with pytest.raises(ConfigError) as caught:
        await uploader.upload(write_file(tmp_path / "f", size), key_for(dest, "f.pdf"), upload_id="u")
    assert caught.value.setting == "supabase_key"
    assert "this key belongs to another yacht" in caught.value.message
    assert "yacht_id" in caught.value.message
    assert dest.sim.supabase.list_objects() == []


def test_another_yachts_key_is_caught_before_anything_is_sent(dest: Dest) -> None:
    with pytest.raises(ConfigError) as caught:
        SupabaseTarget.create(
            url=dest.target.url,
            anon_key=dest.target.anon_key,
            key=dest.sim.supabase.mint_yacht_key(OTHER_YACHT),
            yacht_id=dest.target.yacht_id,
        )
    assert caught.value.setting == "supabase_key"
    assert f"belongs to another yacht ({OTHER_YACHT})" in caught.value.message


@pytest.mark.parametrize("setting", ["supabase_key", "supabase_anon_key"])
def test_the_service_role_key_is_refused_in_either_setting(dest: Dest, setting: str) -> None:
    values = {"anon_key": dest.target.anon_key, "key": dest.target.key}
    values["key" if setting == "supabase_key" else "anon_key"] = dest.sim.supabase.service_key
    with pytest.raises(ConfigError) as caught:
        SupabaseTarget.create(url=dest.target.url, yacht_id=dest.target.yacht_id, **values)
    assert caught.value.setting == setting and "service-role" in caught.value.message


def test_requests_carry_the_anon_key_as_apikey_and_the_yacht_key_as_bearer(dest: Dest) -> None:
    headers = dest.target.headers()
    assert headers == {"apikey": dest.target.anon_key, "Authorization": f"Bearer {dest.target.key}"}
    assert dest.target.key not in repr(dest.target) and dest.target.anon_key not in repr(dest.target)


def test_hosted_projects_send_tus_to_the_direct_storage_host(dest: Dest) -> None:
    hosted = SupabaseTarget.create(
        url="https://abcdefghijklmnopqrst.supabase.co",
        anon_key=dest.target.anon_key,
        key=dest.target.key,
        yacht_id=dest.target.yacht_id,
    )
    assert hosted.resumable_endpoint == "https://abcdefghijklmnopqrst.storage.supabase.co/storage/v1/upload/resumable"
    assert dest.target.resumable_endpoint == f"{dest.target.url}/storage/v1/upload/resumable"


class EarlyRefusalServer:
    """Answers an upload with a refusal before reading its body and keeps the connection open,
    as a server that forgets to close would; notes any request it cannot parse."""

    def __init__(self) -> None:
        self.connections = 0
        self.garbage: list[bytes] = []
        self.server: asyncio.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                line = head.split(b"\r\n", 1)[0]
                if not line.startswith((b"POST ", b"GET ", b"HEAD ")):
                    self.garbage.append(line[:40])
                    break
                if line.startswith(b"POST "):
                    body = b'{"statusCode":"403","error":"Unauthorized","message":"row-level security"}'
                else:
                    body = b'{"size": 1}'
                status = b"400 Bad Request" if line.startswith(b"POST ") else b"200 OK"
                writer.write(
                    b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\nContent-Length: "
                    + str(len(body)).encode() + b"\r\n\r\n" + body
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


async def test_the_connection_is_closed_after_an_error_reply_to_an_upload(dest: Dest, tmp_path: Path) -> None:
    refusing = EarlyRefusalServer()
    async with refusing as url, make_async_client(HttpOptions()) as client:
        target = SupabaseTarget(url=url, anon_key="anon", key=dest.target.key, yacht_id=dest.target.yacht_id)
        policy = RetryPolicy(clock=FakeClock(), max_attempts=2)
        uploader = StorageUploader(client, policy, target, MemoryCheckpoints())
        with pytest.raises(ConfigError):
            key = f"{target.yacht_id}/{uuid.uuid4()}.pdf"
            await uploader.upload(write_file(tmp_path / "f", 2000), key, upload_id="u")
        assert await uploader.object_size(f"{target.yacht_id}/x.pdf") == 1
    # The unread body never reached the next request: a fresh connection carried it.
    assert refusing.garbage == [] and refusing.connections == 2
