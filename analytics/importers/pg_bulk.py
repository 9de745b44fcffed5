"""The PostgreSQL bulk engine: COPY (binary and CSV), staging tables, deferred indexes and keys.

One implementation for every bulk write of the analytics app: the import
(analytics.importers.oulad, analytics.importers.clicks) and the events API's
rollup upsert (analytics.ingest.services). Binding thousands of parameters
costs more client time than the database's whole work, so rows travel as a
COPY stream instead: binary records built by numpy (`binary_records`), CSV
written by Arrow (`bulk_write`), or tuples adapted by psycopg (`copy_then`).

`bulk_write` falls back to batched INSERTs on other databases (SQLite: tests
and development), so the code above it has one path.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import zlib
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.csv as pa_csv
from django.conf import settings
from django.db import connection

PG_EPOCH = dt.date(2000, 1, 1)  # PostgreSQL's binary date/timestamp origin
PG_EPOCH_UTC = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
BINARY_KINDS = {"int8": ">i8", "int4": ">i4", "float8": ">f8", "date": ">i4", "timestamptz": ">i8"}


@contextlib.contextmanager
def raw_cursor() -> Iterator[psycopg.Cursor]:
    """A psycopg cursor with server-side binding on Django's connection (same transaction).

    Django's own cursor binds client-side, writing every array element into
    the SQL text; here arrays travel as parameters.
    """
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        yield cursor


def session_tune() -> None:
    """Import-transaction settings: the commit need not wait for its WAL flush
    (a crash right after it loses the import, which can simply be re-run; it
    never corrupts), and index builds get room to sort in memory
    (`IMPORT_MAINTENANCE_WORK_MEM`, 1GB by default: with 256MB the OULAD index
    builds took 1-2 s longer of about 12 s)."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit = off")
        # set_config binds the value, and PostgreSQL rejects a malformed size.
        cursor.execute(
            "SELECT set_config('maintenance_work_mem', %s, true)",
            [settings.IMPORT_MAINTENANCE_WORK_MEM],
        )
        cursor.execute("SET LOCAL work_mem = '64MB'")


def binary_records(n: int, columns: list[tuple[str, str, object]]) -> np.ndarray:
    """`n` rows in PostgreSQL's binary COPY layout as one numpy record array.

    Each row: field count, then per field its length and big-endian value.
    `columns` are (name, kind, value): kind one of BINARY_KINDS (dates as days
    and timestamps as microseconds since 2000-01-01) or "text" for a constant
    string; value an array of n or a constant. Constants and lengths are laid
    down once as a template row copied into every record.
    """
    fields: list[tuple[str, str]] = [("n", ">i2")]
    for name, kind, value in columns:
        size = f"S{len(value)}" if kind == "text" else BINARY_KINDS[kind]  # type: ignore[arg-type]
        fields += [(f"{name}_len", ">i4"), (name, size)]
    template = np.zeros(1, np.dtype(fields))
    template["n"] = len(columns)
    for name, _, value in columns:
        template[f"{name}_len"] = template.dtype[name].itemsize
        if not isinstance(value, np.ndarray):
            template[name] = value
    records = np.empty(n, template.dtype)
    records[:] = template[0]
    for name, _, value in columns:
        if isinstance(value, np.ndarray):
            records[name] = value
    return records


def copy_binary(table: str, columns: list[str], parts: list[np.ndarray]) -> None:
    """COPY record arrays made by binary_records (same columns) in one binary stream."""
    sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT binary)"
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        copy.write(b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8)  # signature, flags, no extension
        step = 8 << 20
        for records in parts:
            payload = records.view(np.uint8).data
            for offset in range(0, len(payload), step):
                copy.write(payload[offset : offset + step])
        copy.write(b"\xff\xff")


def ids_assign(table: str, parts: list[np.ndarray]) -> None:
    """Number the `id` field of the record arrays `parts` (in order) with
    consecutive ids taken from `table`'s id sequence in one step.

    Only while the table is locked against other writers (indexes_deferred):
    nobody else can draw from the sequence between the two calls.
    """
    n = sum(len(part) for part in parts)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')), pg_get_serial_sequence(%s, 'id')",
            [table, table],
        )
        first, sequence = cursor.fetchone()
        cursor.execute("SELECT setval(%s, %s)", [sequence, first + n - 1])
    for part in parts:
        part["id"] = np.arange(first, first + len(part), dtype=np.int64)
        first += len(part)


@contextlib.contextmanager
def indexes_deferred(tables: list[str]) -> Iterator[set[str]]:
    """Inside the import transaction: drop the indexes of the tables that are
    empty, and rebuild them after the load (CREATE INDEX sorts once instead of
    inserting row by row). The tables stay locked against other writers and
    readers until commit, which for an empty table only delays them; an error
    rolls the DDL back with everything else. No-op on other databases and for
    tables that already hold rows."""
    if connection.vendor != "postgresql":
        yield set()
        return
    restore: list[str] = []
    deferred: set[str] = set()
    with connection.cursor() as cursor:
        for table in tables:
            if _empty_and_locked(cursor, table):
                restore.extend(_indexes_drop(cursor, table))
                deferred.add(table)
    yield deferred
    with connection.cursor() as cursor:
        for statement in restore:
            cursor.execute(statement)


@contextlib.contextmanager
def foreign_keys_deferred(tables: list[str]) -> Iterator[None]:
    """Inside the import transaction: drop the foreign keys of the tables that
    are empty, and add them back after the load.

    Django's foreign keys are DEFERRABLE INITIALLY DEFERRED: each inserted row
    queues one check per key, run at COMMIT one query at a time (about 1 s of
    the OULAD import's commit, for 140,000 enrolments and submissions). Adding
    a key back checks every row in one join instead, and fails the import (so
    rolls it back) on a row that does not match, as the commit would have.
    Locks as `indexes_deferred` (the referenced tables in SHARE ROW EXCLUSIVE
    mode until commit). No-op on other databases and for tables with rows.
    """
    if connection.vendor != "postgresql":
        yield
        return
    restore: list[str] = []
    with connection.cursor() as cursor:
        for table in tables:
            if not _empty_and_locked(cursor, table):
                continue
            cursor.execute(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = %s::regclass AND contype = 'f' ORDER BY conname",
                [table],
            )
            for name, definition in cursor.fetchall():
                cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
                restore.append(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
    yield
    with connection.cursor() as cursor:
        for statement in restore:
            cursor.execute(statement)


def _empty_and_locked(cursor, table: str) -> bool:
    """True if `table` holds no rows; it is then locked against everyone until commit."""
    cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {table})")
    if cursor.fetchone()[0]:
        return False
    cursor.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
    # Another transaction may have written between the check and the lock.
    cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {table})")
    return not cursor.fetchone()[0]


def _indexes_drop(cursor, table: str) -> list[str]:
    """Drop `table`'s indexes and primary/unique constraints; return the DDL to rebuild them.

    A primary key that a foreign key points at stays (dropping it would need
    the foreign key dropped too), and so do partial indexes: they index few of
    the loaded rows (none, for the events' client-id index) while a rebuild
    would scan the whole table again.
    """
    cursor.execute(
        "SELECT c.conname, pg_get_constraintdef(c.oid), EXISTS ("
        "  SELECT 1 FROM pg_constraint f WHERE f.contype = 'f' AND f.conindid = c.conindid) "
        "FROM pg_constraint c WHERE c.conrelid = %s::regclass AND c.contype IN ('p', 'u')",
        [table],
    )
    constraints = cursor.fetchall()
    cursor.execute(
        "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x "
        "JOIN pg_class i ON i.oid = x.indexrelid WHERE x.indrelid = %s::regclass "
        "AND x.indpred IS NULL "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)",
        [table],
    )
    indexes = cursor.fetchall()
    rebuild = []
    for name, definition, referenced in constraints:
        if referenced:
            continue
        cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        rebuild.append(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
    for name, definition in indexes:
        cursor.execute(f'DROP INDEX "{name}"')
        # A partitioned table's index reads "ON ONLY <table>": rebuilt like that it
        # would cover no partition (and stay invalid).
        rebuild.append(definition.replace(" ON ONLY ", " ON ", 1))
    return rebuild


def staging_table(cursor, table: str, columns: Sequence[str]) -> str:
    """An empty temp table with `table`'s `columns` (their types): its name.

    One per connection, table and column list, created on first use and kept:
    a create per call costs catalog writes on every API request. It empties
    itself at commit, and is emptied here for a second use in one transaction.
    """
    listed = ", ".join(columns)
    name = f"bulk_{table}_{zlib.crc32(listed.encode()):08x}"
    cursor.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS {name} ON COMMIT DELETE ROWS AS "
        f"SELECT {listed} FROM {table} WITH NO DATA"
    )
    cursor.execute(f"TRUNCATE {name}")
    return name


def copy_then(table: str, columns: Sequence[str], rows: Iterable[Sequence], then: str) -> list:
    """COPY `rows` (tuples, adapted by psycopg) into a staging table shaped like `table`'s
    `columns`, then run `then` (SQL reading ``{source}``); its rows, if it returns any."""
    with connection.cursor() as cursor:
        target = staging_table(cursor, table, columns)
        with cursor.cursor.copy(f"COPY {target} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cursor.execute(then.format(source=target))
        return cursor.fetchall() if cursor.description else []


def _copy_csv(cursor, target: str, data: pa.Table) -> None:
    sink = pa.BufferOutputStream()
    pa_csv.write_csv(
        data,
        sink,
        write_options=pa_csv.WriteOptions(include_header=False, quoting_style="needed"),
    )
    payload = memoryview(sink.getvalue())
    sql = f"COPY {target} ({', '.join(data.column_names)}) FROM STDIN WITH (FORMAT csv)"
    with cursor.cursor.copy(sql) as copy:
        step = 1 << 20
        for offset in range(0, len(payload), step):
            copy.write(payload[offset : offset + step])


def bulk_write(
    table: str, data: pa.Table, *, ignore_conflicts: bool = False, then: str | None = None
) -> None:
    """COPY on PostgreSQL (CSV made by Arrow's C++ writer); batched INSERTs elsewhere.

    `ignore_conflicts` skips rows that break a unique constraint; `then` is an
    INSERT ... SELECT .. FROM {source} run on the rows instead of a plain
    insert (PostgreSQL COPYs them into a staging table first).
    """
    columns = ", ".join(data.column_names)
    if ignore_conflicts:
        then = (
            f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {{source}} "
            "ON CONFLICT DO NOTHING"
        )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            target = staging_table(cursor, table, data.column_names) if then else table
            _copy_csv(cursor, target, data)
            if then:
                cursor.execute(then.format(source=target))
        return
    placeholders = ", ".join(["%s"] * data.num_columns)
    if then:
        # SQLite: the same statement over a VALUES list per batch.
        statement = then.replace("SELECT " + columns + " FROM {source}", "VALUES {values}")
        with connection.cursor() as cursor:
            for batch in data.to_batches(max_chunksize=max(1, 900 // data.num_columns)):
                rows = list(zip(*(c.to_pylist() for c in batch.columns), strict=True))
                values = ", ".join([f"({placeholders})"] * len(rows))
                cursor.execute(statement.format(values=values), [v for row in rows for v in row])
        return
    sql = f"INSERT INTO {table} ({columns}) VALUES ({placeholders})"
    with connection.cursor() as cursor:
        for batch in data.to_batches(max_chunksize=5000):
            cursor.executemany(sql, list(zip(*(c.to_pylist() for c in batch.columns), strict=True)))
