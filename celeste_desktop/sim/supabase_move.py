"""``POST /storage/v1/object/move`` of the simulated Supabase Storage: a server-side rename.

Shaped after supabase/storage (``routes/object/moveObject.ts`` and ``ObjectStorage.moveObject``):
the body is ``{bucketId, sourceKey, destinationKey, destinationBucket?}``; the move is an
UPDATE of the source row to the new name, so a yacht key needs SELECT and UPDATE on the source
and the destination must pass the same prefix rule (RLS refusal: 400 with statusCode "403").
The source must exist and be visible (404 "not_found"); an existing destination is refused
(409 "Duplicate": the rename would break the unique (bucket, name) index; there is no upsert);
a destination key outside the key rule is ``InvalidKey``. Moving a key onto itself succeeds
without doing anything. The answer is ``{"message": "Successfully moved", "Id", "Key"}``.
"""

from __future__ import annotations

import os
from typing import Any

from celeste_desktop.sim.http import Request, Response, Router
from celeste_desktop.sim.supabase_auth import Refusal
from celeste_desktop.sim.supabase_objects import is_valid_key
from celeste_desktop.sim.supabase_storage import RLS_MESSAGE, StorageApi, storage_caller, storage_error

__all__ = ["MoveApi"]


class MoveApi:
    """The move route, over the same buckets, objects and policies as ``StorageApi``."""

    def __init__(self, storage: StorageApi) -> None:
        self.storage = storage

    def register(self, router: Router, prefix: str = "/storage/v1") -> None:
        router.add("POST", f"{prefix}/object/move", self.move)

    async def move(self, request: Request) -> Response:
        caller = storage_caller(self.storage.tokens, request)
        try:
            body: Any = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise Refusal(storage_error("400", "InvalidRequest", "body must be object"))
        for name in ("bucketId", "sourceKey", "destinationKey"):
            if not isinstance(body.get(name), str):
                raise Refusal(storage_error("400", "InvalidRequest", f"body must have required property '{name}'"))
        bucket_name: str = body["bucketId"]
        source_key: str = body["sourceKey"]
        destination_key: str = body["destinationKey"]
        destination_bucket = body.get("destinationBucket") or bucket_name
        if not isinstance(destination_bucket, str):
            raise Refusal(storage_error("400", "InvalidRequest", "body/destinationBucket must be string"))
        if not is_valid_key(destination_key):
            raise Refusal(storage_error("400", "InvalidKey", f"Invalid key: {destination_key}"))
        self.storage.bucket(bucket_name)
        self.storage.bucket(destination_bucket)
        store = self.storage.store
        source = self.storage.visible(caller, bucket_name, source_key)  # SELECT on the source
        # The row is UPDATEd to its new name: USING on the old name, WITH CHECK on the new one.
        if not self.storage.allowed(caller, destination_bucket, destination_key):
            raise Refusal(storage_error("403", "Unauthorized", RLS_MESSAGE))
        if (bucket_name, source_key) == (destination_bucket, destination_key):
            return _moved(source.id, destination_key)
        if store.get(destination_bucket, destination_key) is not None:
            raise Refusal(storage_error("409", "Duplicate", "The resource already exists"))
        # Everything below runs without awaiting, so on the sim's loop the move is atomic.
        received = store.temp_file()
        os.replace(store.path_of(source), received)
        moved = store.commit(
            destination_bucket, destination_key, received,
            size=source.size, etag=source.etag, mimetype=source.mimetype,
            cache_control=source.cache_control, owner=caller.sub, upsert=False,
            user_metadata=source.user_metadata,
        )  # fmt: skip
        store.delete(bucket_name, source_key)
        return _moved(moved.id, destination_key)


def _moved(object_id: str, key: str) -> Response:
    return Response.json({"message": "Successfully moved", "Id": object_id, "Key": key})
