"""One course run's click rows as events and their daily rollup: arrays in, bulk writes out.

Everything is column arithmetic (numpy): learner and item ids by binary
search, times as day offsets, the rollup by sorting one packed integer key.
PostgreSQL gets binary COPY records (analytics.importers.pg_bulk), other
databases Arrow tables written by batched INSERTs.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
from django.utils import timezone

from analytics import partitions
from analytics.importers import pg_bulk
from analytics.models import Course, DailyActivity

EVENT_TABLE = "analytics_learningevent"
EVENT_COLUMNS = ["learner_id", "course_id", "item_id", "verb", "occurred_at", "count", "source"]
ROLLUP_TABLE = "analytics_dailyactivity"
ROLLUP_COLUMNS = [
    "course_id", "learner_id", "date", "activity_type", "events", "clicks", "active_seconds"
]  # fmt: skip

T = TypeVar("T")


@dataclass
class Prepared:
    """One run's events and rollup as arrays, ready to write (built without the database)."""

    course_id: str
    read: int  # rows in the file(s), before keeping the run's learners
    n: int
    clicks: int
    events: np.ndarray | None = None  # binary COPY records
    columns: tuple[np.ndarray, ...] = ()  # learner, item, day, count (other databases)
    rollup: tuple = ()  # arguments of rollup_table
    rollup_parts: list[np.ndarray] | None = None  # binary COPY records, any order


def lookup_arrays(mapping: dict[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A dict of ints as (sorted keys, values) for vectorised lookups."""
    keys = np.fromiter(mapping.keys(), dtype=np.int64, count=len(mapping))
    values = np.fromiter(mapping.values(), dtype=np.int64, count=len(mapping))
    order = np.argsort(keys)
    return keys[order], values[order]


def lookup(
    keys: np.ndarray, values: np.ndarray, wanted: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(values of `wanted`, mask of found) with `keys` sorted."""
    if not len(keys):
        return np.zeros(len(wanted), np.int64), np.zeros(len(wanted), bool)
    position = np.searchsorted(keys, wanted).clip(0, len(keys) - 1)
    found = keys[position] == wanted
    return values[position], found


def events_prepare(
    rows: pd.DataFrame,
    course: Course,
    items: dict[tuple[int, int], tuple[int, str]],
    students: np.ndarray,
    learner_pks: np.ndarray,
    source: str,
    *,
    binary: bool,
    own_ids: bool,
    rollup_binary: bool,
    read: int,
) -> Prepared:
    """One run's click rows as events plus their daily rollup, as arrays.

    `items`: (course pk, site id) -> (item pk, activity type); `students`,
    `learner_pks`: learner ids by student id (`lookup_arrays`). `binary`:
    build binary COPY records (PostgreSQL); `own_ids`, `rollup_binary`: the
    events, rollup table is locked and empty, so ids are written too.
    """
    done = Prepared(course_id=course.code, read=read, n=len(rows), clicks=0)
    if rows.empty:
        return done
    own = sorted(((site, pk, kind) for (c, site), (pk, kind) in items.items() if c == course.pk))
    sites = np.array([s for s, _, _ in own], dtype=np.int64)
    item_pks = np.array([pk for _, pk, _ in own], dtype=np.int64)
    type_names = sorted({kind for _, _, kind in own})
    type_codes = np.array([type_names.index(kind) for _, _, kind in own], dtype=np.int64)
    site_of_row = rows["item_id"].to_numpy(np.int64)
    item_pk, found = lookup(sites, item_pks, site_of_row)
    if not found.all():
        missing = int(site_of_row[~found][0])
        raise ValueError(f"{course.code}: click rows name site {missing} absent from vle.csv")
    learner_pk, _ = lookup(students, learner_pks, rows["learner_id"].to_numpy(np.int64))
    days = rows["day"].to_numpy(np.int64)
    count = rows["clicks"].to_numpy(np.int64)
    done.clicks = int(count.sum())
    start_day = (course.start_date - pg_bulk.PG_EPOCH).days
    if binary:
        done.events = _event_records(
            course, learner_pk, item_pk, start_day + days, count, source, own_ids=own_ids
        )
    else:
        done.columns = (learner_pk, item_pk, days, count)
    type_of_row, _ = lookup(sites, type_codes, site_of_row)
    done.rollup = _rollup_arrays(course, type_names, learner_pk, days, type_of_row, count)
    if rollup_binary and all(type_names):
        done.rollup_parts = _rollup_records(start_day, *done.rollup)
    return done


def _event_records(
    course: Course,
    learner_pk: np.ndarray,
    item_pk: np.ndarray,
    pg_days: np.ndarray,
    count: np.ndarray,
    source: str,
    *,
    own_ids: bool,
) -> np.ndarray:
    """The events as binary COPY records (`pg_days`: days since PostgreSQL's epoch)."""
    # Midday UTC keeps every event on its OULAD day whatever the viewer's zone.
    occurred_us = (pg_days * 86400 + 43200) * 1_000_000
    # With the table locked for the load, ids and the ingestion time are
    # written too (the ids reserved just before the COPY): no sequence
    # call and default per row.
    ids: list[tuple[str, str, object]] = []
    if own_ids:
        now_us = int((timezone.now() - pg_bulk.PG_EPOCH_UTC).total_seconds() * 1_000_000)
        ids = [("id", "int8", 0), ("ingested_at", "timestamptz", now_us)]
    return pg_bulk.binary_records(
        len(learner_pk),
        [
            *ids,
            ("learner_id", "int8", learner_pk),
            ("course_id", "int8", course.pk),
            ("item_id", "int8", item_pk),
            ("verb", "text", b"interacted"),
            ("occurred_at", "timestamptz", occurred_us),
            ("count", "int4", count),
            ("source", "text", source.encode()),
        ],
    )


def _rollup_arrays(
    course: Course,
    type_names: list[str],
    learner_pk: np.ndarray,
    days: np.ndarray,
    type_of_row: np.ndarray,
    count: np.ndarray,
) -> tuple:
    """Events and clicks per (learner, day, type): the arguments of `rollup_table`."""
    # One packed key (learner, day, type), sorted, so rows come out in the
    # unique index's order (course is constant within the run).
    low = int(days.min())
    n_days = int(days.max()) - low + 1
    n_types = len(type_names)
    key = (learner_pk * n_days + (days - low)) * n_types + type_of_row
    unique, inverse = np.unique(key, return_inverse=True)
    events_per_key = np.bincount(inverse, minlength=len(unique))
    clicks_per_key = np.bincount(inverse, weights=count, minlength=len(unique)).astype(np.int64)
    type_idx = unique % n_types
    day_idx = (unique // n_types) % n_days
    learner_idx = unique // (n_types * n_days)
    return (
        course, low, n_days, type_names, learner_idx, day_idx, type_idx,
        events_per_key, clicks_per_key,
    )  # fmt: skip


def _rollup_records(
    start_day: int,
    course: Course,
    low: int,
    n_days: int,
    type_names: list[str],
    learner_idx: np.ndarray,
    day_idx: np.ndarray,
    type_idx: np.ndarray,
    events: np.ndarray,
    clicks: np.ndarray,
) -> list[np.ndarray]:
    """The rollup as binary COPY records, one part per activity type (`start_day`:
    the run's first day since PostgreSQL's epoch)."""
    # Indexes come after the load, so order does not matter: one fixed
    # record layout per activity type, all in one binary COPY. Ids are
    # reserved and written as for the events (a sequence call per row cost
    # 0.8 s of 2.5 s for OULAD's 3.6M rollup rows).
    days_pg = (start_day + low + day_idx).astype(np.int32)
    parts = []
    for code, name in enumerate(type_names):
        mask = type_idx == code
        if mask.any():
            parts.append(
                pg_bulk.binary_records(
                    int(mask.sum()),
                    [
                        ("id", "int8", 0),
                        ("course_id", "int8", course.pk),
                        ("learner_id", "int8", learner_idx[mask]),
                        ("date", "date", days_pg[mask]),
                        ("activity_type", "text", name.encode()),
                        ("events", "int4", events[mask]),
                        ("clicks", "int4", clicks[mask]),
                        ("active_seconds", "float8", 0.0),
                    ],
                )
            )
    return parts


def events_write(prepared: Prepared, course: Course, source: str, deferred: set[str]) -> None:
    """Write a prepared run: events, then its rollup (COPY into a table whose
    indexes come later, else in key order, or an upsert if the run has rollup
    rows already)."""
    if not prepared.n:
        return
    if prepared.events is not None:
        # The run's months get their partitions first (PostgreSQL): a bulk load
        # never lands in the DEFAULT partition.
        _, low, n_days = prepared.rollup[:3]
        first = course.start_date + dt.timedelta(days=low)
        partitions.event_partitions_cover(first=first, last=first + dt.timedelta(days=n_days - 1))
        columns = EVENT_COLUMNS
        if "id" in (prepared.events.dtype.names or ()):
            pg_bulk.ids_assign(EVENT_TABLE, [prepared.events])
            columns = ["id", "ingested_at", *EVENT_COLUMNS]
        pg_bulk.copy_binary(EVENT_TABLE, columns, [prepared.events])
    else:
        learner, item, days, count = prepared.columns
        _events_insert_rows(learner, course, item, days, count, source)
    if ROLLUP_TABLE not in deferred and DailyActivity.objects.filter(course_id=course.pk).exists():
        _rollup_merge(rollup_table(*prepared.rollup))
    elif prepared.rollup_parts is not None:
        pg_bulk.ids_assign(ROLLUP_TABLE, prepared.rollup_parts)
        pg_bulk.copy_binary(ROLLUP_TABLE, ["id", *ROLLUP_COLUMNS], prepared.rollup_parts)
    else:
        # Key order (learner, day, type) is the unique index's order within the run.
        pg_bulk.bulk_write(ROLLUP_TABLE, rollup_table(*prepared.rollup))


def rollup_table(
    course: Course,
    low: int,
    n_days: int,
    type_names: list[str],
    learner_idx: np.ndarray,
    day_idx: np.ndarray,
    type_idx: np.ndarray,
    events: np.ndarray,
    clicks: np.ndarray,
) -> pa.Table:
    """Rollup rows as an Arrow table (CSV COPY, upsert, or SQLite inserts)."""
    span = np.datetime64(course.start_date, "D") + np.arange(low, low + n_days).astype(
        "timedelta64[D]"
    )
    labels = np.array([str(d) for d in span], dtype=object)  # one label per distinct day
    return pa.table(
        {
            "course_id": np.full(len(learner_idx), course.pk, dtype=np.int64),
            "learner_id": learner_idx,
            "date": pa.array(labels[day_idx], type=pa.string()),
            "activity_type": pa.DictionaryArray.from_arrays(
                type_idx.astype(np.int32), type_names
            ).cast(pa.string()),
            "events": events,
            "clicks": clicks,
            "active_seconds": np.zeros(len(learner_idx)),
        }
    )


def _events_insert_rows(
    learner: np.ndarray,
    course: Course,
    item: np.ndarray,
    days: np.ndarray,
    count: np.ndarray,
    source: str,
) -> None:
    """The same events as batched INSERTs (SQLite: naive UTC text timestamps)."""
    low = int(days.min())
    span = np.arange(low, int(days.max()) + 1)
    dates = np.datetime64(course.start_date, "D") + span.astype("timedelta64[D]")
    labels = np.array([f"{d} 12:00:00" for d in dates], dtype=object)
    n = len(learner)
    pg_bulk.bulk_write(
        EVENT_TABLE,
        pa.table(
            {
                "learner_id": learner,
                "course_id": np.full(n, course.pk, dtype=np.int64),
                "item_id": item,
                "verb": pa.DictionaryArray.from_arrays(np.zeros(n, np.int32), ["interacted"]),
                "occurred_at": pa.array(labels[days - low]),
                "count": count,
                "source": pa.DictionaryArray.from_arrays(np.zeros(n, np.int32), [source]),
            }
        ),
    )


def _rollup_merge(rollup: pa.Table) -> None:
    """Add rollup rows to a run that already has some (e.g. API events before the import)."""
    columns = ", ".join(rollup.column_names)
    upsert = (
        f"INSERT INTO {ROLLUP_TABLE} ({columns}) SELECT {columns} FROM {{source}} "
        "ON CONFLICT (course_id, learner_id, date, activity_type) DO UPDATE SET "
        f"events = {ROLLUP_TABLE}.events + excluded.events, "
        f"clicks = {ROLLUP_TABLE}.clicks + excluded.clicks, "
        f"active_seconds = {ROLLUP_TABLE}.active_seconds + excluded.active_seconds"
    )
    pg_bulk.bulk_write(ROLLUP_TABLE, rollup, then=upsert)


def prefetched(source: Iterator[T], depth: int = 1) -> Iterator[T]:
    """Run `source` in a thread (Arrow's CSV reader, gzip and numpy release the GIL).

    The thread stops at its next hand-over once the consumer is gone (an error
    in the import, or the end); its own errors are raised in the consumer.
    """
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def hand_over(item: object) -> bool:
        while not stop.is_set():
            try:
                buffer.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for chunk in source:
                if not hand_over(chunk):
                    return
            hand_over(done)
        except BaseException as exc:  # handed to the consumer
            hand_over(exc)

    worker = threading.Thread(target=produce, name="vle-reader", daemon=True)
    worker.start()
    try:
        while True:
            item = buffer.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        with contextlib.suppress(queue.Empty):
            while True:
                buffer.get_nowait()
        worker.join(timeout=5)
