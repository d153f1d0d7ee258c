"""The simulated Supabase Storage REST API (``/storage/v1``): buckets, uploads, info, list, delete
(and move, in ``supabase_move``).

Shaped after supabase/storage: most refusals are HTTP 400 with the real code in the JSON body
(``{"statusCode": "409", "error": "Duplicate", "message": ...}``); refusals are decided from
the headers, before the body is read, and the framework then closes the connection instead of
swallowing a large upload. The Bearer JWT's ``sub`` is recorded as the object's owner.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from celeste_desktop.sim.http import Request, Response, Router
from celeste_desktop.sim.supabase_auth import (
    Caller,
    Refusal,
    check_apikey,
    describe_token_error,
    resolve_caller,
)
from celeste_desktop.sim.supabase_objects import (
    BucketConfig,
    DuplicateObject,
    ObjectStore,
    StoredObject,
    TransferCounters,
    counted,
    is_valid_key,
    receive_body,
)
from celeste_desktop.sim.tokens import TokenAuthority, TokenError

RLS_MESSAGE = "new row violates row-level security policy"
_MULTIPART_LIMIT = 64 * 1024 * 1024  # storage3 sends small files as multipart; big ones go raw


def storage_error(status_code: str, error: str, message: str) -> Response:
    """The real server's error body; the HTTP status is 400 for everything but a 500."""
    body = {"statusCode": status_code, "error": error, "message": message}
    return Response.json(body, 500 if status_code == "500" else 400)


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def http_date(ts: float) -> str:
    return email.utils.formatdate(ts, usegmt=True)


def storage_caller(tokens: TokenAuthority, request: Request) -> Caller:
    """The caller of a Storage (or TUS) request; a refused JWT answers 400 InvalidJWT."""
    claims = check_apikey(tokens, request)
    try:
        return resolve_caller(tokens, request, claims)
    except TokenError as exc:
        raise Refusal(storage_error("400", "InvalidJWT", describe_token_error(exc))) from None


class StorageApi:
    """Routes of ``/storage/v1`` except the resumable ones (see ``supabase_tus``)."""

    def __init__(
        self,
        store: ObjectStore,
        tokens: TokenAuthority,
        counters: TransferCounters,
        *,
        global_file_size_limit: int,
    ) -> None:
        self.store = store
        self.tokens = tokens
        self.counters = counters
        self.global_file_size_limit = global_file_size_limit

    def register(self, router: Router, prefix: str = "/storage/v1") -> None:
        from celeste_desktop.sim.supabase_move import MoveApi  # lazy: that module builds on this one

        MoveApi(self).register(router, prefix)
        router.add("GET", f"{prefix}/bucket", self.list_buckets)
        router.add("GET", f"{prefix}/bucket/{{bucket}}", self.get_bucket)
        router.add("POST", f"{prefix}/object/list/{{bucket}}", self.list_objects)
        for info in ("info/authenticated", "info"):
            router.add("GET", f"{prefix}/object/{info}/{{bucket}}/{{key:path}}", self.info)
        for kind in ("authenticated/", ""):
            router.add("HEAD", f"{prefix}/object/{kind}{{bucket}}/{{key:path}}", self.head)
            router.add("GET", f"{prefix}/object/{kind}{{bucket}}/{{key:path}}", self.download)
        router.add("POST", f"{prefix}/object/{{bucket}}/{{key:path}}", self.upload)
        router.add("PUT", f"{prefix}/object/{{bucket}}/{{key:path}}", self.upload)
        router.add("DELETE", f"{prefix}/object/{{bucket}}/{{key:path}}", self.delete_one)
        router.add("DELETE", f"{prefix}/object/{{bucket}}", self.delete_many)

    # -- shared checks ---------------------------------------------------------------------

    def bucket(self, name: str) -> BucketConfig:
        config = self.store.buckets.get(name)
        if config is None:
            raise Refusal(storage_error("404", "Bucket not found", "Bucket not found"))
        return config

    def size_limit(self, bucket: BucketConfig) -> int:
        limit = self.global_file_size_limit
        if bucket.file_size_limit is not None:
            limit = min(limit, bucket.file_size_limit)
        return limit

    def allowed(self, caller: Caller, bucket: str, key: str) -> bool:
        """The storage.objects policies: service role, or a yacht key under its own prefix."""
        if caller.bypasses_rls:
            return True
        config = self.store.buckets.get(bucket)
        return config is not None and config.yacht_policies and caller.may_touch_key(key)

    def bucket_visible(self, caller: Caller, name: str) -> bool:
        config = self.store.buckets.get(name)
        if config is None:
            return False
        return caller.bypasses_rls or (config.yacht_policies and caller.yacht_id is not None)

    def visible(self, caller: Caller, bucket: str, key: str) -> StoredObject:
        obj = self.store.get(bucket, key)
        if obj is None or not self.allowed(caller, bucket, key):
            raise Refusal(storage_error("404", "not_found", "Object not found"))
        return obj

    # -- buckets ---------------------------------------------------------------------------

    def _bucket_json(self, name: str, config: BucketConfig) -> dict[str, Any]:
        created = iso(self.store.bucket_created[name])
        return {
            "id": name,
            "name": name,
            "owner": "",
            "public": config.public,
            "file_size_limit": config.file_size_limit,
            "allowed_mime_types": list(config.allowed_mime_types) if config.allowed_mime_types else None,
            "created_at": created,
            "updated_at": created,
            "type": "STANDARD",
        }

    async def list_buckets(self, request: Request) -> Response:
        caller = storage_caller(self.tokens, request)
        buckets = sorted(self.store.buckets.items())
        return Response.json([self._bucket_json(n, c) for n, c in buckets if self.bucket_visible(caller, n)])

    async def get_bucket(self, request: Request) -> Response:
        caller = storage_caller(self.tokens, request)
        name = request.route_params["bucket"]
        if not self.bucket_visible(caller, name):
            raise Refusal(storage_error("404", "Bucket not found", "Bucket not found"))
        return Response.json(self._bucket_json(name, self.store.buckets[name]))

    # -- uploads ---------------------------------------------------------------------------

    async def upload(self, request: Request) -> Response:
        try:
            return await self._upload(request)
        except Refusal as refusal:
            # The real server closes the connection after a refused upload (close-connection
            # plugin) rather than read or drain a body it will not keep.
            refusal.response.close = True
            raise

    async def _upload(self, request: Request) -> Response:
        caller = storage_caller(self.tokens, request)
        bucket_name, key = request.route_params["bucket"], request.route_params["key"]
        if not is_valid_key(key):
            raise Refusal(storage_error("400", "InvalidKey", f"Invalid key: {key}"))
        bucket = self.bucket(bucket_name)
        # PUT is "update": it always overwrites; POST overwrites only with x-upsert: true.
        upsert = request.method == "PUT" or request.header("x-upsert", "") == "true"
        if not self.allowed(caller, bucket_name, key):
            raise Refusal(storage_error("403", "Unauthorized", RLS_MESSAGE))
        if not upsert and self.store.get(bucket_name, key) is not None:
            raise Refusal(storage_error("409", "Duplicate", "The resource already exists"))
        limit = self.size_limit(bucket)
        declared = request.header("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise Refusal(_too_large())
        content_type = request.header("content-type") or "application/octet-stream"
        cache_control = request.header("cache-control") or "no-cache"
        user_metadata = _decode_x_metadata(request.header("x-metadata"))
        body = counted(request.stream(), self._count_standard)
        if content_type.startswith("multipart/form-data"):
            form = await _read_multipart(body, content_type, min(limit, _MULTIPART_LIMIT))
            if form is None:
                raise Refusal(storage_error("400", "InvalidRequest", "No content provided"))
            file_bytes, content_type, fields = form
            if "cacheControl" in fields:
                cache_control = f"max-age={fields['cacheControl']}"
            user_metadata = _json_or_none(fields.get("metadata")) or user_metadata
            body = _single(file_bytes)
        self._check_mime(bucket, content_type)
        target = self.store.temp_file()
        received = await receive_body(body, target, limit=limit)
        if received is None:
            raise Refusal(_too_large())
        size, etag = received
        self.counters.standard_uploads += 1
        try:
            obj = self.store.commit(
                bucket_name, key, target, size=size, etag=etag, mimetype=content_type,
                cache_control=cache_control, owner=caller.sub, upsert=upsert,
                user_metadata=user_metadata,
            )
        except DuplicateObject:
            target.unlink(missing_ok=True)
            raise Refusal(storage_error("409", "Duplicate", "The resource already exists")) from None
        return Response.json({"Id": obj.id, "Key": f"{bucket_name}/{key}"})

    def _count_standard(self, nbytes: int) -> None:
        self.counters.standard_bytes += nbytes

    @staticmethod
    def _check_mime(bucket: BucketConfig, content_type: str) -> None:
        if not mime_allowed(bucket, content_type):
            kind = content_type.split(";", maxsplit=1)[0].strip().lower()
            raise Refusal(storage_error("415", "invalid_mime_type", f"mime type {kind} is not supported"))

    # -- reads -----------------------------------------------------------------------------

    def _object_headers(self, obj: StoredObject) -> dict[str, str]:
        return {
            "content-type": obj.mimetype,
            "etag": obj.etag,
            "last-modified": http_date(obj.updated_at),
            "cache-control": obj.cache_control,
        }

    async def head(self, request: Request) -> Response:
        caller = storage_caller(self.tokens, request)
        self.bucket(request.route_params["bucket"])
        obj = self.visible(caller, request.route_params["bucket"], request.route_params["key"])
        return Response(200, _empty(), self._object_headers(obj), length=obj.size)

    async def download(self, request: Request) -> Response:
        caller = storage_caller(self.tokens, request)
        self.bucket(request.route_params["bucket"])
        obj = self.visible(caller, request.route_params["bucket"], request.route_params["key"])
        return Response(200, self.store.stream(obj), self._object_headers(obj), length=obj.size)

    async def info(self, request: Request) -> Response:
        caller = storage_caller(self.tokens, request)
        self.bucket(request.route_params["bucket"])
        obj = self.visible(caller, request.route_params["bucket"], request.route_params["key"])
        body = {
            "id": obj.id,
            "name": obj.name,
            "version": obj.version,
            "bucket_id": obj.bucket,
            "size": obj.size,
            "content_type": obj.mimetype,
            "cache_control": obj.cache_control,
            "etag": obj.etag,
            "metadata": obj.user_metadata,
            "last_modified": iso(obj.updated_at),
            "created_at": iso(obj.created_at),
        }
        headers = {k: v for k, v in self._object_headers(obj).items() if k != "content-type"}
        return Response.json(body, headers=headers)

    async def list_objects(self, request: Request) -> Response:
        caller = storage_caller(self.tokens, request)
        bucket_name = request.route_params["bucket"]
        self.bucket(bucket_name)
        options = await request.json() or {}
        prefix = str(options.get("prefix") or "").strip("/")
        search = str(options.get("search") or "").lower()
        limit = int(options.get("limit") or 100)
        offset = int(options.get("offset") or 0)
        sort_by = options.get("sortBy") or {}
        base = f"{prefix}/" if prefix else ""
        folders: dict[str, dict[str, Any]] = {}
        files: list[dict[str, Any]] = []
        for obj in self.store.all(bucket_name):
            if not obj.name.startswith(base) or not self.allowed(caller, bucket_name, obj.name):
                continue
            rest = obj.name[len(base):]
            head, sep, _ = rest.partition("/")
            if not head.lower().startswith(search):
                continue
            if sep:
                folders.setdefault(head, _folder_entry(head))
            else:
                files.append(_file_entry(head, obj))
        entries = list(folders.values()) + files
        column = str(sort_by.get("column") or "name")
        reverse = str(sort_by.get("order") or "asc").lower() == "desc"
        entries.sort(key=lambda e: (e.get(column) or "", e["name"]), reverse=reverse)
        return Response.json(entries[offset : offset + limit])

    # -- deletes ---------------------------------------------------------------------------

    async def delete_one(self, request: Request) -> Response:
        caller = storage_caller(self.tokens, request)
        bucket_name, key = request.route_params["bucket"], request.route_params["key"]
        self.bucket(bucket_name)
        self.visible(caller, bucket_name, key)
        if not caller.bypasses_rls:  # no DELETE policy for yacht keys: zero rows deleted
            raise Refusal(storage_error("404", "not_found", "Object not found"))
        self.store.delete(bucket_name, key)
        return Response.json({"message": "Successfully deleted"})

    async def delete_many(self, request: Request) -> Response:
        caller = storage_caller(self.tokens, request)
        bucket_name = request.route_params["bucket"]
        self.bucket(bucket_name)
        options = await request.json() or {}
        deleted: list[dict[str, Any]] = []
        for name in options.get("prefixes") or []:
            if not isinstance(name, str) or not caller.bypasses_rls:
                continue  # no DELETE policy for yacht keys: RLS silently deletes nothing
            obj = self.store.delete(bucket_name, name)
            if obj is not None:
                deleted.append(_row(obj))
        return Response.json(deleted)


def mime_allowed(bucket: BucketConfig, content_type: str) -> bool:
    """The bucket's ``allowed_mime_types`` rule (``type/*`` wildcards allowed)."""
    allowed = bucket.allowed_mime_types
    if not allowed:
        return True
    kind = content_type.split(";", maxsplit=1)[0].strip().lower()
    return kind in allowed or f"{kind.split('/')[0]}/*" in allowed


def _too_large() -> Response:
    return storage_error("413", "Payload too large", "The object exceeded the maximum allowed size")


def _metadata(obj: StoredObject) -> dict[str, Any]:
    return {
        "eTag": obj.etag,
        "size": obj.size,
        "mimetype": obj.mimetype,
        "cacheControl": obj.cache_control,
        "lastModified": iso(obj.updated_at),
        "contentLength": obj.size,
        "httpStatusCode": 200,
    }


def _row(obj: StoredObject) -> dict[str, Any]:
    return {
        "bucket_id": obj.bucket,
        "name": obj.name,
        "id": obj.id,
        "owner": obj.owner,
        "version": obj.version,
        "created_at": iso(obj.created_at),
        "updated_at": iso(obj.updated_at),
        "last_accessed_at": iso(obj.updated_at),
        "metadata": _metadata(obj),
        "user_metadata": obj.user_metadata,
    }


def _file_entry(name: str, obj: StoredObject) -> dict[str, Any]:
    return {
        "name": name,
        "id": obj.id,
        "updated_at": iso(obj.updated_at),
        "created_at": iso(obj.created_at),
        "last_accessed_at": iso(obj.updated_at),
        "metadata": _metadata(obj),
    }


def _folder_entry(name: str) -> dict[str, Any]:
    return {
        "name": name, "id": None, "updated_at": None, "created_at": None,
        "last_accessed_at": None, "metadata": None,
    }


async def _empty() -> AsyncIterator[bytes]:
    return
    yield b""  # pragma: no cover - makes this an async generator


async def _single(data: bytes) -> AsyncIterator[bytes]:
    yield data


def _json_or_none(text: str | None) -> dict[str, Any] | None:
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _decode_x_metadata(header: str | None) -> dict[str, Any] | None:
    if not header:
        return None
    try:
        return _json_or_none(base64.b64decode(header).decode("utf-8"))
    except (binascii.Error, UnicodeDecodeError):
        return None


async def _read_multipart(
    body: AsyncIterator[bytes], content_type: str, limit: int
) -> tuple[bytes, str, dict[str, str]] | None:
    """The file part, its content type and the text fields of a multipart/form-data upload."""
    parts: list[bytes] = []
    total = 0
    async for chunk in body:
        total += len(chunk)
        if total > limit:
            raise Refusal(_too_large())
        parts.append(chunk)
    raw = b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + b"".join(parts)
    message = BytesParser(policy=HTTP).parsebytes(raw)
    if not message.is_multipart():
        return None
    file_part: tuple[bytes, str] | None = None
    fields: dict[str, str] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if not isinstance(name, str) or not isinstance(payload, bytes):
            continue
        if part.get_filename() is not None or name == "file":
            file_part = (payload, part.get_content_type())
        else:
            fields[name] = payload.decode("utf-8", "replace")
    if file_part is None:
        return None
    return file_part[0], fields.get("contentType") or file_part[1], fields
