"""The Graph client against the simulated Graph over real sockets: accounts, drives, items, paging,
retries of cut replies, token refresh and throttling."""

from __future__ import annotations

import urllib.parse

import httpx
import pytest
from graph_helpers import GraphHarness, StaticTokenAuth, mint

from celeste_desktop.domain.errors import AccessDenied, MalformedResponse, NotFound
from celeste_desktop.domain.models import DriveKind
from celeste_desktop.graph.client import GraphClient, encode_drive_path
from celeste_desktop.net.clock import FakeClock
from celeste_desktop.net.policy import RetryPolicy, Throttled
from celeste_desktop.sim.tenant_model import FILE, FOLDER, NOTEBOOK


async def test_me(graph: GraphHarness) -> None:
    me = await graph.client.me()
    assert me.user_principal_name == graph.sim.graph.tenant.user_upn
    assert me.display_name == "Morgan Reyes"


async def test_list_drives_finds_my_onedrive_and_sharepoint_libraries(graph: GraphHarness) -> None:
    listing = await graph.client.list_drives()
    assert listing.problems == ()
    by_id = {d.drive_id: d for d in listing.drives}
    assert by_id[graph.personal].kind is DriveKind.ONEDRIVE
    assert by_id[graph.personal].owner == "Morgan Reyes"
    library = by_id[graph.library]
    assert library.kind is DriveKind.SHAREPOINT and library.owner == "Fleet Technical" and library.site_id
    assert len(listing.drives) == 2  # /me/drive and /me/drives name the same drive: listed once


async def test_without_sites_read_all_my_drives_are_still_listed(graph: GraphHarness) -> None:
    client = graph.client_with("Files.Read.All User.Read")
    listing = await client.list_drives()
    assert [d.drive_id for d in listing.drives] == [graph.personal]
    (problem,) = listing.problems
    assert isinstance(problem, AccessDenied) and "Sites.Read.All" in problem.message


async def test_the_demo_top_folders_are_listed_with_counts(graph: GraphHarness) -> None:
    root = await graph.client.get_by_path(graph.personal, "")
    assert root.is_root and root.parent_id is None
    children = [c async for page in graph.client.iter_children(graph.personal, root.item_id) for c in page]
    by_name = {c.name: c for c in children}
    tenant = graph.sim.graph.tenant
    for name in ("01_BRIDGE", "02_ENGINEERING"):
        listed = by_name[name]
        folder = graph.item(f"/{name}")
        assert listed.is_folder and listed.parent_id == root.item_id
        assert listed.child_count == len(folder.children or {})
        kids = [tenant.items[i] for i in (folder.children or {}).values()]
        counts = await graph.client.folder_counts(graph.personal, listed.item_id)
        assert counts.folders == sum(k.kind == FOLDER for k in kids)
        assert counts.files == sum(k.kind == FILE for k in kids)
        assert counts.others == sum(k.kind == NOTEBOOK for k in kids)
        # A OneNote notebook counts as one item: its sections are not files to copy.
        below = [i for i in tenant.walk(folder.id)[1:] if tenant.items[i.parent_id or ""].kind != NOTEBOOK]
        everything = await graph.client.folder_counts(graph.personal, listed.item_id, recursive=True)
        assert everything.files == sum(i.kind == FILE for i in below)
        assert everything.bytes == sum(graph.sim.graph.item_json(i)["size"] for i in below if i.kind == FILE)
    assert by_name["01_BRIDGE"].child_count and by_name["02_ENGINEERING"].child_count


@pytest.mark.parametrize(
    "path",
    [
        "/07_SAFETY/Fire Suppression/Fiche sécurité #2.pdf",
        "/02_ENGINEERING/Fuel System/Fuel 100% Transfer Log.xlsx",
        "/04_MANUALS/Generators/Manuel d'entretien – Générateur.pdf",
        "08_maintenance/main engines/ÖLWECHSEL PROTOKOLL 2024.XLSX",  # path addressing ignores case
    ],
)
async def test_get_by_path_encodes_awkward_names(graph: GraphHarness, path: str) -> None:
    item = await graph.client.get_by_path(graph.personal, path)
    assert item.name.casefold() == path.rsplit("/", 1)[-1].casefold()
    assert item.item_id == graph.item("/" + path.lstrip("/")).id
    assert item.quickxor and item.ctag and not item.is_folder


def test_drive_paths_are_encoded_per_segment() -> None:
    assert encode_drive_path("/a b/#1/100%/ç/") == "/a%20b/%231/100%25/%C3%A7"
    assert encode_drive_path("") == "" and encode_drive_path("//") == ""


async def test_a_path_over_400_characters(graph: GraphHarness) -> None:
    parent = "/06_PROCEDURES"
    for n in range(8):
        name = f"Level {n} " + "Ωmega deck records " * 3
        graph.sim.graph.add_folder(parent, name.strip())
        parent += "/" + name.strip()
    graph.sim.graph.add_file(parent, "Final #é.pdf", 2_000)
    path = parent + "/Final #é.pdf"
    assert len(path) > 400
    item = await graph.client.get_by_path(graph.personal, path)
    assert item.name == "Final #é.pdf" and item.size == 2_000


async def test_get_by_path_of_nothing_says_what_is_missing(graph: GraphHarness) -> None:
    with pytest.raises(NotFound) as caught:
        await graph.client.get_by_path(graph.personal, "/01_BRIDGE/No Such Folder")
    assert caught.value.path == "/01_BRIDGE/No Such Folder" and "Refresh" in caught.value.message


async def test_notebooks_malware_and_files_without_hashes_parse(graph: GraphHarness) -> None:
    notebook = await graph.client.get_by_path(graph.personal, "/01_BRIDGE/Bridge Notebook")
    assert notebook.package_type == "oneNote" and not notebook.is_folder
    flagged = await graph.client.get_by_path(graph.personal, "/04_MANUALS/Navigation/ECDIS Chart Updater.zip")
    assert flagged.malware
    licence = await graph.client.get_by_path(graph.personal, "/13_CERTIFICATIONS/Radio/Ship Station Licence 2024.pdf")
    assert licence.quickxor is None and licence.size == 64_000
    by_id = await graph.client.get_item(graph.personal, licence.item_id)
    assert by_id == licence


async def test_paging_past_1000_children_follows_next_link_verbatim(graph: GraphHarness) -> None:
    folder = graph.sim.graph.add_folder("/", "Bulk")
    graph.sim.graph.add_files("/Bulk", 2_345, 10, prefix="Log ")
    pages = [page async for page in graph.client.iter_children(graph.personal, folder.id)]
    assert [len(p) for p in pages] == [1000, 1000, 345]
    assert len({c.item_id for p in pages for c in p}) == 2_345
    # The second request is exactly the nextLink the first page carried.
    first = [s for s in graph.sent if s.url.path.endswith(f"/items/{folder.id}/children")]
    raw = await graph.http.get(str(first[0].url), headers={"Authorization": f"Bearer {graph.auth.token}"})
    assert str(first[1].url) == raw.json()["@odata.nextLink"]


@pytest.mark.slow
async def test_100000_children_come_page_by_page(graph: GraphHarness) -> None:
    folder = graph.sim.graph.add_folder("/", "Huge")
    graph.sim.graph.add_files("/Huge", 100_000, 1)
    requests_before = len(graph.sent)
    total = pages = 0
    async for page in graph.client.iter_children(graph.personal, folder.id):
        pages += 1
        # Memory stays bounded: each page is handed over before the next one is asked for.
        assert len(graph.sent) - requests_before == pages
        assert len(page) <= 1000
        total += len(page)
    assert (total, pages) == (100_000, 100)


async def test_a_cut_reply_is_fetched_again(graph: GraphHarness) -> None:
    graph.sim.faults.script("graph", "malformed", times=2, path="/me$")
    me = await graph.client.me()
    assert me.display_name == "Morgan Reyes"


async def test_a_reply_cut_every_time_fails_clearly(graph: GraphHarness) -> None:
    graph.sim.faults.script("graph", "malformed", times=3, path="/children$")
    root = await graph.client.get_by_path(graph.personal, "/")
    with pytest.raises(MalformedResponse) as caught:
        async for _ in graph.client.iter_children(graph.personal, root.item_id):
            pass
    assert "3 times" in caught.value.message and "listing a folder" in caught.value.message


async def test_an_expired_token_is_refreshed_once(graph: GraphHarness) -> None:
    tokens = iter([mint(graph.sim, lifetime_s=0), mint(graph.sim)])
    auth = StaticTokenAuth(lambda: next(tokens))
    client = GraphClient(http=graph.http, policy=graph.policy, base_url=graph.sim.settings_json()["graph_url"],
                         auth=auth, refresh=auth.refresh)
    assert (await client.me()).display_name == "Morgan Reyes"
    assert auth.refreshes == 1


async def test_a_429_storm_waits_as_told_and_sends_nothing_meanwhile(graph: GraphHarness) -> None:
    graph.sim.faults.script("graph", "429", times=3, retry_after=5, path="/me$")
    start = graph.clock.monotonic()
    await graph.client.me()
    sent = [s.at - start for s in graph.sent if s.url.path.endswith("/me")]
    assert sent == [0.0, 5.0, 10.0, 15.0]  # every pause honoured, nothing sent during one
    throttled = [e for e in graph.events if isinstance(e, Throttled)]
    assert [e.seconds for e in throttled] == [5.0, 5.0, 5.0]


async def test_throttling_pauses_every_request(graph: GraphHarness) -> None:
    """Concurrent calls: a 429 to one pauses all; no request starts inside any pause."""
    import asyncio

    pauses: list[tuple[float, float]] = []

    def on_event(event: object) -> None:
        if isinstance(event, Throttled):
            now = graph.clock.monotonic()
            pauses.append((now, now + event.seconds))

    policy = RetryPolicy(clock=graph.clock, on_event=on_event)
    client = GraphClient(http=graph.http, policy=policy, base_url=graph.sim.settings_json()["graph_url"],
                         auth=graph.auth, refresh=graph.auth.refresh)
    graph.sim.faults.script("graph", "429", times=4, retry_after=3)
    paths = ["/01_BRIDGE", "/02_ENGINEERING", "/03_SYSTEMS", "/04_MANUALS", "/05_DRAWINGS", "/07_SAFETY"]
    items = await asyncio.gather(*(client.get_by_path(graph.personal, p) for p in paths))
    assert [i.name for i in items] == [p.strip("/") for p in paths]
    assert pauses
    for sent in graph.sent:
        assert not any(begin < sent.at < end for begin, end in pauses)
    assert graph.clock.elapsed >= 3.0


async def test_next_links_to_another_host_are_refused() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        assert request.url.host == "graph.test"
        return httpx.Response(200, json={"value": [], "@odata.nextLink": "https://collector.test/v1.0/steal"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        client = GraphClient(http=http, policy=RetryPolicy(clock=FakeClock()), base_url="https://graph.test/v1.0",
                             auth=None, refresh=None)
        with pytest.raises(MalformedResponse) as caught:
            async for _ in client.iter_children("b!d", "item"):
                pass
    assert len(seen) == 1
    assert "collector.test" in caught.value.message and "steal" in caught.value.message


async def test_ids_are_encoded_in_urls() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.raw_path.decode())
        return httpx.Response(200, json={"id": "x/y", "name": "f", "parentReference": {"id": "p"}})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        client = GraphClient(http=http, policy=RetryPolicy(clock=FakeClock()), base_url="https://graph.test/v1.0",
                             auth=None, refresh=None)
        await client.get_item("b!drive,1", "x/y#?")
    path = urllib.parse.urlsplit(seen[0]).path
    assert path == "/v1.0/drives/b!drive,1/items/x%2Fy%23%3F"
