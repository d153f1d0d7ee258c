"""``celeste-desktop --demo --self-test`` end to end as a subprocess, and its exit codes."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest

from celeste_desktop.gui.self_test import SelfTest, StepFailed

STEPS = (
    "first run", "connect", "tick folders", "sync with progress", "pause and resume", "problem shown",
    "second sync with nothing to do", "layout",
)  # fmt: skip


def test_self_test_passes_every_step_against_the_simulators() -> None:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    env.pop("CELESTE_SELF_TEST_SCREENSHOTS", None)
    result = subprocess.run(
        [sys.executable, "-m", "celeste_desktop", "--demo", "--self-test"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    lines = [line for line in result.stdout.splitlines() if line.startswith(("PASS", "FAIL"))]
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert [line.split(":")[0] for line in lines] == [f"PASS {step}" for step in STEPS]
    assert result.stdout.rstrip().endswith("self-test passed")


def test_self_test_needs_demo_mode() -> None:
    result = subprocess.run([sys.executable, "-m", "celeste_desktop", "--self-test"], capture_output=True,
                            text=True, timeout=60, env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})  # fmt: skip
    assert result.returncode == 2
    assert "--demo" in result.stderr


def test_a_failed_step_fails_the_run_and_skips_the_rest(capsys: pytest.CaptureFixture[str]) -> None:
    test = SelfTest.__new__(SelfTest)  # the steps are replaced: no window, no simulators

    async def passes() -> str:
        return "fine"

    async def fails() -> str:
        raise StepFailed("the simulator holds 0 objects, expected 41")

    async def crashes() -> str:
        raise RuntimeError("boom")

    for name in ("first_run", "tick", "sync_with_pause", "problems", "second_sync", "layout"):
        setattr(test, name, passes)
    test.connect = fails  # type: ignore[method-assign]
    assert asyncio.run(test.run()) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "PASS first run: fine"
    assert out[1] == "FAIL connect: the simulator holds 0 objects, expected 41"
    assert all(line.startswith("FAIL") and "not run" in line for line in out[2:])

    test.connect = crashes  # type: ignore[method-assign]
    assert asyncio.run(test.run()) == 1
    assert "FAIL connect: RuntimeError: boom" in capsys.readouterr().out
