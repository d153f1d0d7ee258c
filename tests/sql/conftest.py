"""A throwaway PostgreSQL cluster with Supabase's stand-ins and our migrations applied (twice).

The cluster lives in a temporary folder, listens on a Unix socket there and on a free port on
127.0.0.1, and is stopped and removed at the end of the session. initdb refuses to run as root,
so under root the server runs as the `postgres` system user that Debian's package creates.
Without PostgreSQL the tests are skipped, or fail when CELESTE_REQUIRE_POSTGRES=1 (CI).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

REPO = Path(__file__).resolve().parents[2]
MIGRATIONS = REPO / "supabase" / "migrations"
STUBS = Path(__file__).with_name("stubs.sql")
INSTALL_HINT = "PostgreSQL is not installed: run `apt-get install -y postgresql` (Debian/Ubuntu)."
SUPERUSER = "postgres"
DATABASE = "fleet"


def _find_pg_bin() -> Path | None:
    """The folder holding initdb and pg_ctl: PATH first, then Debian's versioned folders."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(os.path.realpath(on_path)).parent
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0,
        reverse=True,
    )
    for candidate in candidates:
        if (Path(candidate) / "initdb").exists() and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class PgCluster:
    """A running throwaway cluster; connect through ``conninfo``."""

    bin_dir: Path
    root: Path
    port: int
    run_as: str | None  # system user the server runs as, when we are root
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.root / "server.log"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "sock"

    def conninfo(self, dbname: str = "postgres") -> str:
        return psycopg.conninfo.make_conninfo(
            host=str(self.socket_dir), port=self.port, user=SUPERUSER, dbname=dbname
        )

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self.run_as is not None:
            command = ["runuser", "-u", self.run_as, "--", *command]
        return subprocess.run(
            command, cwd=self.root, capture_output=True, text=True, timeout=120, check=False
        )

    def start(self) -> None:
        initdb = self.run(
            "initdb", "-D", str(self.data_dir), "-U", SUPERUSER, "--auth=trust",
            "--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions",
        )  # fmt: skip
        if initdb.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{initdb.stdout}\n{initdb.stderr}")
        # Durability off: this cluster lives for one test session.
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.socket_dir} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        started = self.run(
            "pg_ctl", "start", "-w", "-t", "60", "-D", str(self.data_dir),
            "-l", str(self.log), "-o", options,
        )  # fmt: skip
        if started.returncode != 0:
            log = self.log.read_text(errors="replace") if self.log.exists() else ""
            raise RuntimeError(f"pg_ctl start failed:\n{started.stdout}\n{started.stderr}\n{log}")

    def stop(self) -> None:
        self.run("pg_ctl", "stop", "-D", str(self.data_dir), "-m", "immediate", "-w")


def _server_user() -> str | None:
    """None when we may run the server ourselves; the system user to run it as under root."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        _unavailable("running as root and there is no `postgres` system user to run the server")
    if shutil.which("runuser") is None:
        _unavailable("running as root and `runuser` (util-linux) is missing")
    return "postgres"


def _unavailable(reason: str) -> None:
    message = f"{reason}. {INSTALL_HINT}"
    if os.environ.get("CELESTE_REQUIRE_POSTGRES") == "1":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    bin_dir = _find_pg_bin()
    if bin_dir is None:
        _unavailable("initdb/pg_ctl not found on PATH or in /usr/lib/postgresql/*/bin")
        raise AssertionError("unreachable")  # _unavailable always raises
    run_as = _server_user()
    # Not pytest's tmp_path: its parents are 0700 root-only, and the server user must reach it.
    root = Path(tempfile.mkdtemp(prefix="celeste-pg-"))
    (root / "sock").mkdir()
    if run_as is not None:
        entry = pwd.getpwnam(run_as)
        for path in (root, root / "sock"):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    try:
        cluster = _start_cluster(bin_dir, root, run_as)
        try:
            yield cluster
        finally:
            cluster.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _start_cluster(bin_dir: Path, root: Path, run_as: str | None) -> PgCluster:
    last_error: RuntimeError | None = None
    for _attempt in range(3):  # the free port can be taken between probe and start
        cluster = PgCluster(bin_dir=bin_dir, root=root, port=_free_port(), run_as=run_as)
        shutil.rmtree(cluster.data_dir, ignore_errors=True)
        try:
            cluster.start()
        except RuntimeError as exc:
            last_error = exc
            cluster.stop()
            continue
        return cluster
    raise RuntimeError(f"could not start PostgreSQL: {last_error}")


def migration_files() -> list[Path]:
    """supabase/migrations/*.sql in the order the Supabase CLI applies them (by name)."""
    return sorted(MIGRATIONS.glob("*.sql"))


@dataclass
class AppliedSchema:
    """What applying the schema said: notices/warnings per pass, to check idempotence."""

    conninfo: str
    messages_by_pass: list[list[str]]


def _apply(conn: psycopg.Connection[Any], path: Path) -> None:
    # One transaction per file, as `supabase db push` does; no parameters, so psycopg sends
    # the file as one simple query and multi-statement scripts work.
    with conn.transaction():
        conn.execute(path.read_bytes())


@pytest.fixture(scope="session")
def fleet_db(pg_cluster: PgCluster) -> AppliedSchema:
    """Database `fleet`: stubs, then every migration, then every migration again."""
    with psycopg.connect(pg_cluster.conninfo(), autocommit=True) as admin:
        admin.execute(sql.SQL("create database {}").format(sql.Identifier(DATABASE)))
    messages: list[list[str]] = []
    with psycopg.connect(pg_cluster.conninfo(DATABASE), autocommit=True) as conn:
        _apply(conn, STUBS)
        for _pass in range(2):
            heard: list[str] = []

            def listen(diag: psycopg.errors.Diagnostic, sink: list[str] = heard) -> None:
                sink.append(f"{diag.severity_nonlocalized}: {diag.message_primary}")

            conn.add_notice_handler(listen)
            for path in migration_files():
                _apply(conn, path)
            conn.remove_notice_handler(listen)
            messages.append(heard)
    return AppliedSchema(conninfo=pg_cluster.conninfo(DATABASE), messages_by_pass=messages)


@pytest.fixture
def db(fleet_db: AppliedSchema) -> Iterator[psycopg.Connection[Any]]:
    """A superuser connection; tests act as API roles through `api.as_request`."""
    with psycopg.connect(fleet_db.conninfo, autocommit=True) as conn:
        yield conn
