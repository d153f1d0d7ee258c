"""The simulated Microsoft Graph v1.0 (OneDrive for Business, SharePoint) and its download host.

Two handlers, for two ``SimServer``s on different origins, as in the real service:

- ``GraphSim.handler`` (service "graph"): ``/v1.0/me``, drives, sites, items by id and by path,
  children with paging, delta, ``/content`` (302 to the download host); plus ``/_sim/graph/<op>``
  control endpoints (no auth) for out-of-process tests and benchmarks.
- ``GraphSim.download_handler`` (service "download"): pre-authenticated ``download.aspx`` URLs
  that carry a signed, expiring ``tempauth``, refuse an ``Authorization`` header and honour
  ``Range``. Bodies are generated while they stream.

Construct with a ``TokenAuthority`` shared with the simulated Entra ID, then set ``base_url``
and ``download_base_url`` once the servers have bound their ports.
"""

from __future__ import annotations

import base64
import bisect
import functools
import hashlib
import hmac
import re
import time
import urllib.parse
import uuid
from collections.abc import Callable
from typing import Any

from celeste_desktop.sim.graph_control import ControlMixin
from celeste_desktop.sim.graph_delta import DeltaEngine, DeltaGone
from celeste_desktop.sim.graph_items import (
    ContentSynth,
    RenderContext,
    content_info,
    flip_byte,
    iso,
    mime_for,
    parse_range,
    render_item,
    stream,
)
from celeste_desktop.sim.http import Request, Response
from celeste_desktop.sim.tenant import build_demo_tenant
from celeste_desktop.sim.tenant_model import FILE, LIBRARY, NOTEBOOK, Drive, Item, Tenant, TenantError
from celeste_desktop.sim.tokens import TokenAuthority, TokenError

GRAPH_AUDIENCES = frozenset({"https://graph.microsoft.com", "00000003-0000-0000-c000-000000000000"})
_USER = {"user.read", "user.readwrite", "user.readbasic.all", "user.read.all", "directory.read.all"}
_SITES = {"sites.read.all", "sites.readwrite.all", "sites.manage.all", "sites.fullcontrol.all"}
_ALL_FILES = {"files.read.all", "files.readwrite.all"} | _SITES
_OWN_FILES = {"files.read", "files.readwrite"} | _ALL_FILES
_WWW_AUTH = ('Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/'
             'authorize", client_id="00000003-0000-0000-c000-000000000000"')
_ITEM_BASE = re.compile(
    r"^(?P<base>/me/drive|/drives/(?P<drive>[^/:]+)|/sites/(?P<site>[^/:]+)/drive)"
    r"(?:/root|/items/(?P<item>[^/:]+))(?::(?P<path>[^:]*)(?P<colon>:)?)?(?P<suffix>/.*)?$")
_SITE_BY_PATH = re.compile(r"^/sites/(?P<host>[^/:]+):(?P<path>/[^:]+?):?(?P<suffix>/drives?)?$")
_DELTA = re.compile(r"^/delta(?:\((?:token=)?'?(?P<token>[^')]*)'?\))?$")
_PAGE_DEFAULT, _PAGE_MAX = 200, 1000


class GraphError(Exception):
    """An error answer of the Graph API."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}


class GraphSim(ControlMixin):
    """Simulated Graph over a ``Tenant`` (default: the demo yacht, seed 1); see the module docstring."""

    def __init__(
        self,
        *,
        tokens: TokenAuthority,
        tenant: Tenant | None = None,
        base_url: str = "",
        download_base_url: str = "",
        download_url_lifetime_s: float = 3600.0,
        audiences: frozenset[str] = GRAPH_AUDIENCES,
        repeat_delta_items: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.tokens = tokens
        self.tenant = tenant or build_demo_tenant()
        self.base_url = base_url  # e.g. https://127.0.0.1:50001 (without /v1.0)
        self.download_base_url = download_base_url
        self.download_url_lifetime_s = download_url_lifetime_s
        self.audiences = audiences
        self.clock = clock
        self.clock_skew_s = 0.0
        self.synth = ContentSynth(self.tenant.seed)
        self.delta = DeltaEngine(self.tenant, repeat_items=repeat_delta_items)
        self.hashes_hidden = False
        self.enrichment = False
        self.ignore_range = False
        self._secret = uuid.uuid4().bytes

    def now(self) -> float:
        return self.clock() + self.clock_skew_s

    # == Graph API ==============================================================================

    async def handler(self, request: Request) -> Response:
        raw_path = urllib.parse.urlsplit(request.target).path
        if raw_path.startswith("/_sim/graph/"):
            return await self.control_endpoint(request, raw_path[len("/_sim/graph/"):])
        request_id = str(uuid.uuid4())
        try:
            if request.method != "GET":
                raise GraphError(405, "invalidRequest", "The simulated Graph only reads.")
            if not raw_path.startswith("/v1.0/"):
                raise GraphError(400, "BadRequest", "Invalid version: only v1.0 is simulated.")
            claims = self._authenticate(request)
            scopes = {s.lower() for s in str(claims.get("scp", "")).split()}
            scopes |= {str(r).lower() for r in claims.get("roles", [])}
            with self.tenant.lock:
                response = self._route(request, raw_path[len("/v1.0"):], claims, scopes)
        except GraphError as exc:
            response = _error(exc.status, exc.code, exc.message, request_id, exc.headers)
        except TenantError as exc:
            status = 404 if exc.code == "itemNotFound" else 400
            response = _error(status, exc.code, str(exc), request_id)
        response.headers.setdefault("request-id", request_id)
        if "client-request-id" in request.headers:
            response.headers["client-request-id"] = request.headers["client-request-id"]
        return response

    def _authenticate(self, request: Request) -> dict[str, Any]:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise GraphError(401, "InvalidAuthenticationToken", "Access token is empty.",
                             {"www-authenticate": _WWW_AUTH})
        try:
            claims = self.tokens.verify(token.strip())
        except TokenError as exc:
            raise GraphError(exc.status, exc.code, exc.message,
                             {"www-authenticate": _WWW_AUTH + ', error="invalid_token"'}) from exc
        if claims.get("aud") not in self.audiences:
            raise GraphError(401, "InvalidAuthenticationToken", "Invalid audience.",
                             {"www-authenticate": _WWW_AUTH + ', error="invalid_token"'})
        return claims

    def _route(self, request: Request, path: str, claims: dict[str, Any], scopes: set[str]) -> Response:
        t = self.tenant
        if path == "/me":
            _need(scopes, _USER, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
            return Response.json({
                "@odata.context": f"{self.base_url}/v1.0/$metadata#users/$entity",
                "id": claims.get("oid", ""), "displayName": claims.get("name", t.user_name),
                "userPrincipalName": claims.get("upn", t.user_upn), "mail": claims.get("upn", t.user_upn),
                "givenName": None, "surname": None, "jobTitle": None,
                "businessPhones": [], "officeLocation": None, "preferredLanguage": "en-GB"})
        if path in ("/me/drive", "/me/drives"):
            drive = t.drives[t.personal_drive_id]
            self._need_drive(scopes, drive)
            body = self._drive_json(drive)
            return Response.json({"value": [body]} if path.endswith("s") else body)
        match = re.match(r"^/drives/([^/:]+)$", path)
        if match:
            drive = self._drive(match.group(1))
            self._need_drive(scopes, drive)
            return Response.json(self._drive_json(drive))
        if (path == "/sites" or path.startswith("/sites/")) and not _ITEM_BASE.match(path):
            return self._sites(request, path, scopes)
        match = _ITEM_BASE.match(path)
        if match is None:
            segment = path.rstrip("/").rsplit("/", 1)[-1] or path
            raise GraphError(400, "BadRequest", f"Resource not found for the segment '{segment}'.")
        return self._item_route(request, match, scopes)

    # -- sites and drives ------------------------------------------------------------------------

    def _sites(self, request: Request, path: str, scopes: set[str]) -> Response:
        _need(scopes, _SITES, "accessDenied", "Either scp or roles claim need to be present in the token.")
        t = self.tenant
        if path == "/sites":
            query = request.query.get("search", "").strip().strip('"').casefold()
            found = [s for s in t.sites.values()
                     if query in ("", "*") or query in s.display_name.casefold() or query in s.name.casefold()]
            return Response.json({"@odata.context": f"{self.base_url}/v1.0/$metadata#sites",
                                  "value": [self._site_json(s) for s in found]})
        by_path = _SITE_BY_PATH.match(path)
        if by_path:
            wanted = f"https://{by_path['host']}{urllib.parse.unquote(by_path['path'])}".casefold()
            site = next((s for s in t.sites.values() if s.web_url.casefold() == wanted), None)
            suffix = by_path["suffix"] or ""
        else:
            parts = path.split("/")
            site = t.sites.get(urllib.parse.unquote(parts[2]))
            suffix = "/" + "/".join(parts[3:]) if len(parts) > 3 else ""
        if site is None:
            raise GraphError(404, "itemNotFound", "Requested site could not be found")
        if suffix == "":
            return Response.json(self._site_json(site))
        drives = [t.drives[d] for d in site.drive_ids]
        if suffix == "/drives":
            return Response.json({"value": [self._drive_json(d) for d in drives]})
        if suffix == "/drive":
            return Response.json(self._drive_json(drives[0]))
        raise GraphError(400, "BadRequest", f"Resource not found for the segment '{suffix.strip('/')}'.")

    def _site_json(self, site: Any) -> dict[str, Any]:
        return {"id": site.id, "name": site.name, "displayName": site.display_name,
                "webUrl": site.web_url, "createdDateTime": iso(site.created),
                "lastModifiedDateTime": iso(site.created), "siteCollection": {"hostname": site.hostname}}

    def _drive_json(self, drive: Drive) -> dict[str, Any]:
        identity = {"email": drive.owner_upn, "displayName": drive.owner_name}
        owner = {"user": identity} if drive.drive_type != LIBRARY else \
            {"group": {"displayName": "Fleet Technical Owners"}}
        return {"id": drive.id, "driveType": drive.drive_type, "name": drive.name, "description": "",
                "createdDateTime": iso(drive.created), "lastModifiedDateTime": iso(self.now()),
                "webUrl": drive.web_url, "createdBy": {"user": {"displayName": "System Account"}},
                "owner": owner,
                "quota": {"deleted": 0, "remaining": 1_099_511_627_776 - 52_428_800_000, "state": "normal",
                          "total": 1_099_511_627_776, "used": 52_428_800_000}}

    def _drive(self, raw_id: str) -> Drive:
        drive = self.tenant.drives.get(urllib.parse.unquote(raw_id))
        if drive is None:
            raise GraphError(404, "itemNotFound", "The requested drive was not found.")
        return drive

    def _need_drive(self, scopes: set[str], drive: Drive) -> None:
        allowed = _OWN_FILES if drive.id == self.tenant.personal_drive_id else _ALL_FILES
        _need(scopes, allowed, "accessDenied", "Access denied")

    # -- items -----------------------------------------------------------------------------------

    def _item_route(self, request: Request, match: re.Match[str], scopes: set[str]) -> Response:
        t = self.tenant
        if match["drive"]:
            drive, style = self._drive(match["drive"]), "drives"
        elif match["site"]:
            _need(scopes, _SITES | {"files.read.all", "files.readwrite.all"}, "accessDenied", "Access denied")
            site = t.sites.get(urllib.parse.unquote(match["site"]))
            if site is None:
                raise GraphError(404, "itemNotFound", "Requested site could not be found")
            drive, style = t.drives[site.drive_ids[0]], "drives"
        else:
            drive, style = t.drives[t.personal_drive_id], "drive"
        self._need_drive(scopes, drive)
        if match["item"] and urllib.parse.unquote(match["item"]) != "root":
            item = t.items.get(urllib.parse.unquote(match["item"]))
            if item is None or item.deleted or item.drive_id != drive.id:
                raise GraphError(404, "itemNotFound", "The resource could not be found.")
        else:
            item = t.live(drive.root_id)
        if match["path"] is not None:
            segments = [urllib.parse.unquote(s) for s in match["path"].split("/") if s]
            found = t.resolve(item, segments)
            if found is None:
                raise GraphError(404, "itemNotFound", "The resource could not be found.")
            item = found
        suffix = match["suffix"] or ""
        if match["path"] is not None and suffix and not match["colon"]:
            raise GraphError(400, "BadRequest", "Path addressing needs a closing ':' before a segment.")
        ctx = RenderContext(t, self.synth, self.download_url, path_style=style,
                            select=_select(request), hashes_hidden=self.hashes_hidden)
        if suffix == "":
            return self._get_item(request, item, ctx)
        if suffix == "/children":
            return self._children(request, item, ctx)
        if suffix == "/content":
            return self._content_redirect(item)
        delta = _DELTA.match(suffix)
        if delta:
            prefix = urllib.parse.urlsplit(request.target).path.rsplit("/delta", 1)[0]
            return self._delta(request, drive, item, ctx, prefix, delta["token"])
        raise GraphError(400, "BadRequest", f"Resource not found for the segment '{suffix.strip('/')}'.")

    def _get_item(self, request: Request, item: Item, ctx: RenderContext) -> Response:
        body = render_item(item, ctx)
        etag = body.get("eTag") or render_item(item, RenderContext(ctx.tenant, ctx.synth, ctx.download_url))["eTag"]
        wanted = request.headers.get("if-none-match", "")
        if wanted and (wanted.strip() == "*" or etag in [w.strip().removeprefix("W/") for w in _split_etags(wanted)]):
            return Response(304, b"", {"etag": etag})
        body = {"@odata.context": f"{self.base_url}/v1.0/$metadata#drives('{item.drive_id}')/items/$entity", **body}
        return Response.json(body, headers={"etag": etag})

    def _children(self, request: Request, folder: Item, ctx: RenderContext) -> Response:
        top = _top(request)
        ordered = self.tenant.sorted_children(folder) if folder.children is not None else []
        start = 0
        skiptoken = request.query.get("$skiptoken") or request.query.get("skiptoken")
        if skiptoken:
            last = _decode_skiptoken(skiptoken)
            start = bisect.bisect_right(ordered, last, key=lambda i: _sort_key(self.tenant.items[i]))
        page = ordered[start : start + top]
        context = f"$metadata#drives('{folder.drive_id}')/items('{folder.id}')/children"
        body: dict[str, Any] = {
            "@odata.context": f"{self.base_url}/v1.0/{context}",
            "value": [render_item(self.tenant.items[i], ctx) for i in page]}
        if start + top < len(ordered) and page:
            query = {"$top": str(top), "$skiptoken": _encode_skiptoken(self.tenant.items[page[-1]])}
            if "$select" in request.query:
                query["$select"] = request.query["$select"]
            path = urllib.parse.urlsplit(request.target).path
            body["@odata.nextLink"] = f"{self.base_url}{path}?{urllib.parse.urlencode(query, safe='$,@.')}"
        return Response.json(body)

    def _content_redirect(self, item: Item) -> Response:
        if item.kind != FILE:
            message = "A OneNote notebook has no content to download." if item.kind == NOTEBOOK else \
                "The item is a folder and has no content."
            raise GraphError(404, "itemNotFound", message)
        if item.malware:
            raise GraphError(403, "malwareDetected", "Malware detected")
        return Response(302, b"", {"location": self.download_url(item)})

    def _delta(self, request: Request, drive: Drive, scope: Item, ctx: RenderContext, prefix: str,
               token: str | None) -> Response:
        if scope.kind == FILE:
            raise GraphError(400, "invalidRequest", "Delta can only be called on a folder.")
        if scope.id != drive.root_id and not drive.folder_delta_supported:
            raise GraphError(501, "notSupported", "view.delta can only be called on the root.")
        token = token or request.query.get("token")
        fresh = f"{self.base_url}{prefix}/delta"
        if token == "latest":
            latest = self.delta.latest_token(drive, scope)
            return Response.json({"value": [], "@odata.deltaLink": f"{fresh}?token={latest}"})
        exclude = request.headers.get("deltaexcludeparent", "").strip().lower() not in ("", "false") or \
            "deltaexcludeparent" in request.headers.get("prefer", "").lower()
        try:
            page = self.delta.page(drive, scope, token or None, _top(request), exclude)
        except DeltaGone as exc:
            raise GraphError(410, "resyncChangesApplyDifferences",
                             f"Resync required: {exc}. Replace any local items with the server's version.",
                             {"location": fresh}) from exc
        delta_ctx = RenderContext(ctx.tenant, ctx.synth, ctx.download_url, in_delta=True,
                                  path_style=ctx.path_style, select=ctx.select, hashes_hidden=ctx.hashes_hidden)
        body: dict[str, Any] = {
            "@odata.context": f"{self.base_url}/v1.0/$metadata#Collection(driveItem)",
            "value": [render_item(item, delta_ctx, as_deleted=gone) for item, gone in page.entries]}
        if page.next_token:
            extra = {k: v for k, v in request.query.items() if k in ("$top", "$select")}
            tail = "?" + urllib.parse.urlencode(extra, safe="$,@.") if extra else ""
            body["@odata.nextLink"] = f"{fresh}(token='{page.next_token}'){tail}"
        else:
            body["@odata.deltaLink"] = f"{fresh}?token={page.delta_token}"
        return Response.json(body)

    # == pre-authenticated downloads ============================================================

    def download_url(self, item: Item) -> str:
        """A pre-authenticated URL on the download host, valid for ``download_url_lifetime_s``.

        Built by hand, not with ``urlencode``: listings mint one per file, 1,000 a page.
        """
        expires = int(self.now() + self.download_url_lifetime_s)
        payload = base64.urlsafe_b64encode(f"{item.id}|{expires}".encode()).rstrip(b"=").decode()
        signature = hmac.new(self._secret, payload.encode(), hashlib.sha256).hexdigest()[:40]
        site_path = _site_path(self.tenant.drive_of(item).server_path)
        return (f"{self.download_base_url}{site_path}/_layouts/15/download.aspx?UniqueId="
                f"{Tenant.item_guid(item.id).lower()}&Translate=false&tempauth={payload}.{signature}&ApiVersion=2.0")

    def _check_tempauth(self, token: str) -> tuple[str, float] | None:
        """(item id, expiry) of a genuine tempauth, else None."""
        payload, _, signature = token.partition(".")
        expected = hmac.new(self._secret, payload.encode(), hashlib.sha256).hexdigest()[:40]
        if not hmac.compare_digest(expected, signature):
            return None
        item_id, _, expires = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode().partition("|")
        return item_id, float(expires)

    async def download_handler(self, request: Request) -> Response:
        raw_path = urllib.parse.urlsplit(request.target).path
        if not raw_path.endswith("/_layouts/15/download.aspx"):
            return _error(404, "itemNotFound", "Not a download URL.", "")
        if request.method not in ("GET", "HEAD"):
            return _error(405, "invalidRequest", "Downloads are GET only.", "")
        if "authorization" in request.headers:
            return _error(401, "invalidRequest", "A pre-authenticated URL takes no Authorization header.", "")
        grant = self._check_tempauth(request.query.get("tempauth", ""))
        if grant is None:
            return _error(401, "unauthenticated", "The tempauth token is not valid.", "")
        if self.now() >= grant[1]:
            return _error(401, "unauthenticated", "The pre-authenticated URL has expired; ask Graph for a new one.", "")
        with self.tenant.lock:
            item = self.tenant.items.get(grant[0])
            if item is None or item.deleted:
                return _error(404, "itemNotFound", "The file no longer exists.", "")
            if item.malware:
                return _error(403, "malwareDetected", "Malware detected", "")
            drive = self.tenant.drive_of(item)
            enriched = self.enrichment and drive.drive_type == LIBRARY and \
                item.name.lower().endswith((".docx", ".xlsx", ".pptx"))
            content = self.synth.build(item, enriched=enriched)
            etag = f'"{{{Tenant.item_guid(item.id)}}},{item.etag_version}"'
            mime, name, corrupt = mime_for(item), item.name, item.corrupt
        size = content.size
        headers = {"content-type": mime, "accept-ranges": "bytes", "etag": etag,
                   "content-disposition": f"attachment; filename*=UTF-8''{urllib.parse.quote(name)}"}
        start, end, status = 0, size, 200
        wanted = request.headers.get("range")
        if_range = request.headers.get("if-range")
        if wanted and not self.ignore_range and (if_range is None or if_range == etag):
            parsed = parse_range(wanted, size)
            if parsed == "unsatisfiable":
                return Response(416, b"", {"content-range": f"bytes */{size}"})
            if isinstance(parsed, tuple):
                start, end = parsed
                status = 206
                headers["content-range"] = f"bytes {start}-{end - 1}/{size}"
        if request.method == "HEAD":
            return Response(status, stream(iter(())), headers, length=end - start)
        chunks = self.synth.iter_bytes(content, start, end)
        if corrupt and size:
            chunks = flip_byte(chunks, start, size // 2)
        return Response(status, stream(chunks), headers, length=end - start)

    # == helpers for the control mixin ==========================================================

    def item_json(self, item: Item) -> dict[str, Any]:
        with self.tenant.lock:
            size, digest = content_info(self.synth, item) if item.kind == FILE else (0, "")
            return {"id": item.id, "driveId": item.drive_id, "name": item.name, "size": size,
                    "quickXorHash": digest, "path": "/" + "/".join(self.tenant.path_names(item))}


@functools.lru_cache(maxsize=64)
def _site_path(server_path: str) -> str:
    """``/personal/<user>/Documents`` → ``/personal/<user>``: download.aspx lives on the site."""
    return urllib.parse.quote(server_path.rsplit("/", 1)[0])


def _need(scopes: set[str], allowed: set[str], code: str, message: str) -> None:
    if not scopes & allowed:
        raise GraphError(403, code, message)


def _error(status: int, code: str, message: str, request_id: str, headers: dict[str, str] | None = None) -> Response:
    inner = {"date": iso(time.time()), "request-id": request_id, "client-request-id": request_id}
    return Response.json({"error": {"code": code, "message": message, "innerError": inner}}, status, headers)


def _select(request: Request) -> frozenset[str] | None:
    raw = request.query.get("$select") or request.query.get("select")
    return frozenset(p.strip() for p in raw.split(",") if p.strip()) if raw else None


def _top(request: Request) -> int:
    raw = request.query.get("$top") or request.query.get("top")
    if raw is None:
        return _PAGE_DEFAULT
    if not raw.isdigit() or int(raw) < 1:
        raise GraphError(400, "invalidRequest", f"Invalid value '{raw}' for $top.")
    if int(raw) > _PAGE_MAX:
        raise GraphError(400, "invalidRequest", f"The limit of '{_PAGE_MAX}' for Top query has been "
                         f"exceeded. The value from the incoming request is '{raw}'.")
    return int(raw)


def _sort_key(item: Item) -> tuple[bool, str, str]:
    return (item.kind == FILE, item.name.casefold(), item.id)


def _encode_skiptoken(item: Item) -> str:
    """Shaped like SharePoint's: base64 of the sort position of the last item on the page."""
    text = urllib.parse.urlencode({"Paged": "TRUE", "p_SortBehavior": "1", "p_FSObjType": int(item.kind != FILE),
                                   "p_FileLeafRef": item.name, "p_ID": item.id})
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _decode_skiptoken(token: str) -> tuple[bool, str, str]:
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        fields = dict(urllib.parse.parse_qsl(text, strict_parsing=True))
        return (fields["p_FSObjType"] == "0", fields["p_FileLeafRef"].casefold(), fields["p_ID"])
    except (ValueError, KeyError) as exc:
        raise GraphError(400, "invalidRequest", "Invalid $skiptoken.") from exc


def _split_etags(header: str) -> list[str]:
    return re.findall(r'(?:W/)?"[^"]*"', header) or [header]
