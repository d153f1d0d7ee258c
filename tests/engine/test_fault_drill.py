"""The engine's fault drill: files through seeded faults and ``kill -9``s, then an exact audit.

The simulators run in a process of their own (so killing the sync does not kill them); the app
runs as a script runs it, one ``python -m celeste_desktop`` process per command. After the last
sync the simulators' own data on disk is audited: each file stored once with the SHA-256 of
what Graph serves for it, each registration once, no stray object or object version, and the
job's counters right in ``status --json`` and in the rows the office reads.

- ``test_fault_drill_ends_exact``: 500 files (three over 8 MiB, sent with TUS), seeded random
  connection resets mid-download, 429s from Graph, 503s from Storage and PostgREST, access
  tokens that MSAL must renew every half minute and, once, every token revoked mid-run; the sync
  is killed twice at seeded moments (the first while a TUS upload is half sent) and restarted.
- ``test_kill_at_every_step_resumes_exactly``: a small tenant, the sync killed once at each step
  between which a file's journey must survive a kill (``drill_worker.CRASH_POINTS``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from celeste_desktop.domain.models import document_id
from celeste_desktop.sim.supabase_objects import BucketConfig, ObjectStore
from celeste_desktop.sim.supabase_rest import RowStore
from celeste_desktop.sim.supabase_tables import TABLES

SEED = 20261125
BUCKET = "documents"
KIB = 1024
MIB = 1024 * KIB
# Rates: dozens of each fault over the drill, and none the retry policy's own attempts cannot
# absorb (a file that failed for good would wait minutes for its retry). Every 429/503 carries
# Retry-After, which pauses the whole service, so higher rates only make the drill slower.
# token_lifetime: MSAL renews a token with under 5 minutes left, so 330 s tokens are renewed
# every half minute of the run, through the refresh token, as real ones are hourly.
FAULTS = f"seed={SEED};graph:429=0.02/1;download:reset=0.03;storage:503=0.02/1;rest:503=0.01/1;token_lifetime=330"
# Generous: they only stop a hang; nothing is asserted about time.
COMMAND_TIMEOUT_S = 420.0
RETRYABLE = {429, 500, 502, 503, 504}
WORKER = Path(__file__).with_name("drill_worker.py")
posix_kill = pytest.mark.skipif(sys.platform == "win32", reason="kill -9 (SIGKILL) is POSIX; CI runs Linux")


@dataclass(frozen=True)
class SourceFile:
    name: str
    size: int


def drill_files(rng: random.Random, small: int, large: int) -> list[SourceFile]:
    """Small documents of several kinds (each generated valid for its type) and a few large ones.

    The large ones are over 8 MiB: sent with TUS in two 6 MB chunks, in the engine's lane for
    large files, which starts them at once beside the small ones (the small lane goes smallest
    first).
    """
    kinds = (".pdf", ".docx", ".xlsx", ".jpg", ".txt", ".bin")
    files = [SourceFile(f"doc-{n:03d}{rng.choice(kinds)}", rng.randint(1 * KIB, 64 * KIB)) for n in range(small)]
    files += [SourceFile(f"big-{n}.pdf", rng.randint(8 * MIB + 1, 9 * MIB)) for n in range(large)]
    rng.shuffle(files)
    return files


# -- the simulators' process ------------------------------------------------------------------


@dataclass
class SimProcess:
    process: subprocess.Popen[str]
    settings: dict[str, Any]
    http: httpx.Client

    @property
    def data_dir(self) -> Path:
        return Path(self.settings["data_dir"])

    def call(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """One request to a simulator, retried through the drill's own injected faults."""
        for attempt in range(30):
            try:
                response = self.http.request(method, url, **kwargs)
            except httpx.TransportError:
                time.sleep(0.05 * (attempt + 1))
                continue
            if response.status_code not in RETRYABLE:
                return response
            time.sleep(0.05 * (attempt + 1))
        raise AssertionError(f"{method} {url}: still failing after 30 attempts")

    def control(self, operation: str, **arguments: Any) -> Any:
        graph = str(self.settings["graph_url"]).removesuffix("/v1.0")
        response = self.call("POST", f"{graph}/_sim/graph/{operation}", json=arguments)
        assert response.status_code == 200, response.text
        return response.json()

    def add_tree(self, folder: str, files: list[SourceFile]) -> None:
        self.control("add_folder", parent="/", name=folder)
        for source in files:
            self.control("add_file", parent=f"/{folder}", name=source.name, size=source.size)

    def entra_state(self) -> dict[str, Any]:
        response = self.call("GET", f"{self.settings['authority']}/_sim/state")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def expire_tokens(self) -> None:
        response = self.call("POST", f"{self.settings['authority']}/_sim/expire-tokens")
        assert response.status_code == 204, response.text


@contextlib.contextmanager
def sim_process(data_dir: Path, log: Path, faults: str) -> Iterator[SimProcess]:
    command = [sys.executable, "-m", "celeste_desktop.sim", "--auto-consent", "--data-dir", str(data_dir)]
    if faults:
        command += ["--faults", faults]
    with log.open("w") as errors:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line, f"the simulators did not start: {log.read_text()}"
        settings = json.loads(line)
        trust = ssl.create_default_context(cafile=settings["ca_bundle"])
        with httpx.Client(verify=trust, trust_env=False, timeout=30.0) as http:
            yield SimProcess(process, settings, http)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout is not None:
            process.stdout.close()


# -- the app, one process per command ---------------------------------------------------------


@dataclass
class App:
    home: Path
    logs: Path
    runs: int = 0

    def command(self, *argv: str) -> list[str]:
        return [sys.executable, "-m", "celeste_desktop", "--home", str(self.home), *argv]

    def run(self, *argv: str, stdin: str = "") -> tuple[int, str]:
        done = subprocess.run(
            self.command(*argv), input=stdin, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, check=False
        )
        return done.returncode, done.stdout + done.stderr

    def set_up(self, sim: SimProcess, folder: str) -> None:
        """What the IT officer does once: settings, the provisioning file, sign-in, the folder."""
        for argv, stdin in (
            (("config", "set", "vault_backend", "file"), ""),
            (("config", "import", "-"), json.dumps(sim.settings) + "\n"),
            (("login", "--device-code"), ""),
            (("select", f"/{folder}"), ""),
        ):
            code, output = self.run(*argv, stdin=stdin)
            assert code == 0, f"{argv}: {output}"

    def start_sync(self, crash_after: str | None = None) -> subprocess.Popen[bytes]:
        self.runs += 1
        if crash_after is None:
            command = self.command("sync")
        else:
            command = [sys.executable, str(WORKER), "--crash-after", crash_after, "--", *self.command("sync")[3:]]
        with self.log(self.runs).open("wb") as out:
            return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)

    def log(self, run: int) -> Path:
        return self.logs / f"sync-{run}.log"

    def output(self) -> str:
        return self.log(self.runs).read_text(errors="replace")

    def status(self) -> dict[str, Any]:
        code, output = self.run("status", "--json")
        assert code == 0, output
        return dict(json.loads(output))


def committed_puts(data_dir: Path) -> int:
    """Objects committed so far (puts in the Storage simulator's append-only index)."""
    try:
        return (data_dir / "supabase" / "storage-index.jsonl").read_bytes().count(b'"op":"put"')
    except FileNotFoundError:
        return 0


def tus_half_sent(data_dir: Path) -> bool:
    """A TUS upload has bytes on the server and is not complete (its .part file is there)."""
    return any(part.stat().st_size > 0 for part in (data_dir / "supabase" / "tus").glob("*.part"))


def wait_until(condition: Callable[[], bool], process: subprocess.Popen[bytes], what: str) -> bool:
    """Poll ``condition``; False when the process ended first."""
    deadline = time.monotonic() + COMMAND_TIMEOUT_S
    while time.monotonic() < deadline:
        if condition():
            return True
        if process.poll() is not None:
            return False
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def kill(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait()


# -- the source of truth: what Graph serves ---------------------------------------------------


def graph_token(sim: SimProcess) -> str:
    """A Graph access token of the drill's own, by the device-code flow (the sim approves it)."""
    base = f"{sim.settings['authority']}/{sim.settings['tenant']}/oauth2/v2.0"
    client_id = sim.settings["client_id"]
    device = sim.call("POST", f"{base}/devicecode", data={"client_id": client_id, "scope": "Files.Read.All"}).json()
    for _ in range(30):
        time.sleep(device["interval"])
        reply = sim.call("POST", f"{base}/token", data={
            "client_id": client_id, "device_code": device["device_code"],
            "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
        })  # fmt: skip
        if reply.status_code == 200:
            return str(reply.json()["access_token"])
    raise AssertionError("the drill's own sign-in never completed")


def source_digests(sim: SimProcess, folder: str) -> dict[str, tuple[str, int, str]]:
    """Item id -> (name, size, SHA-256) of every file in ``folder``, downloaded from Graph."""
    headers = {"authorization": f"Bearer {graph_token(sim)}"}
    url: str | None = f"{sim.settings['graph_url']}/me/drive/root:/{folder}:/children?$top=200"
    found: dict[str, tuple[str, int, str]] = {}
    while url:
        page = sim.call("GET", url, headers=headers)
        assert page.status_code == 200, page.text
        body = page.json()
        for item in body["value"]:
            found[item["id"]] = (item["name"], item["size"], download_sha256(sim, item))
        url = body.get("@odata.nextLink")
    return found


def download_sha256(sim: SimProcess, item: dict[str, Any]) -> str:
    for _ in range(30):
        try:
            response = sim.call("GET", item["@microsoft.graph.downloadUrl"])
        except httpx.TransportError:
            continue
        if response.status_code == 200 and len(response.content) == item["size"]:
            return hashlib.sha256(response.content).hexdigest()
    raise AssertionError(f"could not download {item['name']} for the audit")


# -- the audit ----------------------------------------------------------------------------------


@dataclass
class Expected:
    files: list[SourceFile]
    sources: dict[str, tuple[str, int, str]]  # item id -> name, size, SHA-256 as Graph serves it
    status: dict[str, Any]  # `status --json` after the last sync
    yacht_id: str
    home: Path


def audit(data_dir: Path, expected: Expected) -> None:
    """The exact final state, read from the simulators' data on disk once they have stopped."""
    sources, files, yacht_id = expected.sources, expected.files, expected.yacht_id
    # Office files have a smallest valid size, so Graph's sizes (checked against the bytes
    # downloaded) are the truth; every other kind is generated at exactly the size asked for.
    assert sorted(name for name, _, _ in sources.values()) == sorted(f.name for f in files)
    asked = {f.name: f.size for f in files}
    assert all(size == asked[name] for name, size, _ in sources.values() if not name.endswith(("docx", "xlsx")))
    total_bytes = sum(size for _, size, _ in sources.values())
    store = ObjectStore(data_dir / "supabase", {BUCKET: BucketConfig()}, time.time)
    rows = RowStore(data_dir / "supabase" / "rest", TABLES)

    # Each registration once, with the source's hash; nothing else registered.
    documents = list(rows.snapshot("doc_metadata").values())
    by_item = {row["metadata"]["onedrive"]["item_id"]: row for row in documents}
    assert len(documents) == len(by_item) == len(files), "one doc_metadata row per file"
    assert set(by_item) == set(sources)
    for item_id, (name, size, sha256) in sources.items():
        row = by_item[item_id]
        assert row["source_id"] == document_id(yacht_id, row["metadata"]["onedrive"]["drive_id"], item_id)
        assert (row["filename"], row["size_bytes"], row["sha256"]) == (name, size, sha256), name
        assert row["deleted_at"] is None
        assert row["storage_path"].startswith(f"{yacht_id}/")
    search = list(rows.snapshot("search_index").values())
    assert sorted(row["object_id"] for row in search) == sorted(row["source_id"] for row in documents)

    # Each object once, its bytes the source's; no stray, partial or duplicate object or version.
    objects = store.all(BUCKET)
    assert len(objects) == len(files), "one object per file"
    by_key = {row["storage_path"]: row for row in documents}
    assert {obj.name for obj in objects} == set(by_key)
    for obj in objects:
        digest = hashlib.sha256(store.path_of(obj).read_bytes()).hexdigest()
        assert (obj.size, digest) == (by_key[obj.name]["size_bytes"], by_key[obj.name]["sha256"]), obj.name
    blobs = [path for path in (data_dir / "supabase" / "storage" / BUCKET).rglob("*") if path.is_file()]
    assert len(blobs) == len(files), "no orphaned object versions on disk"
    # Every TUS upload that received bytes was finished (resumed, not begun again): a kill can
    # only orphan one the server created an instant before the app could note its URL.
    half_sent = [part for part in (data_dir / "supabase" / "tus").glob("*.part") if part.stat().st_size]
    assert not half_sent, "a TUS upload was abandoned half sent and its bytes sent again"

    # Nothing half done is left on the yacht either.
    assert not [path for path in (expected.home / "cache").rglob("*") if path.is_file()], "spool files left over"

    # The counters: locally, and in the rows the office reads.
    status = expected.status
    assert status["status"] == "completed", status
    counts = (status["files_found"], status["files_succeeded"], status["files_failed"], status["files_skipped"])
    assert counts == (len(files), len(files), 0, 0), status
    assert status["bytes_uploaded"] == status["bytes_downloaded"] == total_bytes
    assert status["problems"] == 0
    jobs = list(rows.snapshot("onedrive_sync_jobs").values())
    assert len(jobs) == 1, "the killed runs resumed one job"
    job = jobs[0]
    assert job["job_status"] == "completed"
    counts = (job["total_files_found"], job["files_succeeded"], job["files_failed"], job["files_skipped"])
    assert counts == (len(files), len(files), 0, 0), job
    assert job["bytes_uploaded"] == job["bytes_downloaded"] == total_bytes
    states = list(rows.snapshot("onedrive_sync_state").values())
    assert sorted(state["onedrive_item_id"] for state in states) == sorted(sources), "one shore status per file"
    for state in states:
        name, size, sha256 = sources[state["onedrive_item_id"]]
        assert state["sync_status"] == "completed", state
        assert (state["file_name"], state["file_size"], state["sha256"]) == (name, size, sha256)
        assert state["storage_path"] == by_item[state["onedrive_item_id"]]["storage_path"]
    assert len(rows.snapshot("onedrive_connections")) == 1


def finish(app: App, sim: SimProcess, folder: str, files: list[SourceFile], logs: Path) -> Expected:
    """The last sync's status and the sources' digests, kept beside the logs for a failure's reader."""
    status = app.status()
    sources = source_digests(sim, folder)
    (logs / "audit-input.json").write_text(json.dumps({"sources": sources, "status": status}))
    return Expected(files, sources, status, sim.settings["yacht_id"], app.home)


# -- the drills ---------------------------------------------------------------------------------


def test_sweep_removes_only_spool_files_no_checkpoint_owns(tmp_path: Path) -> None:
    """What a kill right after a delivery is recorded leaves behind goes at the next job's start."""
    from celeste_desktop.engine.actions import sweep_spool

    owned = tmp_path / "spool" / "drive-a" / "owned.part"
    orphan = tmp_path / "spool" / "drive-b" / "orphan.part"
    for path in (owned, orphan):
        path.parent.mkdir(parents=True)
        path.write_bytes(b"partial")
    spelt_otherwise = str(tmp_path / "spool" / "drive-b" / ".." / "drive-a" / "owned.part")
    assert sweep_spool(tmp_path / "spool", {spelt_otherwise}) == 1
    assert owned.exists() and not orphan.exists()
    assert sweep_spool(tmp_path / "missing", set()) == 0


@pytest.mark.slow
@pytest.mark.timeout(900)
@posix_kill
def test_fault_drill_ends_exact(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    files = drill_files(rng, small=497, large=3)
    logs = tmp_path / "logs"
    logs.mkdir()
    app = App(tmp_path / "home", logs)
    with sim_process(tmp_path / "sim", logs / "sim.log", FAULTS) as sim:
        sim.add_tree("Drill", files)
        app.set_up(sim, "Drill")

        # Kill 1: while a TUS upload is half sent (and a little later, so it may fall anywhere).
        process = app.start_sync()

        def mid_tus() -> bool:  # or a little way in, should every chunk slip between two looks
            return tus_half_sent(sim.data_dir) or committed_puts(sim.data_dir) >= 150

        assert wait_until(mid_tus, process, "a TUS upload"), app.output()
        time.sleep(rng.uniform(0.0, 0.3))
        kill(process)
        # Kill 2: at a seeded point of the progress, a little after an object lands.
        process = app.start_sync()
        target = committed_puts(sim.data_dir) + rng.randint(60, 180)
        assert wait_until(lambda: committed_puts(sim.data_dir) >= target, process, "kill 2"), app.output()
        time.sleep(rng.uniform(0.0, 0.3))
        kill(process)

        # The restart: every access token is revoked mid-run, so Graph refuses them until the app
        # renews its token; the sync must carry on and end with every file delivered.
        process = app.start_sync()
        target = committed_puts(sim.data_dir) + rng.randint(40, 120)
        refreshes = sim.entra_state()["grant_counts"].get("refresh_token", 0)
        assert wait_until(lambda: committed_puts(sim.data_dir) >= target, process, "token expiry"), app.output()
        sim.expire_tokens()
        assert process.wait(timeout=COMMAND_TIMEOUT_S) == 0, app.output()
        assert sim.entra_state()["grant_counts"].get("refresh_token", 0) > refreshes, "tokens were renewed"
        expected = finish(app, sim, "Drill", files, logs)
    audit(tmp_path / "sim", expected)


@pytest.mark.slow
@pytest.mark.timeout(900)
@posix_kill
def test_kill_at_every_step_resumes_exactly(tmp_path: Path) -> None:
    from drill_worker import CRASH_POINTS  # beside this file; imported late so collection stays light

    rng = random.Random(SEED + 1)
    files = drill_files(rng, small=120, large=1)
    logs = tmp_path / "logs"
    logs.mkdir()
    app = App(tmp_path / "home", logs)
    # The TUS chunk first, while the large file is surely still on its way; then every other
    # step, a few files in, so each kill finds other files at other steps too.
    points = ["tus_chunk:2", *(f"{point}:{rng.randint(2, 4)}" for point in CRASH_POINTS if point != "tus_chunk")]
    with sim_process(tmp_path / "sim", logs / "sim.log", faults="") as sim:
        sim.add_tree("Steps", files)
        app.set_up(sim, "Steps")
        for point in points:
            process = app.start_sync(crash_after=point)
            code = process.wait(timeout=COMMAND_TIMEOUT_S)
            assert code == -signal.SIGKILL, f"{point}: the sync was to be killed there\n{app.output()}"
        process = app.start_sync()
        assert process.wait(timeout=COMMAND_TIMEOUT_S) == 0, app.output()
        expected = finish(app, sim, "Steps", files, logs)
    audit(tmp_path / "sim", expected)
