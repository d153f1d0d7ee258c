"""The reference every figure is compared with: curl at the same concurrency.

Each worker is one curl process that, file after file, downloads from the Graph simulator's
pre-authenticated download URL into a temporary file and then uploads that file to the Supabase
simulator's standard upload endpoint (``POST /storage/v1/object/documents/<yacht>/bench/...``,
``apikey`` + Bearer yacht key + ``x-upsert``) in one request with a known length (``-T``).
Connections are kept alive across a worker's files, as the app keeps its own, and
``Expect: 100-continue`` is off, so the reference is a ceiling rather than a strawman. The
download URLs come from a children listing with a Graph token got by the device-code flow.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import httpx
from benchlib import BUCKET, SimSettings

# -- Graph access for the reference ---------------------------------------------------------------


def graph_token(sim: SimSettings) -> str:
    """A Graph access token by the device-code flow (the simulators approve it at once)."""
    with httpx.Client(verify=sim.ca_bundle, trust_env=False, timeout=60) as http:
        base = f"{sim.authority}/{sim.tenant}/oauth2/v2.0"
        scope = "https://graph.microsoft.com/Files.Read.All offline_access"
        start = http.post(f"{base}/devicecode", data={"client_id": sim.client_id, "scope": scope})
        start.raise_for_status()
        device_code = start.json()["device_code"]
        for _ in range(60):
            reply = http.post(
                f"{base}/token",
                data={
                    "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
                    "client_id": sim.client_id,
                    "device_code": device_code,
                },
            )
            if reply.status_code == 200:
                return str(reply.json()["access_token"])
            time.sleep(1)
    raise RuntimeError("no Graph token from the simulated Entra ID")


@dataclass(frozen=True)
class RemoteFile:
    path: str  # below the drive root, e.g. "bench-folder/f00001.bin"
    size: int
    download_url: str


def list_files(sim: SimSettings, folder: str, token: str) -> list[RemoteFile]:
    """Every file below ``folder`` (recursive children walk), with its pre-authenticated URL."""
    found: list[RemoteFile] = []
    with httpx.Client(verify=sim.ca_bundle, trust_env=False, timeout=120) as http:
        headers = {"Authorization": f"Bearer {token}"}
        pending = [folder.strip("/")]
        while pending:
            current = pending.pop()
            quoted = urllib.parse.quote(f"/{current}")
            url: str | None = f"{sim.graph_url}/me/drive/root:{quoted}:/children?$top=1000"
            while url:
                page = http.get(url, headers=headers)
                page.raise_for_status()
                data = page.json()
                for item in data["value"]:
                    if "folder" in item:
                        pending.append(f"{current}/{item['name']}")
                    elif "file" in item and "malware" not in item and "@microsoft.graph.downloadUrl" in item:
                        found.append(RemoteFile(f"{current}/{item['name']}", int(item["size"]),
                                                item["@microsoft.graph.downloadUrl"]))
                url = data.get("@odata.nextLink")
    return found


# -- the curl reference ---------------------------------------------------------------------------


@dataclass
class ReferenceRun:
    files: int
    bytes: int
    wall_s: float
    cpu_s: float  # every curl process together
    workers: int
    failures: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "tool": curl_version(),
            "files": self.files,
            "bytes": self.bytes,
            "workers": self.workers,
            "wall_s": round(self.wall_s, 3),
            "curl_cpu_s": round(self.cpu_s, 3),
            "failures": len(self.failures),
        }


def _quote_config(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _storage_key_for(sim: SimSettings, path: str) -> str:
    # Keys the app never writes: the app's keys follow the OneDrive path (bench-folder/...).
    safe = re.sub(r"[^A-Za-z0-9_/!.*'() &$=@;:+,?-]", "_", path)
    return f"{sim.yacht_id}/bench/reference/{safe}"


def curl_reference(
    sim: SimSettings,
    files: Sequence[RemoteFile],
    *,
    workers: int,
    spool: Path,
    limit_rate: int | None = None,
    retries: int = 0,
) -> ReferenceRun:
    """Copy ``files`` with ``workers`` curl processes, each file downloaded then uploaded.

    One curl process per worker runs its share of the files one after another through a config
    file (``--next`` between transfers), so connections are reused as the app reuses them.
    """
    spool.mkdir(parents=True, exist_ok=True)
    shares: list[list[RemoteFile]] = [list(files[i::workers]) for i in range(workers)]
    upload_base = f"{sim.supabase_url}/storage/v1/object/{BUCKET}/"
    configs: list[Path] = []
    for index, share in enumerate(shares):
        if not share:
            continue
        lines: list[str] = []
        for number, remote in enumerate(share):
            temp = spool / f"w{index}-{number}.tmp"
            common = [f"cacert = {_quote_config(sim.ca_bundle)}", "silent", "show-error", "noproxy = *",
                      'write-out = "%{http_code}\\n"']
            if limit_rate:
                common.append(f"limit-rate = {limit_rate}")
            if retries:
                # A reset mid-body: curl starts that transfer again (whole file).
                common += [f"retry = {retries}", "retry-all-errors", "retry-delay = 1"]
            lines += [f"url = {_quote_config(remote.download_url)}", f"output = {_quote_config(str(temp))}", *common,
                      "next"]
            key = urllib.parse.quote(_storage_key_for(sim, remote.path), safe="/")
            lines += [
                f"url = {_quote_config(upload_base + key)}",
                f"upload-file = {_quote_config(str(temp))}",
                "request = POST",
                "output = /dev/null",
                f"header = {_quote_config('apikey: ' + sim.anon_key)}",
                f"header = {_quote_config('Authorization: Bearer ' + sim.yacht_key)}",
                f"header = {_quote_config('x-upsert: true')}",
                f"header = {_quote_config('Content-Type: application/octet-stream')}",
                f"header = {_quote_config('Expect:')}",
                *common,
                "next",
            ]
        path = spool / f"worker{index}.curlrc"
        path.write_text("\n".join(lines[:-1]) + "\n")
        configs.append(path)
    before = os.times()
    started = time.perf_counter()
    procs = [
        subprocess.Popen(["curl", "-K", str(cfg)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for cfg in configs
    ]
    failures: list[str] = []
    for proc in procs:
        out, err = proc.communicate()
        codes = out.split()
        failures += [f"HTTP {code}" for code in codes if code not in ("200", "201")]
        if proc.returncode != 0:
            failures.append(f"curl exit {proc.returncode}: {err[-500:]}")
    wall = time.perf_counter() - started
    after = os.times()
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    for temp in spool.glob("*.tmp"):
        temp.unlink()
    return ReferenceRun(len(files), sum(f.size for f in files), wall, cpu, workers, failures)


@cache
def curl_version() -> str:
    found = subprocess.run(["curl", "--version"], capture_output=True, text=True, check=False)
    return found.stdout.split("\n")[0]


