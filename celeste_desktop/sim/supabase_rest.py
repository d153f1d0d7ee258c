"""The simulated PostgREST subset (``/rest/v1/{table}``) the app uses to register documents.

Insert (one object or an array), upsert with ``on_conflict`` and ``Prefer:
resolution=merge-duplicates|ignore-duplicates``, ``Prefer: return=representation|minimal``,
select with ``col=op.value`` filters, ``select``, ``order``, ``limit``/``offset`` and the
``Range`` header, update and delete with filters. A statement is all-or-nothing, as in one
Postgres transaction. Row-level security is the mirror in ``supabase_auth``: asking for the
rows back (``return=representation``) also needs the SELECT policy, as on the real service.
Rows persist as JSON lines under ``data_dir/rest/{table}.jsonl`` (last line per id wins);
each unique constraint has an in-memory index, so an insert or upsert costs O(1) per row.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from celeste_desktop.sim.http import Request, Response, Router
from celeste_desktop.sim.supabase_auth import Caller, Refusal, check_apikey, resolve_caller
from celeste_desktop.sim.supabase_objects import TransferCounters
from celeste_desktop.sim.supabase_tables import (
    TABLES,
    PgError,
    Table,
    coerce,
    now_text,
    permission_denied,
    rls_error,
    sort_key,
    unknown_column,
)
from celeste_desktop.sim.tokens import TokenAuthority, TokenError

Row = dict[str, Any]
_RESERVED = {"select", "order", "limit", "offset", "on_conflict", "columns", "apikey"}
_OPS = {"eq", "neq", "gt", "gte", "lt", "lte", "is", "in", "like", "ilike"}
_SINGLE = "application/vnd.pgrst.object+json"
_MAX_BODY = 64 * 1024 * 1024


class RowStore:
    """Rows per table, in insertion order, with an index per unique constraint.

    Writes go through `transaction`: changes apply in place with an undo log (all-or-nothing
    like one Postgres statement), and only a committed statement is appended to the table's
    JSON lines. Looking a row up by a unique key is a dict lookup, so an upsert costs O(1)
    whatever the size of the table. Stored rows are never mutated (a write replaces the dict),
    so readers may hold them. Thread-safe for tests reading beside the loop.
    """

    def __init__(self, directory: Path, tables: dict[str, Table]) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()
        self.rows: dict[str, dict[str, Row]] = {name: {} for name in tables}
        # table -> constraint columns -> unique key -> row id
        self.indexes: dict[str, dict[tuple[str, ...], dict[tuple[Any, ...], str]]] = {
            name: {columns: {} for columns in table.constraints(name).values()} for name, table in tables.items()
        }
        for name in tables:
            path = directory / f"{name}.jsonl"
            if not path.exists():
                continue
            rows = self.rows[name]
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a torn last line: that statement never committed
                if entry.get("op") == "delete":
                    rows.pop(entry["id"], None)
                else:
                    rows.pop(entry["row"]["id"], None)  # a rewritten row moves to the end, as live
                    rows[entry["row"]["id"]] = entry["row"]
            for columns, index in self.indexes[name].items():
                for row_id, row in rows.items():
                    key = _unique_key(row, columns)
                    if key is not None:
                        index[key] = row_id

    def snapshot(self, table: str) -> dict[str, Row]:
        with self.lock:
            return {key: dict(row) for key, row in self.rows[table].items()}

    def all(self, table: str) -> list[Row]:
        """The stored rows themselves (not copies): read them, never change them."""
        with self.lock:
            return list(self.rows[table].values())

    def lookup(self, table: str, columns: tuple[str, ...], values: tuple[Any, ...]) -> Row | None:
        """The row whose ``columns`` equal ``values`` (through an index when one covers them)."""
        wanted = dict(zip(columns, values, strict=True))
        with self.lock:
            for indexed, index in self.indexes[table].items():
                if set(indexed) == set(columns):
                    key = _unique_key(wanted, indexed)
                    row_id = index.get(key) if key is not None else None
                    return None if row_id is None else self.rows[table][row_id]
            for row in self.rows[table].values():
                if all(row.get(c) == v for c, v in wanted.items()):
                    return row
        return None

    @contextlib.contextmanager
    def transaction(self, table: str) -> Iterator[Transaction]:
        """One statement on ``table``: committed (and persisted) unless the block raises."""
        with self.lock:
            tx = Transaction(self, table)
            try:
                yield tx
            except BaseException:
                tx.rollback()
                raise
            tx.commit()

    def _set(self, table: str, row_id: str, row: Row | None) -> Row | None:
        rows = self.rows[table]
        old = rows.pop(row_id, None)
        indexes = self.indexes[table]
        if old is not None:
            for columns, index in indexes.items():
                key = _unique_key(old, columns)
                if key is not None and index.get(key) == row_id:
                    del index[key]
        if row is not None:
            rows[row_id] = row
            for columns, index in indexes.items():
                key = _unique_key(row, columns)
                if key is not None:
                    index[key] = row_id
        return old

    def _append(self, table: str, lines: list[str]) -> None:
        if lines:
            with (self.directory / f"{table}.jsonl").open("a", encoding="utf-8") as out:
                out.write("\n".join(lines) + "\n")


class Transaction:
    """The changes of one statement to one table; see `RowStore.transaction`."""

    def __init__(self, store: RowStore, table: str) -> None:
        self._store = store
        self._table = table
        self._undo: list[tuple[str, Row | None]] = []
        self._touched: dict[str, None] = {}  # ids in the order first written

    def rows(self) -> list[Row]:
        return list(self._store.rows[self._table].values())

    def get(self, row_id: str) -> Row | None:
        return self._store.rows[self._table].get(row_id)

    def find(self, columns: tuple[str, ...], row: Row) -> str | None:
        """The id of the row that has ``row``'s values in the unique ``columns`` (NULLs never match)."""
        for indexed, index in self._store.indexes[self._table].items():
            if set(indexed) == set(columns):
                key = _unique_key(row, indexed)
                return None if key is None else index.get(key)
        raise KeyError(f"no unique constraint on {columns} of {self._table}")

    def put(self, row: Row) -> None:
        self._write(row["id"], row)

    def remove(self, row_id: str) -> None:
        self._write(row_id, None)

    def _write(self, row_id: str, row: Row | None) -> None:
        old = self._store._set(self._table, row_id, row)
        self._undo.append((row_id, old))
        self._touched.setdefault(row_id)

    def rollback(self) -> None:
        for row_id, old in reversed(self._undo):
            self._store._set(self._table, row_id, old)
        self._undo.clear()

    def commit(self) -> None:
        rows = self._store.rows[self._table]
        lines: list[str] = []
        for row_id in self._touched:
            row = rows.get(row_id)
            if row is not None:
                lines.append(json.dumps({"op": "put", "row": row}, separators=(",", ":")))
            else:
                lines.append(json.dumps({"op": "delete", "id": row_id}))
        self._store._append(self._table, lines)


def _unique_key(row: Row, columns: tuple[str, ...]) -> tuple[Any, ...] | None:
    """``row``'s values in ``columns`` as a dict key, or None when one is NULL (NULLs never clash)."""
    values = []
    for column in columns:
        value = row.get(column)
        if value is None:
            return None
        values.append(json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else value)
    return tuple(values)


class RestApi:
    """PostgREST handlers over ``RowStore``; the schema is ``supabase_tables.TABLES``."""

    def __init__(
        self,
        tokens: TokenAuthority,
        counters: TransferCounters,
        data_dir: Path,
        clock: Callable[[], float],
        *,
        tables: dict[str, Table] | None = None,
        max_rows: int = 1000,
    ) -> None:
        self.tokens = tokens
        self.counters = counters
        self.clock = clock
        self.tables = tables or TABLES
        self.max_rows = max_rows
        self.store = RowStore(data_dir / "rest", self.tables)

    def register(self, router: Router, prefix: str = "/rest/v1") -> None:
        for method, handler in (
            ("GET", self.select),
            ("POST", self.insert),
            ("PATCH", self.update),
            ("DELETE", self.delete),
        ):
            router.add(method, f"{prefix}/{{table}}", self._guarded(handler))

    def _guarded(
        self, handler: Callable[[Request, str, Table, Caller], Awaitable[Response]]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            self.counters.rest_requests += 1
            caller = self._caller(request)
            name = request.route_params["table"]
            table = self.tables.get(name)
            try:
                if table is None:
                    raise PgError("PGRST205", f"Could not find the table 'public.{name}' in the schema cache")
                if caller.role == "anon" and not table.anon_granted:
                    raise permission_denied(name)
                return await handler(request, name, table, caller)
            except PgError as exc:
                return exc.response(anonymous=caller.role == "anon")

        return run

    def _caller(self, request: Request) -> Caller:
        claims = check_apikey(self.tokens, request)
        try:
            return resolve_caller(self.tokens, request, claims)
        except TokenError as exc:
            expired = "expired" in exc.message.lower()
            message = "JWT expired" if expired else "No suitable key or wrong key type"
            error = PgError(
                "PGRST303" if expired else "PGRST301",
                message,
                headers={"www-authenticate": f'Bearer error="invalid_token", error_description="{message}"'},
            )
            raise Refusal(error.response()) from None

    # -- reading ---------------------------------------------------------------------------

    def _readable(self, table: Table, caller: Caller, row: Row) -> bool:
        if caller.bypasses_rls:
            return True
        return table.yacht_can_select and caller.may_touch_yacht(row.get(table.yacht_column))

    async def select(self, request: Request, name: str, table: Table, caller: Caller) -> Response:
        rows = [r for r in self.store.all(name) if self._readable(table, caller, r)]
        rows = self._order(request, name, table, self._filter(request, name, table, rows))
        total = len(rows)
        offset = int(request.query.get("offset", "0"))
        limit = int(request.query["limit"]) if "limit" in request.query else None
        wanted = request.header("range")
        if wanted and re.fullmatch(r"\d+-\d*", wanted.strip()):
            first, _, last = wanted.strip().partition("-")
            offset = max(offset, int(first))
            if last:
                span = int(last) - int(first) + 1
                limit = span if limit is None else min(limit, span)
        limit = self.max_rows if limit is None else min(limit, self.max_rows)
        page = rows[offset : offset + limit]
        counted = "count=exact" in (request.header("prefer") or "")
        if counted and offset > 0 and offset >= total:
            raise PgError(
                "PGRST103",
                "Requested range not satisfiable",
                details=f"An offset of {offset} was requested, but there are only {total} rows.",
            )
        size = str(total) if counted else "*"
        content_range = f"{offset}-{offset + len(page) - 1}/{size}" if page else f"*/{size}"
        status = 206 if counted and len(page) < total else 200
        return self._rows_response(request, name, table, page, status, {"content-range": content_range})

    def _rows_response(
        self,
        request: Request,
        name: str,
        table: Table,
        rows: list[Row],
        status: int,
        headers: dict[str, str] | None = None,
    ) -> Response:
        shaped = [self._project(request, name, table, r) for r in rows]
        if _SINGLE in (request.header("accept") or ""):
            if len(shaped) != 1:
                raise PgError(
                    "PGRST116",
                    "Cannot coerce the result to a single JSON object",
                    details=f"The result contains {len(shaped)} rows",
                )
            return Response.json(shaped[0], 200 if status == 206 else status, headers)
        return Response.json(shaped, status, headers)

    def _project(self, request: Request, name: str, table: Table, row: Row) -> Row:
        wanted = request.query.get("select", "*").replace(" ", "")
        if wanted in ("", "*"):
            return dict(row)
        out: Row = {}
        for item in wanted.split(","):
            alias, _, column = item.rpartition(":")
            column = column.split("::")[0]
            if column == "*":
                out.update(row)
                continue
            if column not in table.columns:
                raise PgError("42703", f"column {name}.{column} does not exist")
            out[alias or column] = row.get(column)
        return out

    def _filter(self, request: Request, name: str, table: Table, rows: list[Row]) -> list[Row]:
        for key, values in request.query_multi.items():
            if key in _RESERVED:
                continue
            column = table.columns.get(key)
            if column is None:
                raise PgError("42703", f"column {name}.{key} does not exist")
            for expression in values:
                negate = expression.startswith("not.")
                op, _, operand = expression.removeprefix("not.").partition(".")
                if op not in _OPS:
                    raise PgError(
                        "PGRST100",
                        f'"failed to parse filter ({expression})" (line 1, column 1)',
                        details=f'unexpected "{op}" expecting an operator',
                    )
                test = _predicate(column, op, operand)
                rows = [r for r in rows if test(r.get(key)) != negate]
        return rows

    def _order(self, request: Request, name: str, table: Table, rows: list[Row]) -> list[Row]:
        spec = request.query.get("order")
        if not spec:
            return rows
        for term in reversed(spec.split(",")):
            column_name, *modifiers = term.strip().split(".")
            column = table.columns.get(column_name)
            if column is None:
                raise PgError("42703", f"column {name}.{column_name} does not exist")
            descending = "desc" in modifiers
            nulls_first = "nullsfirst" in modifiers or (descending and "nullslast" not in modifiers)
            present = [r for r in rows if r.get(column_name) is not None]
            absent = [r for r in rows if r.get(column_name) is None]
            present.sort(key=_sorter(column, column_name), reverse=descending)
            rows = absent + present if nulls_first else present + absent
        return rows

    # -- writing ---------------------------------------------------------------------------

    async def _payload(self, request: Request) -> Any:
        raw = await request.read(limit=_MAX_BODY)
        self.counters.rest_bytes += len(raw)
        try:
            return json.loads(raw)
        except ValueError:
            raise PgError("PGRST102", "Empty or invalid json") from None

    def _prepare(self, name: str, table: Table, obj: Row, columns: list[str]) -> Row:
        values: Row = {}
        for column_name in columns:
            column = table.columns.get(column_name)
            if column is None:
                raise unknown_column(name, column_name)
            values[column_name] = coerce(column, obj.get(column_name))
        return values

    def _complete(self, table: Table, values: Row) -> Row:
        row: Row = {}
        for column_name, column in table.columns.items():
            if column_name in values:
                row[column_name] = values[column_name]
            elif column.generated == "uuid":
                row[column_name] = str(uuid.uuid4())
            elif column.generated == "now":
                row[column_name] = now_text(self.clock())
            else:
                row[column_name] = json.loads(json.dumps(column.default))
        return row

    def _validate(self, name: str, table: Table, row: Row, caller: Caller, *, using: bool = False) -> None:
        for column_name, column in table.columns.items():
            if row.get(column_name) is None and not column.nullable:
                raise PgError(
                    "23502",
                    f'null value in column "{column_name}" of relation "{name}" violates not-null constraint',
                )
        for check in table.checks:
            if not check.test(row):
                raise PgError("23514", f'new row for relation "{name}" violates check constraint "{check.name}"')
        for fkey in table.foreign_keys:
            key = tuple(row.get(c) for c in fkey.columns)
            if any(v is None for v in key):
                continue  # MATCH SIMPLE: a NULL in the key skips the check
            if self.store.lookup(fkey.table, fkey.target, key) is None:
                raise PgError(
                    "23503",
                    f'insert or update on table "{name}" violates foreign key constraint "{fkey.name}"',
                    details=f"Key ({', '.join(fkey.columns)})=({', '.join(map(str, key))}) "
                    f'is not present in table "{fkey.table}".',
                )
        if caller.bypasses_rls:
            return
        allowed = caller.may_touch_yacht(row.get(table.yacht_column))
        if allowed and table.write_policy is not None and caller.yacht_id is not None:
            allowed = table.write_policy(row, caller.yacht_id)
        if not allowed:
            raise rls_error(name, using=using)

    def _unique_clash(self, name: str, table: Table, tx: Transaction, row: Row) -> None:
        """Raise 23505 if ``row`` would share a unique key with a stored row (write it after)."""
        for constraint, columns in table.constraints(name).items():
            if tx.find(columns, row) is not None:
                key = tuple(row.get(c) for c in columns)
                raise PgError(
                    "23505",
                    f'duplicate key value violates unique constraint "{constraint}"',
                    details=f"Key ({', '.join(columns)})=({', '.join(map(str, key))}) already exists.",
                )

    async def insert(self, request: Request, name: str, table: Table, caller: Caller) -> Response:
        payload = await self._payload(request)
        objects = payload if isinstance(payload, list) else [payload]
        if not all(isinstance(o, dict) for o in objects):
            raise PgError("PGRST102", "Empty or invalid json")
        prefer = _prefer(request)
        if not objects:
            return self._written(request, name, table, [], prefer, 201)
        if "columns" in request.query:
            columns = [c.strip().strip('"') for c in request.query["columns"].split(",")]
        else:
            columns = list(objects[0])
            if any(set(o) != set(columns) for o in objects):
                raise PgError("PGRST102", "All object keys must match")
        resolution = prefer.get("resolution")
        target = self._conflict_target(request, table)
        changed: list[Row] = []
        touched: set[str] = set()
        with self.store.transaction(name) as tx:
            for obj in objects:
                values = self._prepare(name, table, obj, columns)
                row = self._complete(table, values)
                existing_id = tx.find(target, row) if resolution else None
                if existing_id is not None and resolution == "ignore-duplicates":
                    continue
                if existing_id is not None:
                    if existing_id in touched:
                        raise PgError(
                            "21000",
                            "ON CONFLICT DO UPDATE command cannot affect row a second time",
                            hint="Ensure that no rows proposed for insertion within the same command "
                            "have duplicate constrained values.",
                        )
                    existing = tx.get(existing_id)
                    assert existing is not None
                    if not caller.may_touch_yacht(existing.get(table.yacht_column)):
                        raise rls_error(name, using=True)
                    row = {**existing, **values, "id": values.get("id", existing["id"])}
                    if table.touch_updated_at and "updated_at" in table.columns and "updated_at" not in values:
                        row["updated_at"] = now_text(self.clock())
                    self._validate(name, table, row, caller)
                    tx.remove(existing_id)
                else:
                    self._validate(name, table, row, caller)
                self._unique_clash(name, table, tx, row)
                tx.put(row)
                touched.add(row["id"])
                changed.append(row)
            return self._written(request, name, table, changed, prefer, 201, caller)

    def _conflict_target(self, request: Request, table: Table) -> tuple[str, ...]:
        if "on_conflict" not in request.query:
            return table.primary_key
        target = tuple(c.strip().strip('"') for c in request.query["on_conflict"].split(","))
        known = {tuple(sorted(cols)) for cols in table.constraints("").values()}
        if tuple(sorted(target)) not in known:
            raise PgError("42P10", "there is no unique or exclusion constraint matching the ON CONFLICT specification")
        return target

    async def update(self, request: Request, name: str, table: Table, caller: Caller) -> Response:
        payload = await self._payload(request)
        if not isinstance(payload, dict):
            raise PgError("PGRST102", "Empty or invalid json")
        values = self._prepare(name, table, payload, list(payload))
        changed: list[Row] = []
        with self.store.transaction(name) as tx:
            visible = [r for r in tx.rows() if caller.may_touch_yacht(r.get(table.yacht_column))]
            for old in self._filter(request, name, table, visible):
                row = {**old, **values}
                if table.touch_updated_at and "updated_at" in table.columns and "updated_at" not in values:
                    row["updated_at"] = now_text(self.clock())
                self._validate(name, table, row, caller)
                tx.remove(old["id"])
                self._unique_clash(name, table, tx, row)
                tx.put(row)
                changed.append(row)
            return self._written(request, name, table, changed, _prefer(request), 200, caller)

    async def delete(self, request: Request, name: str, table: Table, caller: Caller) -> Response:
        if caller.role == "authenticated" and not table.yacht_can_delete:
            raise permission_denied(name)
        with self.store.transaction(name) as tx:
            visible = [r for r in tx.rows() if caller.may_touch_yacht(r.get(table.yacht_column))]
            gone = self._filter(request, name, table, visible)
            for row in gone:
                tx.remove(row["id"])
            response = self._written(request, name, table, gone, _prefer(request), 200, caller)
        self._cascade(name, gone)
        return response

    def _cascade(self, name: str, parents: list[Row]) -> None:
        for child_name, child in self.tables.items():
            for fkey in child.foreign_keys:
                if fkey.table != name or not parents:
                    continue
                gone_keys = {tuple(p.get(c) for c in fkey.target) for p in parents}
                with self.store.transaction(child_name) as tx:
                    doomed = [r for r in tx.rows() if tuple(r.get(c) for c in fkey.columns) in gone_keys]
                    for row in doomed:
                        tx.remove(row["id"])
                self._cascade(child_name, doomed)

    def _written(
        self,
        request: Request,
        name: str,
        table: Table,
        rows: list[Row],
        prefer: dict[str, str],
        status: int,
        caller: Caller | None = None,
    ) -> Response:
        applied = ", ".join(f"{k}={v}" for k, v in prefer.items() if k in ("return", "resolution"))
        headers = {"preference-applied": applied} if applied else {}
        if prefer.get("return") != "representation":
            return Response(204 if status == 200 else status, b"", headers)
        if caller is not None and not all(self._readable(table, caller, r) for r in rows):
            raise rls_error(name)  # RETURNING needs the SELECT policy too
        return self._rows_response(request, name, table, rows, status, headers)


def _sorter(column: Any, column_name: str) -> Callable[[Row], Any]:
    return lambda row: sort_key(column, row[column_name])


def _prefer(request: Request) -> dict[str, str]:
    found: dict[str, str] = {}
    for item in (request.header("prefer") or "").split(","):
        key, _, value = item.strip().partition("=")
        if key:
            found[key] = value
    return found


def _predicate(column: Any, op: str, operand: str) -> Callable[[Any], bool]:
    if op == "is":
        wanted = {"null": None, "true": True, "false": False}.get(operand.lower(), "?")
        if wanted == "?":
            raise PgError("22P02", f'invalid input syntax for type boolean: "{operand}"')
        return lambda value: value is wanted
    if op in ("like", "ilike"):
        flags = re.IGNORECASE if op == "ilike" else 0
        pattern = re.compile("".join(".*" if c in "*%" else "." if c == "_" else re.escape(c) for c in operand), flags)
        return lambda value: value is not None and pattern.fullmatch(str(value)) is not None
    if op == "in":
        items = [i.strip().strip('"') for i in operand.strip("()").split(",") if i.strip()]
        wanted_set = [sort_key(column, coerce(column, i)) for i in items]
        return lambda value: value is not None and sort_key(column, value) in wanted_set
    target = sort_key(column, coerce(column, _typed_operand(column, operand)))
    compare: dict[str, Callable[[Any, Any], bool]] = {
        "eq": lambda a, b: a == b,
        "neq": lambda a, b: a != b,
        "gt": lambda a, b: a > b,
        "gte": lambda a, b: a >= b,
        "lt": lambda a, b: a < b,
        "lte": lambda a, b: a <= b,
    }
    check = compare[op]
    return lambda value: value is not None and check(sort_key(column, value), target)


def _typed_operand(column: Any, operand: str) -> Any:
    if column.type == "jsonb":
        try:
            return json.loads(operand)
        except ValueError:
            return operand
    return operand
