"""Shared parts of the benchmarks: the simulators in their own process, a fresh app home driven
through its command line, process accounting and scratch folders.

Every benchmark runs the app as a child process (``celeste-desktop --home H sync``) and reads
that process's own CPU time and peak RSS from ``wait4``; the simulators run in another process
(``bench/simproc.py``), so the app's figures are its own. The curl reference is in
``reference.py``; the result files and the machine description in ``results.py``.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
# Experiments (a patched app, see APP_COMMAND) write elsewhere so they never replace the figures.
RESULTS = Path(os.environ.get("CELESTE_BENCH_RESULTS", BENCH / "results"))
PYTHON = Path(sys.executable)
APP = PYTHON.parent / "celeste-desktop"
# For experiments only: another command to run as the app (e.g. a launcher that patches it).
APP_COMMAND = shlex.split(os.environ.get("CELESTE_BENCH_APP", "")) or [str(APP)]
BUCKET = "documents"
MB = 1_000_000
MIB = 1024 * 1024
GIB = 1024**3


# -- process accounting -------------------------------------------------------------------------


@dataclass
class OutputLine:
    """One line the child printed: when (seconds after start), what, and its VmHWM then (KiB)."""

    at: float
    text: str
    hwm_kib: int


@dataclass
class ProcessRun:
    """One finished child process: exit code, wall time, its own CPU time and peak RSS."""

    argv: list[str]
    returncode: int
    wall_s: float
    user_s: float
    sys_s: float
    maxrss_kib: int
    lines: list[OutputLine]
    stderr: str
    killed: bool = False

    @property
    def stdout(self) -> str:
        return "".join(line.text for line in self.lines)

    @property
    def cpu_s(self) -> float:
        return self.user_s + self.sys_s

    @property
    def peak_rss_mb(self) -> float:
        return self.maxrss_kib * 1024 / MB

    def first_line(self, prefix: str) -> OutputLine | None:
        return next((line for line in self.lines if line.text.startswith(prefix)), None)

    def summary(self) -> dict[str, Any]:
        return {
            "returncode": self.returncode,
            "wall_s": round(self.wall_s, 3),
            "cpu_user_s": round(self.user_s, 3),
            "cpu_sys_s": round(self.sys_s, 3),
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "killed": self.killed,
        }


def vm_hwm_kib(pid: int) -> int:
    """Peak resident set so far of a running process (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def run_process(
    argv: Sequence[str],
    *,
    stdin_text: str | None = None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    watch: Callable[[], bool] | None = None,
    watch_interval: float = 0.05,
    timeout: float = 3600.0,
) -> ProcessRun:
    """Run ``argv`` and account for it alone (``wait4``: its rusage, not every child's).

    ``watch`` is called every ``watch_interval`` seconds while the process runs; when it returns
    True the process is killed with SIGKILL (the crash tests). Standard output is read line by
    line in a thread, each line stamped with the time and the child's peak RSS so far (the
    CLI prints "Planned: ..." when planning ends); standard error goes to a temporary file.
    """
    with tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.PIPE if stdin_text is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=err,
            env=env,
            cwd=cwd,
            text=True,
            bufsize=1,
        )
        lines: list[OutputLine] = []

        def read_lines() -> None:
            assert proc.stdout is not None
            for text in proc.stdout:
                lines.append(OutputLine(time.perf_counter() - started, text, vm_hwm_kib(proc.pid)))

        reader = threading.Thread(target=read_lines, name="child-stdout", daemon=True)
        reader.start()
        if stdin_text is not None:
            assert proc.stdin is not None
            proc.stdin.write(stdin_text)
            proc.stdin.close()
        killed = False
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid == proc.pid:
                break
            overdue = time.perf_counter() - started > timeout
            if not killed and (overdue or (watch is not None and watch())):
                os.kill(proc.pid, signal.SIGKILL)
                killed = True
            time.sleep(watch_interval if watch is not None else 0.02)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        reader.join(10)
        assert proc.stdout is not None
        proc.stdout.close()
        err.seek(0)
        return ProcessRun(
            argv=list(argv),
            returncode=proc.returncode,
            wall_s=wall,
            user_s=usage.ru_utime,
            sys_s=usage.ru_stime,
            maxrss_kib=usage.ru_maxrss,
            lines=lines,
            stderr=err.read(),
            killed=killed,
        )


# -- the simulators -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SimSettings:
    """The settings JSON line the simulators print (what ``config import -`` reads)."""

    raw: dict[str, Any]

    @property
    def line(self) -> str:
        return json.dumps(self.raw)

    @property
    def graph_url(self) -> str:
        return str(self.raw["graph_url"])

    @property
    def graph_base(self) -> str:
        return self.graph_url.removesuffix("/v1.0")

    @property
    def supabase_url(self) -> str:
        return str(self.raw["supabase_url"])

    @property
    def anon_key(self) -> str:
        return str(self.raw["supabase_anon_key"])

    @property
    def yacht_key(self) -> str:
        return str(self.raw["supabase_key"])

    @property
    def yacht_id(self) -> str:
        return str(self.raw["yacht_id"])

    @property
    def ca_bundle(self) -> str:
        return str(self.raw["ca_bundle"])

    @property
    def authority(self) -> str:
        return str(self.raw["authority"])

    @property
    def tenant(self) -> str:
        return str(self.raw["tenant"])

    @property
    def client_id(self) -> str:
        return str(self.raw["client_id"])


@dataclass
class ServerCounts:
    requests: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    connections: int = 0

    @property
    def wire(self) -> int:
        return self.bytes_in + self.bytes_out


@dataclass
class SimStats:
    """Counters of every simulated server (plain-text HTTP bytes, headers included)."""

    servers: dict[str, ServerCounts]
    cpu_s: float

    def __getitem__(self, name: str) -> ServerCounts:
        return self.servers[name]

    @property
    def wire(self) -> int:
        return sum(s.wire for s in self.servers.values())

    @property
    def requests(self) -> int:
        return sum(s.requests for s in self.servers.values())

    def minus(self, before: SimStats) -> SimStats:
        servers = {}
        for name, now in self.servers.items():
            old = before.servers.get(name, ServerCounts())
            servers[name] = ServerCounts(
                now.requests - old.requests,
                now.bytes_in - old.bytes_in,
                now.bytes_out - old.bytes_out,
                now.connections - old.connections,
            )
        return SimStats(servers, self.cpu_s - before.cpu_s)

    def as_dict(self) -> dict[str, Any]:
        return {"servers": {k: asdict(v) for k, v in self.servers.items()}, "cpu_s": round(self.cpu_s, 3)}


class SimProcess:
    """``bench/simproc.py`` (the simulators) as a child process, with its counters on demand."""

    def __init__(self, data_dir: Path, *, tenant_size: int | None = None, faults: str = "", seed: int = 1) -> None:
        argv = [str(PYTHON), str(BENCH / "simproc.py"), "--auto-consent", "--data-dir", str(data_dir)]
        if tenant_size is not None:
            argv += ["--tenant-size", str(tenant_size)]
        if faults:
            argv += ["--faults", faults]
        argv += ["--seed", str(seed)]
        self._log = (data_dir.parent / f"{data_dir.name}.log").open("w")
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, text=True, bufsize=1
        )
        self._lock = threading.Lock()
        first = self._readline(timeout=120)
        self.settings = SimSettings(json.loads(first))
        self._http = httpx.Client(verify=self.settings.ca_bundle, timeout=600, trust_env=False)

    def _readline(self, timeout: float) -> str:
        assert self.proc.stdout is not None
        result: list[str] = []
        reader = threading.Thread(target=lambda: result.append(self.proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
        reader.start()
        reader.join(timeout)
        if not result or not result[0]:
            raise RuntimeError(f"the simulators did not answer (exit code {self.proc.poll()}); see the .log file")
        return result[0]

    def command(self, text: str) -> Any:
        with self._lock:
            assert self.proc.stdin is not None
            self.proc.stdin.write(text + "\n")
            self.proc.stdin.flush()
            return json.loads(self._readline(timeout=60))

    def stats(self) -> SimStats:
        raw = self.command("stats")
        cpu = float(raw.pop("cpu_s"))
        return SimStats({name: ServerCounts(**counts) for name, counts in raw.items()}, cpu)

    def reset(self) -> None:
        self.command("reset")

    def control(self, operation: str, **arguments: Any) -> Any:
        """``POST /_sim/graph/<operation>`` (see celeste_desktop/sim/graph_control.py)."""
        response = self._http.post(f"{self.settings.graph_base}/_sim/graph/{operation}", json=arguments)
        if response.status_code >= 400:
            raise RuntimeError(f"sim control {operation} failed: {response.status_code} {response.text[:300]}")
        return response.json()

    def control_state(self) -> dict[str, Any]:
        """``GET /_sim/graph/state``: drives, item count, change sequence."""
        response = self._http.get(f"{self.settings.graph_base}/_sim/graph/state")
        response.raise_for_status()
        state: dict[str, Any] = response.json()
        return state

    def stop(self) -> None:
        self._http.close()
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            with suppress(OSError):
                self.proc.stdin.close()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                self.proc.wait(15)
        self._log.close()


class StatsSampler:
    """Polls the simulators' counters in a thread: a timeline of bytes for rates and phases."""

    def __init__(self, sim: SimProcess, interval: float = 0.25) -> None:
        self.sim = sim
        self.interval = interval
        self.samples: list[tuple[float, SimStats]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stats-sampler", daemon=True)

    def _run(self) -> None:
        while True:
            self.samples.append((time.perf_counter(), self.sim.stats()))
            if self._stop.wait(self.interval):
                self.samples.append((time.perf_counter(), self.sim.stats()))
                return

    def __enter__(self) -> StatsSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def latest(self) -> SimStats | None:
        return self.samples[-1][1] if self.samples else None

    def active_span(self, counter: Callable[[SimStats], int], threshold: int = 1) -> tuple[float, float, int] | None:
        """(first, last, bytes): when ``counter`` first and last grew, and by how much in total.

        Resolution is the sampling interval; the times are those of the samples that first
        and last showed growth, so a span is at most one interval too short at each end.
        """
        first = last = None
        start_value = counter(self.samples[0][1]) if self.samples else 0
        previous = start_value
        for index, (at, stats) in enumerate(self.samples):
            value = counter(stats)
            if value - previous >= threshold:
                if first is None:
                    first = self.samples[index - 1][0] if index else at
                last = at
            previous = value
        if first is None or last is None:
            return None
        return first, last, previous - start_value


def phase_rates(sampler: StatsSampler) -> dict[str, Any]:
    """Download (download host → client) and upload (client → Supabase) spans and rates."""
    result: dict[str, Any] = {}
    counters: dict[str, Callable[[SimStats], int]] = {
        "download": lambda s: s["download"].bytes_out,
        "upload": lambda s: s["supabase"].bytes_in,
    }
    for name, counter in counters.items():
        span = sampler.active_span(counter, threshold=64 * 1024)
        if span is None:
            continue
        first, last, moved = span
        seconds = max(last - first, 1e-6)
        began = sampler.samples[0][0]
        result[name] = {
            "seconds": round(seconds, 2), "bytes": moved, "mb_s": round(moved / seconds / MB, 1),
            "from_s": round(first - began, 2), "to_s": round(last - began, 2),  # since sampling began
        }  # fmt: skip
    return result


@contextmanager
def sim_process(data_dir: Path, **kwargs: Any) -> Iterator[SimProcess]:
    sim = SimProcess(data_dir, **kwargs)
    try:
        yield sim
    finally:
        sim.stop()


# -- the app ------------------------------------------------------------------------------------


def app_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy") and k != "CELESTE_HOME"}
    env["NO_PROXY"] = "127.0.0.1,localhost"
    env["QT_QPA_PLATFORM"] = "offscreen"
    return env


class AppHome:
    """A fresh ``--home`` for one run, configured against the simulators through the CLI."""

    def __init__(self, home: Path, sim: SimSettings) -> None:
        self.home = home
        self.sim = sim
        home.mkdir(parents=True, exist_ok=True)

    def run(self, *args: str, stdin_text: str | None = None, check: bool = True, **kwargs: Any) -> ProcessRun:
        result = run_process([*APP_COMMAND, "--home", str(self.home), *args], stdin_text=stdin_text, env=app_env(),
                             **kwargs)
        if check and result.returncode != 0:
            raise RuntimeError(
                f"celeste-desktop {' '.join(args)} exited {result.returncode}:\n{result.stdout[-3000:]}\n"
                f"{result.stderr[-3000:]}"
            )
        return result

    def setup(self, folders: Sequence[str], settings: dict[str, str] | None = None) -> None:
        """config set vault_backend file; config import -; other settings; login; select."""
        self.run("config", "set", "vault_backend", "file")
        self.run("config", "import", "-", stdin_text=self.sim.line)
        for name, value in (settings or {}).items():
            self.run("config", "set", name, value)
        self.run("login", "--device-code")
        self.run("select", *folders)

    def sync(self, *extra: str, check: bool = True, **kwargs: Any) -> ProcessRun:
        return self.run("sync", *extra, check=check, **kwargs)

    def status(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.run("status", "--json").stdout)
        return result


@contextmanager
def workdir(keep: bool = False, prefix: str = "celeste-bench-") -> Iterator[Path]:
    """A scratch folder on the same disk as the app's spool; removed unless ``keep``."""
    root = Path(tempfile.mkdtemp(prefix=prefix, dir=os.environ.get("CELESTE_BENCH_TMP", "/var/tmp")))
    try:
        yield root
    finally:
        if keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


def ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None
