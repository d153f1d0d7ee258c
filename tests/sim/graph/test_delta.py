"""Delta queries of the simulated Graph: enumeration, changes, tokens, 410 and folder scopes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
import pytest

from celeste_desktop.sim.graph import GraphSim
from celeste_desktop.sim.graph_delta import DeltaGone

if TYPE_CHECKING:
    from .conftest import GraphEnv


async def run_delta(client: httpx.AsyncClient, url: str, headers: dict[str, str] | None = None
                    ) -> tuple[list[dict[str, Any]], str, int]:
    """Follow nextLinks verbatim to the deltaLink; returns every item seen, the link and the page count."""
    items: list[dict[str, Any]] = []
    pages = 0
    next_url = url
    while True:
        response = await client.get(next_url, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        pages += 1
        items += body["value"]
        if "@odata.deltaLink" in body:
            assert "@odata.nextLink" not in body
            return items, body["@odata.deltaLink"], pages
        next_url = body["@odata.nextLink"]


def last_wins(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    state: dict[str, dict[str, Any]] = {}
    for item in items:
        state[item["id"]] = item
    return state


async def test_full_enumeration_pages_repeats_and_ends_with_a_delta_link(graph: GraphEnv,
                                                                          client: httpx.AsyncClient) -> None:
    items, link, pages = await run_delta(client, "/me/drive/root/delta?$top=50")
    live = len(graph.sim.tenant.walk(graph.sim.find("/").id))  # the root comes too
    state = last_wins(items)
    assert len(state) == live and pages >= live // 50
    assert len(items) > len(state), "a full enumeration repeats some items; the last one wins"
    assert items[0]["root"] == {} and items[0]["id"] == graph.sim.find("/").id
    for item in items:
        assert "path" not in item["parentReference"]  # delta never gives paths
        assert "cTag" not in item  # Business delta leaves cTag out
    position = {item["id"]: index for index, item in enumerate(items)}
    for item in items[1:]:
        assert position[item["parentReference"]["id"]] < position[item["id"]], "parents come first"
    assert "token=" in link
    again, _, _ = await run_delta(client, link)
    assert again == []


async def test_changes_after_the_delta_link(graph: GraphEnv, client: httpx.AsyncClient) -> None:
    _, link, _ = await run_delta(client, "/me/drive/root/delta?$top=1000")
    sim = graph.sim
    added = sim.add_file("/04_MANUALS/Tender", "Jet Drive Manual.pdf", 40_000)
    edited = sim.change("/01_BRIDGE/Navigation/" + next(iter(sim.find("/01_BRIDGE/Navigation").children or {})))
    renamed = sim.rename("/08_MAINTENANCE/HVAC", "HVAC and Chillers")
    moved = sim.move("/14_PHOTOS/Deck", "/07_SAFETY")
    doomed = sim.find("/13_CERTIFICATIONS/Crew")
    doomed_children = set((doomed.children or {}).values())
    sim.delete("/13_CERTIFICATIONS/Crew")
    items, link2, _ = await run_delta(client, link)
    state = last_wins(items)
    assert state[added.id]["name"] == "Jet Drive Manual.pdf" and "file" in state[added.id]
    assert state[added.id]["parentReference"]["id"] == sim.find("/04_MANUALS/Tender").id
    assert state[edited.id]["file"]["hashes"]["quickXorHash"]
    assert state[renamed.id]["name"] == "HVAC and Chillers"
    assert state[moved.id]["parentReference"]["id"] == sim.find("/07_SAFETY").id
    for gone in {doomed.id} | doomed_children:
        assert state[gone]["deleted"] == {"state": "deleted"}
        assert "name" not in state[gone]  # Business tombstones carry no name
    # Ancestors come along: the new file's folders up to the root.
    assert {sim.find("/04_MANUALS").id, sim.find("/04_MANUALS/Tender").id, sim.find("/").id} <= set(state)
    # Nothing else changed.
    assert set(state) <= {added.id, edited.id, renamed.id, moved.id, doomed.id, *doomed_children} | {
        sim.find(p).id for p in ("/", "/04_MANUALS", "/04_MANUALS/Tender", "/01_BRIDGE", "/01_BRIDGE/Navigation",
                                 "/08_MAINTENANCE", "/07_SAFETY", "/13_CERTIFICATIONS")}
    assert (await run_delta(client, link2))[0] == []


async def test_delta_exclude_parent_header(graph: GraphEnv, client: httpx.AsyncClient) -> None:
    latest = (await client.get("/me/drive/root/delta?token=latest")).json()
    assert latest["value"] == [] and "token=" in latest["@odata.deltaLink"]
    added = graph.sim.add_file("/05_DRAWINGS/Piping", "Bilge Piping Rev C.pdf", 9_000)
    with_parents, _, _ = await run_delta(client, latest["@odata.deltaLink"])
    assert [i["id"] for i in with_parents][-1] == added.id and len(with_parents) == 4
    alone, _, _ = await run_delta(client, latest["@odata.deltaLink"], headers={"deltaExcludeParent": "true"})
    assert [i["id"] for i in alone] == [added.id]
    preferred, _, _ = await run_delta(client, latest["@odata.deltaLink"], headers={"Prefer": "deltaExcludeParent"})
    assert [i["id"] for i in preferred] == [added.id]


async def test_expired_tokens_answer_410_with_a_fresh_enumeration(graph: GraphEnv,
                                                                   client: httpx.AsyncClient) -> None:
    first = await client.get("/me/drive/root/delta?$top=20")
    next_link = first.json()["@odata.nextLink"]
    _, delta_link, _ = await run_delta(client, "/me/drive/root/delta?$top=1000")
    graph.sim.expire_delta_tokens()
    for stale in (next_link, delta_link):
        gone = await client.get(stale)
        assert gone.status_code == 410
        assert gone.json()["error"]["code"] == "resyncChangesApplyDifferences"
        assert gone.headers["location"].endswith("/me/drive/root/delta")
    items, _, _ = await run_delta(client, gone.headers["location"])
    assert len(last_wins(items)) == len(graph.sim.tenant.walk(graph.sim.find("/").id))
    forged = await client.get("/me/drive/root/delta?token=bm90LWEtdG9rZW4")
    assert forged.status_code == 410


async def test_folder_delta_and_its_scope(graph: GraphEnv, client: httpx.AsyncClient) -> None:
    sim = graph.sim
    folder = sim.find("/02_ENGINEERING")
    items, link, _ = await run_delta(client, f"/me/drive/items/{folder.id}/delta")
    ids = set(last_wins(items))
    assert items[0]["id"] == folder.id
    assert ids == {i.id for i in sim.tenant.walk(folder.id)}
    outside = sim.move("/02_ENGINEERING/Hydraulics", "/03_SYSTEMS")  # leaves the folder's view
    inside = sim.move("/03_SYSTEMS/CCTV", "/02_ENGINEERING")  # arrives with everything below it
    sim.add_file("/01_BRIDGE", "Unrelated.pdf", 3_000)
    changes, _, _ = await run_delta(client, link)
    state = last_wins(changes)
    assert state[outside.id]["deleted"] == {"state": "deleted"}
    assert {i.id for i in sim.tenant.walk(inside.id)} <= set(state)
    assert all(sim.tenant.is_within(sim.tenant.items[i], folder.id) or i == outside.id for i in state)
    by_path = await client.get("/me/drive/root:/02_ENGINEERING:/delta")
    assert by_path.status_code == 200 and by_path.json()["value"][0]["id"] == folder.id


async def test_folder_delta_can_be_unsupported(graph: GraphEnv, client: httpx.AsyncClient) -> None:
    graph.sim.set_folder_delta_supported(False)
    folder = graph.sim.find("/02_ENGINEERING")
    response = await client.get(f"/me/drive/items/{folder.id}/delta")
    assert response.status_code == 501
    assert response.json()["error"] == {**response.json()["error"], "code": "notSupported",
                                        "message": "view.delta can only be called on the root."}
    assert (await client.get("/me/drive/root/delta?token=latest")).status_code == 200


async def test_delta_links_outlive_a_restart_of_the_same_tenant(graph: GraphEnv, client: httpx.AsyncClient) -> None:
    latest = (await client.get("/me/drive/root/delta?token=latest")).json()["@odata.deltaLink"]
    token = latest.split("token=", 1)[1]
    restarted = GraphSim(tokens=graph.tokens)  # the same seed: the same tenant, ids and secret
    drive = restarted.tenant.drives[restarted.personal_drive_id]
    root = restarted.find("/")
    assert restarted.delta.page(drive, root, token, 200, False).entries == []
    graph.sim.add_file("/01_BRIDGE", "After.pdf", 2_000)
    ahead = (await client.get("/me/drive/root/delta?token=latest")).json()["@odata.deltaLink"]
    response = await client.get(ahead)
    assert response.status_code == 200
    with pytest.raises(DeltaGone):  # a token from ahead of the restarted log: resync
        restarted.delta.page(drive, root, ahead.split("token=", 1)[1], 200, False)
