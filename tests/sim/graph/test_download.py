"""Downloads: 302 to the pre-authenticated host, Range, expiry, real hashes, corrupted and enriched files."""

from __future__ import annotations

import base64
import io
import urllib.parse
import zipfile
from typing import TYPE_CHECKING, Any

import httpx
import quickxorhash

if TYPE_CHECKING:
    from .conftest import GraphEnv


def enc(path: str) -> str:
    return "/".join(urllib.parse.quote(part, safe="") for part in path.split("/"))


async def listed(client: httpx.AsyncClient, path: str, drive: str = "/me/drive") -> dict[str, Any]:
    response = await client.get(f"{drive}/root:{enc(path)}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_content_redirects_to_another_origin_that_refuses_authorization(graph: GraphEnv,
                                                                               client: httpx.AsyncClient) -> None:
    item = await listed(client, "/04_MANUALS/Generators/Manuel d'entretien – Générateur.pdf")
    redirect = await client.get(f"/me/drive/items/{item['id']}/content")
    assert redirect.status_code == 302
    location = redirect.headers["location"]
    assert urllib.parse.urlsplit(location).netloc != urllib.parse.urlsplit(graph.sim.base_url).netloc
    assert "tempauth=" in location
    async with graph.anonymous() as http:
        refused = await http.get(location, headers={"Authorization": f"Bearer {graph.token()}"})
        assert refused.status_code == 401
        body = await http.get(location)
        assert body.status_code == 200
        assert body.headers["content-type"] == "application/pdf"
        assert len(body.content) == item["size"]
        assert graph.qxh(body.content) == item["file"]["hashes"]["quickXorHash"]
        assert body.content.startswith(b"%PDF-1.4") and body.content.rstrip().endswith(b"%%EOF")
        assert "Generateur" in body.headers["content-disposition"] or "G%C3%A9n" in body.headers[
            "content-disposition"]
    # httpx itself drops Authorization when a redirect leaves the origin: following works end to end.
    followed = await client.get(f"/me/drive/items/{item['id']}/content", follow_redirects=True)
    assert followed.status_code == 200 and followed.content == body.content


async def test_range_requests(graph: GraphEnv, client: httpx.AsyncClient) -> None:
    item = await listed(client, "/07_SAFETY/Fire Suppression/Fiche sécurité #2.pdf")
    url, size = item["@microsoft.graph.downloadUrl"], item["size"]
    async with graph.anonymous() as http:
        whole = (await http.get(url)).content
        part = await http.get(url, headers={"Range": "bytes=100-1099"})
        assert part.status_code == 206
        assert part.headers["content-range"] == f"bytes 100-1099/{size}"
        assert part.content == whole[100:1100]
        tail = await http.get(url, headers={"Range": f"bytes={size - 10}-"})
        assert tail.status_code == 206 and tail.content == whole[-10:]
        suffix = await http.get(url, headers={"Range": "bytes=-5"})
        assert suffix.content == whole[-5:]
        beyond = await http.get(url, headers={"Range": f"bytes={size}-"})
        assert beyond.status_code == 416 and beyond.headers["content-range"] == f"bytes */{size}"
        stale = await http.get(url, headers={"Range": "bytes=0-9", "If-Range": '"{OLD},1"'})
        assert stale.status_code == 200 and stale.content == whole
        graph.sim.set_ignore_range()
        ignored = await http.get(url, headers={"Range": "bytes=0-9"})
        assert ignored.status_code == 200 and ignored.content == whole


async def test_download_urls_expire_but_a_started_download_finishes(graph: GraphEnv,
                                                                     client: httpx.AsyncClient) -> None:
    graph.sim.set_download_url_lifetime(60)
    folder = await listed(client, "/05_DRAWINGS/General Arrangement")
    folder_children = (await client.get(f"/me/drive/items/{folder['id']}/children")).json()["value"]
    big = next(c for c in folder_children if c["size"] > 100_000_000)
    small = next(c for c in folder_children if c["size"] < 1_000_000)
    async with graph.anonymous() as http:
        async with http.stream("GET", big["@microsoft.graph.downloadUrl"],
                               headers={"Range": "bytes=0-3145727"}) as stream:
            assert stream.status_code == 206
            chunks = stream.aiter_bytes()
            received = len(await anext(chunks))
            graph.sim.advance_clock(120)  # the URL expires while its body is on the wire
            async for chunk in chunks:
                received += len(chunk)
        assert received == 3 * 1024 * 1024
        expired = await http.get(small["@microsoft.graph.downloadUrl"])
        assert expired.status_code == 401
        fresh = (await client.get(f"/me/drive/items/{small['id']}")).json()["@microsoft.graph.downloadUrl"]
        assert (await http.get(fresh)).status_code == 200
        head = await http.head(fresh)
        assert int(head.headers["content-length"]) == small["size"]


async def test_the_300_mb_drawing_set_is_lazy_but_consistent(graph: GraphEnv, client: httpx.AsyncClient) -> None:
    big = await listed(client, "/05_DRAWINGS/General Arrangement/GA Full Drawing Set Rev F.pdf")
    assert big["size"] == 300 * 1024 * 1024
    url = big["@microsoft.graph.downloadUrl"]
    async with graph.anonymous() as http:
        head = await http.head(url)
        assert int(head.headers["content-length"]) == big["size"]
        first = await http.get(url, headers={"Range": "bytes=0-1023"})
        assert first.content.startswith(b"%PDF-1.4")
        last = await http.get(url, headers={"Range": "bytes=-1048576"})
        assert len(last.content) == 1048576 and last.content.rstrip().endswith(b"%%EOF")
    # The listed hash is the hash of the bytes served (checked in-process: 300 MB over TLS is slow).
    sim = graph.sim
    hasher = quickxorhash.quickxorhash()
    for chunk in sim.synth.iter_bytes(sim.synth.build(sim.find(big["id"]))):
        hasher.update(chunk)
    assert base64.b64encode(hasher.digest()).decode() == big["file"]["hashes"]["quickXorHash"]


async def test_listed_hashes_match_downloaded_bytes(graph: GraphEnv, client: httpx.AsyncClient) -> None:
    """Every file under the two folders the GUI self-test ticks, plus a photo folder."""
    files: list[dict[str, Any]] = []
    for top in ("/01_BRIDGE", "/04_MANUALS", "/14_PHOTOS/Engine Room"):
        delta = (await client.get(f"/me/drive/root:{enc(top)}:/delta?$top=1000")).json()
        files += [i for i in delta["value"] if "file" in i and "malware" not in i]
    notebook_files = {i.id for i in graph.sim.tenant.walk(graph.sim.find("/01_BRIDGE/Bridge Notebook").id)}
    seen_kinds: set[str] = set()
    async with graph.anonymous() as http:
        for item in files:
            response = await http.get(item["@microsoft.graph.downloadUrl"])
            assert response.status_code == 200, item["name"]
            data = response.content
            assert len(data) == item["size"], item["name"]
            assert graph.qxh(data) == item["file"]["hashes"]["quickXorHash"], item["name"]
            name = item["name"].lower()
            if name.endswith(".pdf"):
                seen_kinds.add("pdf")
                assert data.startswith(b"%PDF-") and b"startxref" in data[-64:]
            elif name.endswith((".docx", ".xlsx")) and not name.startswith("~$"):
                seen_kinds.add(name[-4:])
                with zipfile.ZipFile(io.BytesIO(data)) as archive:
                    assert archive.testzip() is None and "[Content_Types].xml" in archive.namelist()
            elif name.endswith(".jpg"):
                seen_kinds.add("jpg")
                assert data[:2] == b"\xff\xd8" and data[-2:] == b"\xff\xd9"
            elif item["id"] not in notebook_files and not name.startswith("~$") and name != "thumbs.db":
                raise AssertionError(f"unexpected file {item['name']}")
    assert seen_kinds == {"pdf", "docx", "xlsx", "jpg"}


async def test_corruption_enrichment_malware_and_deletion(graph: GraphEnv, client: httpx.AsyncClient) -> None:
    sim = graph.sim
    target = await listed(client, "/04_MANUALS/Tender")
    tender = (await client.get(f"/me/drive/items/{target['id']}/children")).json()["value"][0]
    sim.corrupt(tender["id"])
    library = f"/drives/{sim.library_drive_id}"
    office = await listed(client, "/Fleet Standards/Fleet Maintenance Standard.docx", library)
    sim.set_enrichment()
    own_docx = await listed(client, "/01_BRIDGE/Navigation")
    own = next(c for c in (await client.get(f"/me/drive/items/{own_docx['id']}/children")).json()["value"]
               if c["name"].endswith(".docx"))
    malware = await listed(client, "/04_MANUALS/Navigation/ECDIS Chart Updater.zip")
    async with graph.anonymous() as http:
        corrupted = (await http.get(tender["@microsoft.graph.downloadUrl"])).content
        assert len(corrupted) == tender["size"]
        assert graph.qxh(corrupted) != tender["file"]["hashes"]["quickXorHash"]
        enriched = (await http.get(office["@microsoft.graph.downloadUrl"])).content
        assert len(enriched) != office["size"]
        assert graph.qxh(enriched) != office["file"]["hashes"]["quickXorHash"]
        assert "docProps/custom.xml" in zipfile.ZipFile(io.BytesIO(enriched)).namelist()
        plain = (await http.get(own["@microsoft.graph.downloadUrl"])).content  # OneDrive is not enriched
        assert graph.qxh(plain) == own["file"]["hashes"]["quickXorHash"]
        blocked = await http.get(malware["@microsoft.graph.downloadUrl"])
        assert blocked.status_code == 403 and blocked.json()["error"]["code"] == "malwareDetected"
        sim.delete(own["id"])
        assert (await http.get(own["@microsoft.graph.downloadUrl"])).status_code == 404
        tampered = own["@microsoft.graph.downloadUrl"].replace("tempauth=", "tempauth=x")
        assert (await http.get(tampered)).status_code == 401
