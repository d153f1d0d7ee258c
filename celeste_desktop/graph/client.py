"""The async Microsoft Graph client: who is signed in, which drives exist, what is in a folder.

Every request goes through the one `RetryPolicy` (throttling, backoff, one token refresh on
401) over the one pooled ``httpx.AsyncClient`` the app builds. Paging follows
``@odata.nextLink`` verbatim, but only to the Graph origin this client was given: the bearer
token must never travel to another host named in a reply body.

A body that is not the JSON it should be is usually a transfer cut short: it is fetched again
up to ``malformed_attempts`` times, then reported as `MalformedResponse`.
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import httpx

from celeste_desktop.domain.errors import (
    AccessDenied,
    CelesteError,
    MalformedResponse,
    NotFound,
)
from celeste_desktop.domain.models import Drive, RemoteItem
from celeste_desktop.graph.wire import (
    ITEM_SELECT,
    JsonObject,
    Site,
    UserProfile,
    download_url_of,
    load_json,
    parse_drive,
    parse_item,
    parse_item_page,
    parse_site,
    parse_user,
)
from celeste_desktop.net.policy import Classifier, RetryPolicy, safe_url

__all__ = ["DriveListing", "FolderCounts", "GraphClient", "encode_drive_path", "segment"]

log = logging.getLogger(__name__)

SERVICE = "Microsoft Graph"
MAX_PAGE_SIZE = 1000  # Graph's ceiling for $top


def segment(value: str) -> str:
    """An id as one URL path segment (``!`` and ``,`` of drive and site ids stay readable)."""
    return urllib.parse.quote(value, safe="!,")


def encode_drive_path(path: str) -> str:
    """``/a/b#1/ç`` → ``/a/b%231/%C3%A7``: every segment fully percent-encoded.

    Path addressing needs ``#``, ``%``, ``?`` and non-ASCII encoded per segment; encoding
    everything but unreserved characters is always valid and never ambiguous.
    """
    parts = [p for p in path.replace("\\", "/").split("/") if p]
    return "".join("/" + urllib.parse.quote(p, safe="") for p in parts)


@dataclass(frozen=True, slots=True)
class DriveListing:
    """The drives the account can pick from, and what could not be listed (with why)."""

    drives: tuple[Drive, ...]
    problems: tuple[CelesteError, ...] = ()


@dataclass(frozen=True, slots=True)
class FolderCounts:
    """What a folder holds (direct children, or the whole subtree when ``recursive``)."""

    folders: int = 0
    files: int = 0
    others: int = 0  # OneNote notebooks and other packages
    bytes: int = 0


class GraphClient:
    """Reads OneDrive and SharePoint through Microsoft Graph; see the module docstring."""

    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        policy: RetryPolicy,
        base_url: str,
        auth: httpx.Auth | None,
        refresh: Callable[[], Awaitable[None]] | None,
        malformed_attempts: int = 3,
    ) -> None:
        self._http = http
        self._policy = policy
        self._base = base_url.rstrip("/")
        base = httpx.URL(self._base)
        self._origin = (base.scheme, base.host, base.port)
        self._auth = auth
        self._refresh = refresh
        self._malformed_attempts = max(1, malformed_attempts)
        self.skipped_items = 0  # items Graph sent that could not be placed (no id…), for diagnostics

    @property
    def http(self) -> httpx.AsyncClient:
        return self._http

    @property
    def policy(self) -> RetryPolicy:
        return self._policy

    def url(self, path: str, **query: str) -> str:
        """An absolute Graph URL for an already-encoded ``path``."""
        url = self._base + path
        if query:
            url += "?" + urllib.parse.urlencode(query, safe="$,@.")
        return url

    # -- transport -----------------------------------------------------------------------------

    def _check_origin(self, url: str) -> httpx.URL:
        parsed = httpx.URL(url)
        if (parsed.scheme, parsed.host, parsed.port) != self._origin:
            raise MalformedResponse(
                f"{SERVICE} pointed the app to another address ({safe_url(parsed)}) to continue "
                "a listing; the app refuses to send the sign-in there. If a proxy rewrites "
                "traffic, check its settings.",
                service=SERVICE,
            )
        return parsed

    async def send(
        self,
        method: str,
        url: str,
        *,
        what: str,
        headers: dict[str, str] | None = None,
        classify: Classifier | None = None,
        stream: bool = False,
    ) -> httpx.Response:
        """One authorised request to Graph through the policy (redirects are not followed)."""
        target = self._check_origin(url)

        def build() -> httpx.Request:
            return httpx.Request(method, target, headers=headers)

        return await self._policy.send(
            self._http,
            build,
            service=SERVICE,
            stream=stream,
            refresh=self._refresh,
            classify=classify,
            what=what,
            auth=self._auth,
        )

    async def fetch_json(
        self,
        url: str,
        *,
        what: str,
        headers: dict[str, str] | None = None,
        classify: Classifier | None = None,
    ) -> tuple[httpx.Response, JsonObject | None]:
        """GET and parse; a body that does not parse is fetched again (it was probably cut).

        The JSON is None for error replies a custom ``classify`` chose to hand back.
        """
        for attempt in range(1, self._malformed_attempts + 1):
            response = await self.send("GET", url, what=what, headers=headers, classify=classify)
            if response.status_code >= 300:
                return response, None
            try:
                return response, load_json(response, service=SERVICE, what=what)
            except MalformedResponse as exc:
                if attempt >= self._malformed_attempts:
                    raise MalformedResponse(
                        f"{exc.message} (received {attempt} times in a row)",
                        status=exc.status,
                        service=SERVICE,
                    ) from exc
                log.warning("malformed reply from %s while %s; fetching it again", SERVICE, what)
        raise AssertionError("unreachable")  # pragma: no cover

    async def get_json(self, url: str, *, what: str, headers: dict[str, str] | None = None) -> JsonObject:
        response, data = await self.fetch_json(url, what=what, headers=headers)
        if data is None:
            raise MalformedResponse(
                f"{SERVICE} answered {response.status_code} instead of data while {what}.",
                status=response.status_code,
                service=SERVICE,
            )
        return data

    async def iter_values(self, url: str, *, what: str) -> AsyncIterator[list[object]]:
        """The ``value`` arrays of a paged collection, page by page."""
        next_url: str | None = url
        while next_url is not None:
            data = await self.get_json(next_url, what=what)
            values = data.get("value")
            if not isinstance(values, list):
                raise MalformedResponse(
                    f"{SERVICE} sent a page without its list of results while {what}.", service=SERVICE
                )
            yield values
            link = data.get("@odata.nextLink")
            next_url = link if isinstance(link, str) and link else None

    # -- who and which drives ------------------------------------------------------------------

    async def me(self) -> UserProfile:
        data = await self.get_json(self.url("/me"), what="reading the signed-in account")
        return parse_user(data, service=SERVICE)

    async def my_drive(self) -> Drive:
        data = await self.get_json(self.url("/me/drive"), what="opening your OneDrive")
        drive = parse_drive(data)
        if drive is None:
            raise MalformedResponse(f"{SERVICE} described your OneDrive without an id.", service=SERVICE)
        return drive

    async def my_drives(self) -> list[Drive]:
        found: list[Drive] = []
        async for values in self.iter_values(self.url("/me/drives"), what="listing your drives"):
            found.extend(d for d in (parse_drive(v) for v in values) if d is not None)
        return found

    async def get_drive(self, drive_id: str) -> Drive:
        data = await self.get_json(self.url(f"/drives/{segment(drive_id)}"), what="reading a drive")
        drive = parse_drive(data)
        if drive is None:
            raise MalformedResponse(f"{SERVICE} described a drive without an id.", service=SERVICE)
        return drive

    async def search_sites(self, query: str = "*") -> list[Site]:
        """SharePoint sites matching ``query`` (``*``: all the account can see). Needs Sites.Read.All."""
        found: list[Site] = []
        url = self.url("/sites", search=query)
        async for values in self.iter_values(url, what="searching SharePoint sites"):
            found.extend(s for s in (parse_site(v) for v in values) if s is not None)
        return found

    async def site_drives(self, site: Site | str) -> list[Drive]:
        """The document libraries of a site."""
        if isinstance(site, str):
            site = Site(site_id=site, name=site, display_name=site)
        found: list[Drive] = []
        url = self.url(f"/sites/{segment(site.site_id)}/drives")
        async for values in self.iter_values(url, what=f"listing the libraries of {site.display_name}"):
            found.extend(d for d in (parse_drive(v, site=site) for v in values) if d is not None)
        return found

    async def list_drives(self, *, include_sharepoint: bool = True, site_query: str = "*") -> DriveListing:
        """My OneDrive, my other drives, then SharePoint libraries; a refusal of the SharePoint
        part (no Sites.Read.All) is reported in ``problems`` and never hides my own drives."""
        drives: dict[str, Drive] = {}
        problems: list[CelesteError] = []
        try:
            mine = await self.my_drive()
            drives[mine.drive_id] = mine
        except NotFound as exc:  # an account without a OneDrive licence still has libraries
            problems.append(NotFound(
                "This account has no OneDrive (no licence, or it was never opened). SharePoint "
                "libraries are still listed.", status=exc.status, code=exc.code, service=SERVICE))
        try:
            for drive in await self.my_drives():
                drives.setdefault(drive.drive_id, drive)
        except (AccessDenied, NotFound) as exc:
            problems.append(exc)
        if include_sharepoint:
            try:
                sites = await self.search_sites(site_query)
            except AccessDenied as exc:
                sites = []
                problems.append(AccessDenied(
                    "SharePoint libraries could not be listed: the app has no Sites.Read.All "
                    "permission in this tenant, or the account may not search sites. Your own "
                    "OneDrive is listed; ask the tenant administrator to grant Sites.Read.All "
                    "to see the fleet's libraries.",
                    status=exc.status, code=exc.code, service=SERVICE, title="SharePoint not available"))
            for site in sites:
                try:
                    libraries = await self.site_drives(site)
                except (AccessDenied, NotFound) as exc:
                    problems.append(type(exc)(
                        f"The libraries of the SharePoint site {site.display_name} could not be "
                        f"listed: {exc.message}", status=exc.status, code=exc.code, service=SERVICE))
                    continue
                for drive in libraries:
                    drives.setdefault(drive.drive_id, drive)
        if not drives and problems:
            raise problems[0]
        return DriveListing(tuple(drives.values()), tuple(problems))

    # -- items ---------------------------------------------------------------------------------

    def item_url(self, drive_id: str, item_id: str, suffix: str = "") -> str:
        return self.url(f"/drives/{segment(drive_id)}/items/{segment(item_id)}{suffix}")

    async def get_item(self, drive_id: str, item_id: str) -> RemoteItem:
        item, _ = await self.get_item_for_download(drive_id, item_id, full=False)
        return item

    async def get_item_for_download(
        self, drive_id: str, item_id: str, *, full: bool = True
    ) -> tuple[RemoteItem, str | None]:
        """The item and (``full``) its current pre-authenticated download URL, in one request."""
        url = self.item_url(drive_id, item_id)
        if not full:
            url += "?" + urllib.parse.urlencode({"$select": ITEM_SELECT}, safe="$,@.")
        data = await self.get_json(url, what="reading an item")
        return self._as_item(data, drive_id, "reading an item"), download_url_of(data)

    async def get_by_path(self, drive_id: str, path: str) -> RemoteItem:
        """The item at ``path`` below the drive root (``""`` or ``/``: the root itself)."""
        encoded = encode_drive_path(path)
        suffix = f"/root:{encoded}:" if encoded else "/root"
        url = self.url(f"/drives/{segment(drive_id)}{suffix}", **{"$select": ITEM_SELECT})
        what = f"opening {path.strip('/') or 'the drive root'}"
        try:
            data = await self.get_json(url, what=what)
        except NotFound as exc:
            raise NotFound(
                f"Nothing at {path!r} in this drive: it may have been moved, renamed or deleted. "
                "Refresh the folder list.", status=exc.status, code=exc.code, service=SERVICE, path=path,
            ) from exc
        return self._as_item(data, drive_id, what)

    def _as_item(self, data: JsonObject, drive_id: str, what: str) -> RemoteItem:
        item = parse_item(data, drive_id=drive_id)
        if not isinstance(item, RemoteItem):
            raise MalformedResponse(
                f"{SERVICE} described an item without the fields needed to place it while {what}.",
                service=SERVICE,
            )
        return item

    async def iter_children(
        self, drive_id: str, item_id: str, page_size: int = MAX_PAGE_SIZE
    ) -> AsyncIterator[list[RemoteItem]]:
        """A folder's children, one page at a time (memory stays bounded for 100,000 children)."""
        top = str(min(MAX_PAGE_SIZE, max(1, page_size)))
        next_url: str | None = self.item_url(drive_id, item_id, "/children") + "?" + urllib.parse.urlencode(
            {"$top": top, "$select": ITEM_SELECT}, safe="$,@."
        )
        while next_url is not None:
            data = await self.get_json(next_url, what="listing a folder")
            page = parse_item_page(data, drive_id=drive_id, service=SERVICE, what="listing a folder")
            self.skipped_items += page.skipped
            yield [c for c in page.changes if isinstance(c, RemoteItem)]
            next_url = page.next_link

    async def folder_counts(self, drive_id: str, item_id: str, *, recursive: bool = False) -> FolderCounts:
        """Counts of a folder's children; ``recursive`` walks the subtree (one listing per folder)."""
        folders = files = others = size = 0
        pending = [item_id]
        while pending:
            folder_id = pending.pop()
            async for page in self.iter_children(drive_id, folder_id):
                for child in page:
                    if child.package_type is not None:
                        others += 1
                    elif child.is_folder:
                        folders += 1
                        if recursive:
                            pending.append(child.item_id)
                    else:
                        files += 1
                        size += child.size
        return FolderCounts(folders=folders, files=files, others=others, bytes=size)

    async def content_location(self, drive_id: str, item_id: str, *, what: str) -> str | None:
        """The pre-authenticated URL ``/content`` redirects to (the redirect is not followed)."""
        response = await self.send("GET", self.item_url(drive_id, item_id, "/content"), what=what, stream=True)
        try:
            location = response.headers.get("location") if 300 <= response.status_code < 400 else None
            # Read the (empty) body so the connection goes back to the pool: closing it unread
            # makes httpx drop it, and over the satellite link a new TCP+TLS setup per file costs
            # several round trips.
            await response.aread()
        finally:
            await response.aclose()
        return str(response.url.join(location)) if location else None

