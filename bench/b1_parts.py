"""B1 taken apart: the app's HTTP stack receiving and sending one large file on its own.

Not a target of the issue; it explains B1. Against the same simulator, side by side:

- receive: the download URL read to nothing by curl, by the app's client (httpcore on asyncio's
  transports, net/streams.py) and by the same client on httpcore's default anyio backend;
  then by the app's client with both hashes the app computes (SHA-256 and QuickXorHash);
- send: a file uploaded by curl (one POST with a known length) and by the app's TUS code path
  (6 MiB PATCHes whose bodies are `storage.spool.FileSlice`).

Each line gives MB/s and the CPU seconds per GiB of the process doing it (curl's own, or this
script's). Writes ``bench/results/b1parts.json``.

    .venv/bin/python bench/b1_parts.py [--size-mib 512]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import os
import resource
import subprocess
import time
from pathlib import Path
from typing import Any

import benchlib as b
import figures as fig
import reference as ref

from celeste_desktop.domain.quickxor import QuickXorHash
from celeste_desktop.net import http as app_http
from celeste_desktop.net.http import HttpOptions, make_async_client
from celeste_desktop.storage.spool import FileSlice

CHUNK = 6 * 1024 * 1024  # Supabase's TUS chunk


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _line(name: str, size: int, wall: float, cpu: float) -> dict[str, Any]:
    figures = {"mb_s": round(size / wall / b.MB, 1), "cpu_s_per_gib": round(cpu / (size / b.GIB), 2)}
    print(f"{name:34s} {figures['mb_s']:8.1f} MB/s {figures['cpu_s_per_gib']:6.2f} CPU s/GiB")
    return figures


def _curl(args: list[str]) -> tuple[float, float]:
    started = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(["curl", "-sS", "--fail", *args], check=True, stdout=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return time.perf_counter() - started, cpu


async def _receive(url: str, ca: Path, *, hashes: bool, anyio: bool) -> tuple[float, float, int]:
    names = vars(app_http)
    saved = names["install_backend"]
    if anyio:  # httpcore's default backend, for comparison
        names["install_backend"] = lambda *args, **kwargs: None
    try:
        client = make_async_client(HttpOptions(ca_bundle=ca))
    finally:
        names["install_backend"] = saved
    sha, quickxor = hashlib.sha256(), QuickXorHash()
    received = 0
    async with client:
        started, cpu = time.perf_counter(), _cpu()
        async with client.stream("GET", url) as response:
            async for chunk in response.aiter_bytes():
                received += len(chunk)
                if hashes:
                    sha.update(chunk)
                    quickxor.update(chunk)
        return time.perf_counter() - started, _cpu() - cpu, received


async def _send_tus(sim: b.SimSettings, path: Path, size: int) -> tuple[float, float]:
    headers = {"apikey": sim.anon_key, "authorization": f"Bearer {sim.yacht_key}", "tus-resumable": "1.0.0"}
    metadata = {
        "bucketName": "documents",
        "objectName": f"{sim.yacht_id}/bench/parts/tus-{time.time_ns()}.bin",
        "contentType": "application/octet-stream",
    }
    encoded = ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in metadata.items())
    async with make_async_client(HttpOptions(ca_bundle=Path(sim.ca_bundle))) as client:
        created = await client.post(
            f"{sim.supabase_url}/storage/v1/upload/resumable",
            headers={**headers, "upload-length": str(size), "upload-metadata": encoded, "x-upsert": "true"},
        )
        if created.status_code != 201:
            raise RuntimeError(f"TUS creation failed: {created.status_code} {created.text}")
        location = created.headers["location"]
        started, cpu = time.perf_counter(), _cpu()
        offset = 0
        while offset < size:
            length = min(CHUNK, size - offset)
            reply = await client.patch(
                location,
                headers={**headers, "upload-offset": str(offset), "content-type": "application/offset+octet-stream",
                         "content-length": str(length)},
                content=FileSlice(path, offset, length),
            )  # fmt: skip
            if reply.status_code != 204:
                raise RuntimeError(f"PATCH failed: {reply.status_code} {reply.text}")
            offset += length
        return time.perf_counter() - started, _cpu() - cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    size = args.size_mib * b.MIB
    lines: dict[str, Any] = {}
    with b.workdir(args.keep) as root, b.sim_process(root / "sim") as sim:
        settings = sim.settings
        sim.control("add_folder", parent="/", name="parts")
        sim.control("add_file", parent="/parts", name="large.bin", size=size, seed=5)
        url = ref.list_files(settings, "parts", ref.graph_token(settings))[0].download_url
        ca = Path(settings.ca_bundle)

        wall, cpu = _curl(["--cacert", str(ca), "-o", "/dev/null", url])
        lines["receive_curl"] = _line("receive: curl", size, wall, cpu)
        for name, hashes, anyio in (
            ("receive_app", False, False),
            ("receive_app_anyio", False, True),
            ("receive_app_hashed", True, False),
        ):
            wall, cpu, received = asyncio.run(_receive(url, ca, hashes=hashes, anyio=anyio))
            if received != size:
                raise RuntimeError(f"{name}: received {received} of {size} bytes")
            lines[name] = _line(f"{name.replace('_', ' ')}", size, wall, cpu)

        source = root / "source.bin"
        with source.open("wb") as out:
            for _ in range(args.size_mib):
                out.write(os.urandom(b.MIB))
        key = f"{settings.yacht_id}/bench/parts/curl-{time.time_ns()}.bin"
        wall, cpu = _curl([
            "--cacert", str(ca), "-H", f"apikey: {settings.anon_key}",
            "-H", f"Authorization: Bearer {settings.yacht_key}",
            "-H", "x-upsert: true", "-H", "Expect:", "-T", str(source),
            f"{settings.supabase_url}/storage/v1/object/documents/{key}",
        ])  # fmt: skip
        lines["send_curl"] = _line("send: curl POST", size, wall, cpu)
        wall, cpu = asyncio.run(_send_tus(settings, source, size))
        lines["send_app_tus"] = _line("send: app TUS (FileSlice)", size, wall, cpu)

    result = {
        "title": "B1 taken apart: receiving and sending one large file",
        "workload": {"bytes": size, "size_mib": args.size_mib},
        "lines": lines,
        "ratios": {
            "receive_app_vs_curl": b.ratio(lines["receive_app"]["mb_s"], lines["receive_curl"]["mb_s"]),
            "receive_anyio_vs_curl": b.ratio(lines["receive_app_anyio"]["mb_s"], lines["receive_curl"]["mb_s"]),
            "send_app_vs_curl": b.ratio(lines["send_app_tus"]["mb_s"], lines["send_curl"]["mb_s"]),
        },
    }
    fig.write_result("B1parts", result, [])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
