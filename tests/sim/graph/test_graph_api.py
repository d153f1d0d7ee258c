"""The simulated Graph API over real sockets: auth, scopes, errors, drives, sites, items, children."""

from __future__ import annotations

import urllib.parse
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    # Annotations only: the helpers reach tests as fixtures.
    from .conftest import GraphEnv


def enc(path: str) -> str:
    """Percent-encode a drive path as a client must (``#``, ``%`` and non-ASCII included)."""
    return "/".join(urllib.parse.quote(part, safe="") for part in path.split("/"))


def assert_graph_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"]
    assert error["innerError"]["request-id"] == response.headers["request-id"]


# -- authentication and scopes -------------------------------------------------------------------


async def test_missing_token_is_401_with_www_authenticate(graph: GraphEnv) -> None:
    async with graph.anonymous() as http:
        response = await http.get(f"{graph.api}/me/drive")
    assert_graph_error(response, 401, "InvalidAuthenticationToken")
    assert response.headers["www-authenticate"].startswith("Bearer ")


async def test_expired_token_is_401(graph: GraphEnv) -> None:
    token = graph.token()
    graph.tokens.expire_all_now()
    async with graph.anonymous() as http:
        response = await http.get(f"{graph.api}/me/drive", headers={"Authorization": f"Bearer {token}"})
    assert_graph_error(response, 401, "InvalidAuthenticationToken")
    assert "expired" in response.json()["error"]["message"]
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_forged_and_wrong_audience_tokens_are_401(graph: GraphEnv) -> None:
    forged = graph.token()[:-4] + "AAAA"
    wrong_audience = graph.token(aud="https://storage.azure.com")
    async with graph.anonymous() as http:
        for token in (forged, wrong_audience, "not-a-jwt"):
            response = await http.get(f"{graph.api}/me/drive", headers={"Authorization": f"Bearer {token}"})
            assert_graph_error(response, 401, "InvalidAuthenticationToken")


async def test_scopes_decide_what_a_token_may_read(graph: GraphEnv) -> None:
    library = graph.sim.library_drive_id
    async with graph.client("User.Read") as http:
        assert (await http.get("/me")).status_code == 200
        assert_graph_error(await http.get("/me/drive"), 403, "accessDenied")
        assert_graph_error(await http.get("/sites", params={"search": "fleet"}), 403, "accessDenied")
    async with graph.client("Files.Read") as http:
        assert (await http.get("/me/drive/root/children")).status_code == 200
        # Files.Read reaches only the user's own files; a SharePoint library needs .All.
        assert_graph_error(await http.get(f"/drives/{library}/root/children"), 403, "accessDenied")
        assert_graph_error(await http.get("/me"), 403, "Authorization_RequestDenied")
    async with graph.client("Files.Read.All") as http:
        assert (await http.get(f"/drives/{library}/root/children")).status_code == 200


async def test_unknown_segment_and_item_errors(client: httpx.AsyncClient) -> None:
    assert_graph_error(await client.get("/me/nonsense"), 400, "BadRequest")
    assert_graph_error(await client.get("/me/drive/items/01NOSUCHITEM"), 404, "itemNotFound")
    assert_graph_error(await client.get("/me/drive/root:/01_BRIDGE/nope.pdf"), 404, "itemNotFound")
    assert_graph_error(await client.get("/drives/b!nosuchdrive/root"), 404, "itemNotFound")


# -- user, drives, sites ---------------------------------------------------------------------------


async def test_me_and_drives(graph: GraphEnv, client: httpx.AsyncClient) -> None:
    me = (await client.get("/me")).json()
    assert me["userPrincipalName"] == "it.officer@mysimyacht.onmicrosoft.com"
    assert me["id"] == "11111111-2222-3333-4444-555555555555"
    drive = (await client.get("/me/drive")).json()
    assert drive["driveType"] == "business"
    assert drive["id"] == graph.sim.personal_drive_id
    drives = (await client.get("/me/drives")).json()["value"]
    assert [d["id"] for d in drives] == [drive["id"]]
    assert (await client.get(f"/drives/{enc(drive['id'])}")).json()["id"] == drive["id"]


async def test_sites_search_and_document_libraries(graph: GraphEnv, client: httpx.AsyncClient) -> None:
    sites = (await client.get("/sites", params={"search": "fleet"})).json()["value"]
    assert [s["displayName"] for s in sites] == ["Fleet Technical"]
    assert (await client.get("/sites", params={"search": "nothing-like-this"})).json()["value"] == []
    site = (await client.get(f"/sites/{sites[0]['id']}")).json()
    assert site["webUrl"].endswith("/sites/FleetTechnical")
    drives = (await client.get(f"/sites/{site['id']}/drives")).json()["value"]
    assert [(d["driveType"], d["name"]) for d in drives] == [("documentLibrary", "Documents")]
    by_path = (await client.get("/sites/mysimyacht.sharepoint.com:/sites/FleetTechnical")).json()
    assert by_path["id"] == site["id"]
    children = (await client.get(f"/drives/{drives[0]['id']}/root/children")).json()["value"]
    assert {c["name"] for c in children} == {"Yacht Docs", "Fleet Standards"}
    assert children[0]["parentReference"]["driveType"] == "documentLibrary"


# -- items -------------------------------------------------------------------------------------------


async def test_item_shape(graph: GraphEnv, client: httpx.AsyncClient) -> None:
    drive_id = graph.sim.personal_drive_id
    item = (await client.get(f"/drives/{drive_id}/root:/{enc('04_MANUALS/Main Engines')}:")).json()
    assert item["folder"]["childCount"] >= 3
    files = (await client.get(f"/drives/{drive_id}/items/{item['id']}/children")).json()["value"]
    pdf = next(f for f in files if f["name"].endswith(".pdf"))
    assert pdf["file"]["mimeType"] == "application/pdf"
    assert len(pdf["file"]["hashes"]["quickXorHash"]) == 28
    assert pdf["eTag"].startswith('"{') and pdf["cTag"].startswith('"c:{')
    reference = pdf["parentReference"]
    assert reference == {"driveType": "business", "driveId": drive_id, "id": item["id"], "name": "Main Engines",
                         "path": f"/drives/{drive_id}/root:/04_MANUALS/Main%20Engines"}
    assert pdf["@microsoft.graph.downloadUrl"].startswith(graph.sim.download_base_url)
    assert "tempauth=" in pdf["@microsoft.graph.downloadUrl"]
    for key in ("createdDateTime", "lastModifiedDateTime", "webUrl", "size", "createdBy"):
        assert key in pdf
    root = (await client.get("/me/drive/root")).json()
    assert "root" in root and root["name"] == "root"


async def test_path_addressing_is_case_insensitive_and_decodes_hash_and_accents(client: httpx.AsyncClient) -> None:
    path = "07_SAFETY/Fire Suppression/Fiche sécurité #2.pdf"
    exact = await client.get(f"/me/drive/root:/{enc(path)}")
    assert exact.status_code == 200, exact.text
    assert exact.json()["name"] == "Fiche sécurité #2.pdf"
    # Through /me/drive the parent path starts with /drive/root: and is percent-encoded.
    assert exact.json()["parentReference"]["path"] == "/drive/root:/07_SAFETY/Fire%20Suppression"
    shouting = await client.get(f"/me/drive/root:/{enc(path.upper())}:")
    assert shouting.json()["id"] == exact.json()["id"]
    percent = await client.get(f"/me/drive/root:/{enc('02_ENGINEERING/Fuel System/Fuel 100% Transfer Log.xlsx')}:")
    assert percent.status_code == 200
    children = await client.get(f"/me/drive/root:/{enc('07_SAFETY/Fire Suppression')}:/children")
    assert "Fiche sécurité #2.pdf" in {c["name"] for c in children.json()["value"]}
    folder = (await client.get(f"/me/drive/root:/{enc('07_SAFETY')}")).json()
    relative = await client.get(f"/me/drive/items/{folder['id']}:/{enc('Fire Suppression/Fiche sécurité #2.pdf')}:")
    assert relative.json()["id"] == exact.json()["id"]


async def test_if_none_match_answers_304(client: httpx.AsyncClient) -> None:
    first = await client.get("/me/drive/root:/01_BRIDGE")
    etag = first.json()["eTag"]
    assert first.headers["etag"] == etag
    again = await client.get(f"/me/drive/items/{first.json()['id']}", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    other = await client.get(f"/me/drive/items/{first.json()['id']}", headers={"If-None-Match": '"{X},1"'})
    assert other.status_code == 200


async def test_rename_changes_etag_not_ctag_and_new_content_changes_both(graph: GraphEnv,
                                                                        client: httpx.AsyncClient) -> None:
    path = "/04_MANUALS/Galley"
    before = (await client.get(f"/me/drive/root:{enc(path)}:/children")).json()["value"][0]
    graph.sim.rename(before["id"], "Renamed Manual.pdf")
    renamed = (await client.get(f"/me/drive/items/{before['id']}")).json()
    assert renamed["name"] == "Renamed Manual.pdf"
    assert renamed["eTag"] != before["eTag"] and renamed["cTag"] == before["cTag"]
    assert renamed["file"]["hashes"] == before["file"]["hashes"]
    graph.sim.change(before["id"])
    changed = (await client.get(f"/me/drive/items/{before['id']}")).json()
    assert changed["cTag"] != renamed["cTag"] and changed["eTag"] != renamed["eTag"]
    assert changed["file"]["hashes"] != renamed["file"]["hashes"]


async def test_onenote_malware_empty_and_hashless_items(graph: GraphEnv, client: httpx.AsyncClient) -> None:
    notebook = (await client.get("/me/drive/root:/01_BRIDGE/Bridge%20Notebook")).json()
    assert notebook["package"] == {"type": "oneNote"}
    assert "folder" not in notebook and "@microsoft.graph.downloadUrl" not in notebook
    assert_graph_error(await client.get(f"/me/drive/items/{notebook['id']}/content"), 404, "itemNotFound")
    bad = (await client.get(f"/me/drive/root:/{enc('04_MANUALS/Navigation/ECDIS Chart Updater.zip')}")).json()
    assert bad["malware"]["description"]
    assert_graph_error(await client.get(f"/me/drive/items/{bad['id']}/content"), 403, "malwareDetected")
    empty = (await client.get(f"/me/drive/root:/{enc('06_PROCEDURES/Bunkering/Bunker Receipt Template.txt')}")).json()
    assert empty["size"] == 0 and empty["file"]["hashes"]["quickXorHash"] == "AAAAAAAAAAAAAAAAAAAAAAAAAAA="
    hashless = (await client.get(f"/me/drive/root:/{enc('13_CERTIFICATIONS/Radio/Ship Station Licence 2024.pdf')}"))
    assert "hashes" not in hashless.json()["file"]
    graph.sim.omit_hashes()
    assert "hashes" not in (await client.get(f"/me/drive/items/{empty['id']}")).json()["file"]


# -- children paging -----------------------------------------------------------------------------


async def test_children_paging_past_a_thousand(graph: GraphEnv, client: httpx.AsyncClient) -> None:
    folder = graph.sim.add_folder("/08_MAINTENANCE", "Bulk")
    graph.sim.add_files("/08_MAINTENANCE/Bulk", 1203, 16 * 1024, prefix="reading-")
    graph.sim.add_folder("/08_MAINTENANCE/Bulk", "zz sub-folder")

    async def collect(url: str) -> tuple[list[str], int]:
        names: list[str] = []
        pages = 0
        next_url: str | None = url
        while next_url:
            response = await client.get(next_url)
            assert response.status_code == 200, response.text
            pages += 1
            names += [item["name"] for item in response.json()["value"]]
            next_url = response.json().get("@odata.nextLink")
        return names, pages

    names, pages = await collect(f"/me/drive/items/{folder.id}/children?$top=1000")
    assert pages == 2 and len(names) == 1204 and len(set(names)) == 1204
    assert names[0] == "zz sub-folder"  # folders first, then files by name
    names, pages = await collect(f"/me/drive/items/{folder.id}/children")
    assert pages == 7 and len(names) == 1204
    response = await client.get(f"/me/drive/items/{folder.id}/children?$top=1001")
    assert_graph_error(response, 400, "invalidRequest")
    assert_graph_error(await client.get(f"/me/drive/items/{folder.id}/children?$skiptoken=garbage!"), 400,
                       "invalidRequest")


async def test_select_is_tolerated(client: httpx.AsyncClient) -> None:
    response = await client.get("/me/drive/root/children", params={"$select": "id,name,folder"})
    assert response.status_code == 200
    for item in response.json()["value"]:
        assert set(item) <= {"id", "name", "folder"}


async def test_control_endpoints_over_http(graph: GraphEnv, client: httpx.AsyncClient) -> None:
    async with graph.anonymous() as http:
        added = await http.post(f"{graph.sim.base_url}/_sim/graph/add_file",
                                json={"parent": "/01_BRIDGE", "name": "New Chart.pdf", "size": 5000})
        assert added.status_code == 200, added.text
        assert added.json()["path"] == "/01_BRIDGE/New Chart.pdf" and added.json()["size"] == 5000
        again = await http.post(f"{graph.sim.base_url}/_sim/graph/add_file",
                                json={"parent": "/01_BRIDGE", "name": "new chart.PDF", "size": 1})
        assert again.status_code == 409
        wrong = await http.post(f"{graph.sim.base_url}/_sim/graph/rename", json={"nope": 1})
        assert wrong.status_code == 400
        state = (await http.get(f"{graph.sim.base_url}/_sim/graph/state")).json()
        assert state["personalDriveId"] == graph.sim.personal_drive_id
    listed = (await client.get(f"/me/drive/items/{added.json()['id']}")).json()
    assert listed["file"]["hashes"]["quickXorHash"] == added.json()["quickXorHash"]
