"""``folders``, ``select`` and ``unselect`` against the simulated tenant."""

from __future__ import annotations

import io
import json
from pathlib import Path

from celeste_desktop.cli.main import run
from celeste_desktop.sim.stack import SimStack


def cli(home: Path, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(["--home", str(home), *argv], stdin=io.StringIO(), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_folders_lists_the_top_folders_with_counts(sim_home: Path, sim: SimStack) -> None:
    assert cli(sim_home, "login", "--device-code")[0] == 0
    code, out, err = cli(sim_home, "folders", "/")
    assert code == 0, err
    lines = {line[4:].split()[0]: line for line in out.splitlines() if line.startswith("[")}
    assert {"01_BRIDGE", "02_ENGINEERING", "04_MANUALS", "13_CERTIFICATIONS"} <= set(lines)
    tenant = sim.graph.tenant
    bridge = sim.graph.find("/01_BRIDGE")
    expected_count = len(bridge.children or {})
    assert f" {expected_count} items" in lines["01_BRIDGE"]
    expected_bytes = sum(item.size for item in tenant.walk(bridge.id) if item.kind == "file")
    assert expected_bytes > 0 and " 0 B" not in lines["01_BRIDGE"]


def test_select_and_unselect_edit_the_selection_the_window_shows(sim_home: Path, sim: SimStack) -> None:
    assert cli(sim_home, "login", "--device-code")[0] == 0
    assert cli(sim_home, "select", "01_BRIDGE", "/04_MANUALS")[0] == 0
    assert cli(sim_home, "select", "--urgent", "13_CERTIFICATIONS")[0] == 0
    code, out, _ = cli(sim_home, "unselect", "04_MANUALS/Galley")
    assert code == 0 and "excluded /04_MANUALS/Galley" in out
    assert cli(sim_home, "unselect", "01_BRIDGE")[0] == 0
    status = json.loads(cli(sim_home, "status", "--json")[1])
    chosen = {(entry["path"], entry["included"], entry["urgent"]) for entry in status["selection"]}
    assert chosen == {
        ("/04_MANUALS", True, False),
        ("/13_CERTIFICATIONS", True, True),
        ("/04_MANUALS/Galley", False, False),
    }
    code, _, err = cli(sim_home, "select", "NO_SUCH_FOLDER")
    assert code == 1 and "No folder NO_SUCH_FOLDER" in err
    code, out, _ = cli(sim_home, "folders", "/")
    assert "[x] 04_MANUALS" in out
