"""The "Test connection" check: what is wrong, naming the setting to fix."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from destination_fakes import Dest

from celeste_desktop.config.settings import Settings
from celeste_desktop.storage.check import check_destination

NOW = datetime(2026, 3, 1, tzinfo=UTC)
OTHER_YACHT = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"


def settings_for(dest: Dest, **changes: str) -> Settings:
    base = Settings(
        supabase_url=dest.target.url, supabase_anon_key=dest.target.anon_key, yacht_id=dest.target.yacht_id
    )
    return base.replace(**changes)


async def test_a_ready_destination_passes_every_check(dest: Dest) -> None:
    report = await check_destination(dest.client, dest.policy, settings_for(dest), dest.target.key, now=NOW)
    assert report.ok, report.summary()
    names = [item.name for item in report.items]
    assert names[:2] == ["yacht key", "bucket"] and "table onedrive_sync_jobs" in names
    assert "Supabase is ready" in report.summary()


async def test_a_wrong_anon_key_is_named(dest: Dest) -> None:
    head, payload, _ = dest.target.anon_key.split(".")
    settings = settings_for(dest, supabase_anon_key=f"{head}.{payload}.AAAA")
    report = await check_destination(dest.client, dest.policy, settings, dest.target.key, now=NOW)
    assert [p.setting for p in report.problems] == ["supabase_anon_key"]


async def test_a_refused_yacht_key_is_named(dest: Dest) -> None:
    head, payload, _ = dest.target.key.split(".")
    report = await check_destination(dest.client, dest.policy, settings_for(dest), f"{head}.{payload}.AAAA", now=NOW)
    assert [p.setting for p in report.problems] == ["supabase_key"]


async def test_an_expired_yacht_key_is_named_without_asking_the_server(dest: Dest) -> None:
    report = await check_destination(
        dest.client, dest.policy, settings_for(dest), dest.target.key, now=datetime(2099, 1, 1, tzinfo=UTC)
    )
    assert [p.setting for p in report.problems] == ["supabase_key"] and "expired" in report.summary()
    assert dest.sent == []


async def test_another_yachts_key_is_named(dest: Dest) -> None:
    other = dest.sim.supabase.mint_yacht_key(OTHER_YACHT)
    report = await check_destination(dest.client, dest.policy, settings_for(dest), other, now=NOW)
    [problem] = report.problems
    assert problem.setting == "supabase_key" and "belongs to another yacht" in problem.message


async def test_a_missing_bucket_is_named(dest: Dest) -> None:
    settings = settings_for(dest, bucket="docs")
    report = await check_destination(dest.client, dest.policy, settings, dest.target.key, now=NOW)
    [problem] = report.problems
    assert problem.setting == "bucket" and "“docs”" in problem.message


async def test_an_unreachable_url_is_named(dest: Dest) -> None:
    dest.restart(max_attempts=2)
    report = await check_destination(
        dest.client, dest.policy, settings_for(dest, supabase_url="https://127.0.0.1:9"), dest.target.key, now=NOW
    )
    [problem] = report.problems
    assert problem.setting == "supabase_url" and "could not be reached" in problem.message


async def test_a_missing_table_is_named(dest: Dest, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(dest.sim.supabase.rest.tables, "onedrive_sync_jobs")  # the sim's shared schema
    report = await check_destination(dest.client, dest.policy, settings_for(dest), dest.target.key, now=NOW)
    [problem] = report.problems
    assert problem.name == "table onedrive_sync_jobs" and "migrations" in problem.message


async def test_empty_settings_are_named_before_anything_is_sent(dest: Dest) -> None:
    report = await check_destination(dest.client, dest.policy, Settings(), "", now=NOW)
    [problem] = report.problems
    assert problem.setting == "yacht_id"
    assert dest.sent == []
