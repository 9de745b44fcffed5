"""Bulk import of OULAD-shaped tables (the OULAD dataset itself, and the demo seed).

One write path for both: validated tables and per-course click chunks go in,
in one transaction. PostgreSQL gets COPY (binary for the events, built by
numpy without a per-row Python loop), SQLite plain batched inserts.

Measured on PostgreSQL 15 (docs/benchmarks.md, "Ingestion"): the database's
own work dominates, and in it index maintenance does. So when the event and
rollup tables are empty (a first load) their indexes are dropped inside the
import transaction and rebuilt by sorting after the COPY, which costs about a
third of maintaining them row by row; the rollup is written in index order so
that a non-empty table sees appends rather than random inserts.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from analytics import activity_stamps
from analytics.models import (
    Assessment,
    ContentItem,
    Course,
    DailyActivity,
    EventSource,
    ImportRun,
    Learner,
)
from eduplatform.ml.datasets.oulad import VleChunk, course_key, course_keys
from eduplatform.core.privacy import pseudonymise

logger = logging.getLogger(__name__)

# OULAD gives no calendar dates; presentations "B" start in February and "J"
# in October (Kuzilek et al. 2017), so day 0 is the 1st of that month.
_PRESENTATION_MONTH = {"B": 2, "J": 10}
_PG_EPOCH = dt.date(2000, 1, 1)  # PostgreSQL's binary date/timestamp origin
_PG_EPOCH_UTC = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
_EVENT_TABLE = "analytics_learningevent"
_EVENT_COLUMNS = ["learner_id", "course_id", "item_id", "verb", "occurred_at", "count", "source"]
_ROLLUP_COLUMNS = [
    "course_id", "learner_id", "date", "activity_type", "events", "clicks", "active_seconds"
]  # fmt: skip
_ROLLUP_TABLE = "analytics_dailyactivity"


def oulad_start_date(presentation: str) -> dt.date:
    return dt.date(int(presentation[:4]), _PRESENTATION_MONTH[presentation[4]], 1)


@dataclass
class ImportSummary:
    courses: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    learners: int = 0
    enrollments: int = 0
    items: int = 0
    assessments: int = 0
    submissions: int = 0
    events: int = 0
    clicks: int = 0


@dataclass
class TableImport:
    """OULAD-shaped tables plus what the source knows beyond them."""

    tables: dict[str, pd.DataFrame]
    chunks: Callable[[set[str]], Iterable[VleChunk]]
    source: str
    learner_namespace: str
    start_dates: dict[str, dt.date]
    titles: dict[str, str] = field(default_factory=dict)
    # Personal data by id_student, when the source has any (the demo does; OULAD not).
    personal: dict[int, tuple[str, str]] = field(default_factory=dict)
    # Read the click chunks in a background thread while the database writes
    # (only for chunk sources that do not touch the database themselves).
    prefetch: bool = False


def tables_import(
    *,
    spec: TableImport,
    max_students: int | None = None,
    progress: Callable[[str, int], None] | None = None,
) -> ImportSummary:
    """Import every course run of `spec` not imported from this source before.

    1. Pick the course runs; skip those with an ImportRun for this source.
    2. Optionally keep the first `max_students` learners (by id) per run.
    3. In one transaction: courses, items, learners, enrolments, assessments,
       submissions; then per course run its click rows (read and validated,
       in a background thread for files) as events (COPY) and their daily
       rollup (COPY, or an upsert if the run already has rollup rows), and
       ImportRun markers. Any error rolls all of it back.
    """
    t = spec.tables
    courses = t["courses"].assign(key=lambda f: course_keys(f).astype(str))
    already = set(
        ImportRun.objects.filter(
            source=spec.source, course__code__in=list(courses["key"])
        ).values_list("course__code", flat=True)
    )
    summary = ImportSummary(skipped=sorted(already))
    courses = courses[~courses["key"].isin(already)]
    keys = set(courses["key"])
    if not keys:
        return summary

    def keyed(frame: pd.DataFrame) -> pd.DataFrame:
        k = course_keys(frame).astype(str)
        out = frame.assign(key=k)
        return out[out["key"].isin(keys)]

    info = keyed(t["studentInfo"])
    if max_students is not None:
        info = info.sort_values(["key", "id_student"]).groupby("key").head(max_students)
    reg = keyed(t["studentRegistration"])
    enrol = info.merge(
        reg[["key", "id_student", "date_registration", "date_unregistration"]],
        on=["key", "id_student"],
        how="left",
    )
    students_by_course = {
        key: np.unique(group.to_numpy(np.int64))
        for key, group in enrol.groupby("key")["id_student"]
    }
    vle = keyed(t["vle"])
    assessments = keyed(t["assessments"])
    sa = t["studentAssessment"]
    sa = sa[sa["id_assessment"].isin(set(assessments["id_assessment"]))]
    sa = sa[sa["id_student"].isin(set(enrol["id_student"]))]

    with transaction.atomic(), _foreign_keys_deferred(_KEYED_TABLES):
        _session_tune()
        course_objs = _courses_create(courses, spec)
        course_ids = {key: c.pk for key, c in course_objs.items()}
        items = _items_create(vle, course_ids)
        learner_ids = _learners_create(enrol, spec)
        summary.enrollments = _enrollments_create(enrol, course_objs, learner_ids)
        summary.assessments, summary.submissions = _assessments_create(
            assessments, sa, course_objs, learner_ids
        )
        students, learner_pks = _lookup_arrays(learner_ids)
        written: set[str] = set()
        with _indexes_deferred([_EVENT_TABLE, _ROLLUP_TABLE]) as deferred:
            binary = connection.vendor == "postgresql"

            def prepare(chunk: VleChunk) -> _Prepared:
                rows = chunk.rows
                rows = rows[
                    np.isin(rows["learner_id"], students_by_course.get(chunk.course_id, []))
                ]
                return _events_prepare(
                    rows,
                    course_objs[chunk.course_id],
                    items,
                    students,
                    learner_pks,
                    spec.source,
                    binary=binary,
                    own_ids=binary and _EVENT_TABLE in deferred,
                    rollup_binary=binary and _ROLLUP_TABLE in deferred,
                    read=len(chunk.rows),
                )

            for prepared in _chunks_prepared(spec, keys, prepare):
                course_id = prepared.course_id
                if progress:
                    progress(f"read {course_id}", prepared.read)
                course = course_objs[course_id]
                _events_write(prepared, course, spec.source, deferred)
                summary.events += prepared.n
                summary.clicks += prepared.clicks
                ImportRun.objects.create(course=course, source=spec.source, events=prepared.n)
                written.add(course_id)
                if progress:
                    progress(f"wrote {course_id}", prepared.n)
        for key, course in course_objs.items():
            if key not in written:
                ImportRun.objects.create(course=course, source=spec.source, events=0)
        activity_stamps.stamps_bump(course_ids=course_ids.values())
    summary.courses = sorted(course_objs)
    summary.learners = len(learner_ids)
    summary.items = len(items)
    return summary


def _session_tune() -> None:
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


def _chunks_prepared(
    spec: TableImport, keys: set[str], prepare: Callable[[VleChunk], _Prepared]
) -> Iterator[_Prepared]:
    """Click rows per course run turned into write-ready arrays, each run once.

    With `spec.prefetch` the reading and the numpy work run in a background
    thread (Arrow, gzip and numpy release the GIL), one run ahead of the
    database writing the previous one.
    """
    seen: set[str] = set()

    def runs() -> Iterator[_Prepared]:
        for chunk in spec.chunks(keys):
            if chunk.course_id not in keys:
                continue
            if chunk.course_id in seen:
                raise ValueError(f"{chunk.course_id}: click rows split over several files")
            seen.add(chunk.course_id)
            yield prepare(chunk)

    return _prefetched(runs()) if spec.prefetch else runs()


def _prefetched(source: Iterator[_Prepared], depth: int = 1) -> Iterator[_Prepared]:
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


def _courses_create(courses: pd.DataFrame, spec: TableImport) -> dict[str, Course]:
    objs = {}
    for row in courses.itertuples(index=False):
        course, _ = Course.objects.get_or_create(
            code=row.key,
            defaults={
                "module_code": row.code_module,
                "presentation": row.code_presentation,
                "title": spec.titles.get(row.key, f"{row.code_module} {row.code_presentation}"),
                "start_date": spec.start_dates[row.key],
                "length_days": int(row.module_presentation_length),
            },
        )
        objs[row.key] = course
    return objs


def _week(value: float) -> int | None:
    return None if pd.isna(value) else int(value)


def _items_create(
    vle: pd.DataFrame, course_ids: dict[str, int]
) -> dict[tuple[int, int], tuple[int, str]]:
    """(course pk, site id) -> (item pk, activity type)."""
    existing = {
        (c, int(ext)): (pk, kind)
        for c, ext, pk, kind in ContentItem.objects.filter(
            course_id__in=course_ids.values()
        ).values_list("course_id", "external_id", "id", "activity_type")
    }
    new = [
        ContentItem(
            course_id=course_ids[row.key],
            external_id=str(int(row.id_site)),
            activity_type=str(row.activity_type),
            title=f"{row.activity_type} {int(row.id_site)}",
            week_from=_week(row.week_from),
            week_to=_week(row.week_to),
        )
        for row in vle.itertuples(index=False)
        if (course_ids[row.key], int(row.id_site)) not in existing
    ]
    ContentItem.objects.bulk_create(new, batch_size=2000)
    return {
        (c, int(ext)): (pk, kind)
        for c, ext, pk, kind in ContentItem.objects.filter(
            course_id__in=course_ids.values()
        ).values_list("course_id", "external_id", "id", "activity_type")
    }


def _text(value: object) -> str:
    return "" if value is None or pd.isna(value) else str(value)


def _text_column(frame: pd.DataFrame, column: str) -> pa.Array:
    """A text column with missing values as "" (what the model fields store)."""
    return pa.array(frame[column].astype(object).where(frame[column].notna(), "").astype(str))


def _learners_create(enrol: pd.DataFrame, spec: TableImport) -> dict[int, int]:
    """id_student -> learner pk (demographics of the latest row win).

    New learners are COPYed: Django's bulk_create spent seconds compiling
    SQL for a few thousand rows. Personal data (demo only) is encrypted by
    the model field itself, row by row.
    """
    latest = enrol.drop_duplicates("id_student", keep="last")
    pseudonyms = {
        int(s): pseudonymise(spec.learner_namespace, str(int(s))) for s in latest["id_student"]
    }
    existing = dict(
        Learner.objects.filter(pseudonym__in=pseudonyms.values()).values_list("pseudonym", "id")
    )
    students = latest["id_student"].astype(np.int64)
    new = latest[[pseudonyms[int(s)] not in existing for s in students]]
    if len(new):
        name_field = Learner._meta.get_field("name")
        email_field = Learner._meta.get_field("email")
        names, emails = [], []
        for student in new["id_student"].astype(np.int64):
            name, email = spec.personal.get(int(student), ("", ""))
            names.append(name_field.get_prep_value(name))
            emails.append(email_field.get_prep_value(email))
        now = connection.ops.adapt_datetimefield_value(timezone.now())
        _bulk_write(
            "analytics_learner",
            pa.table(
                {
                    "pseudonym": [pseudonyms[int(s)] for s in new["id_student"]],
                    "name": names,
                    "email": emails,
                    "gender": _text_column(new, "gender"),
                    "region": _text_column(new, "region"),
                    "highest_education": _text_column(new, "highest_education"),
                    "imd_band": _text_column(new, "imd_band"),
                    "age_band": _text_column(new, "age_band"),
                    "disability": _text_column(new, "disability"),
                    "created_at": pa.array([str(now)] * len(new)),
                }
            ),
        )
    by_pseudonym = dict(
        Learner.objects.filter(pseudonym__in=pseudonyms.values()).values_list("pseudonym", "id")
    )
    return {student: by_pseudonym[p] for student, p in pseudonyms.items()}


def _lookup_arrays(mapping: dict[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A dict of ints as (sorted keys, values) for vectorised lookups."""
    keys = np.fromiter(mapping.keys(), dtype=np.int64, count=len(mapping))
    values = np.fromiter(mapping.values(), dtype=np.int64, count=len(mapping))
    order = np.argsort(keys)
    return keys[order], values[order]


def _lookup(
    keys: np.ndarray, values: np.ndarray, wanted: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(values of `wanted`, mask of found) with `keys` sorted."""
    if not len(keys):
        return np.zeros(len(wanted), np.int64), np.zeros(len(wanted), bool)
    position = np.searchsorted(keys, wanted).clip(0, len(keys) - 1)
    found = keys[position] == wanted
    return values[position], found


def _day_to_date(start: dt.date, day: float) -> dt.date | None:
    return None if pd.isna(day) else start + dt.timedelta(days=int(day))


def _dates_of(start: pd.Series, days: pd.Series) -> pa.Array:
    """ISO dates start + days (null where days is missing)."""
    values = pd.to_datetime(start) + pd.to_timedelta(days.astype(float), unit="D")
    labels = values.dt.strftime("%Y-%m-%d").where(days.notna(), None)
    return pa.array(labels.to_numpy(object), type=pa.string(), from_pandas=True)


def _enrollments_create(
    enrol: pd.DataFrame, courses: dict[str, Course], learner_ids: dict[int, int]
) -> int:
    starts = enrol["key"].map({k: c.start_date for k, c in courses.items()})
    credits = enrol["studied_credits"]
    rows = pa.table(
        {
            "course_id": enrol["key"].map({k: c.pk for k, c in courses.items()}).to_numpy(np.int64),
            "learner_id": enrol["id_student"].astype(np.int64).map(learner_ids).to_numpy(np.int64),
            "registered_on": _dates_of(starts, enrol["date_registration"]),
            "unregistered_on": _dates_of(starts, enrol["date_unregistration"]),
            "final_result": _text_column(enrol, "final_result"),
            "num_prev_attempts": enrol["num_of_prev_attempts"]
            .fillna(0)
            .astype(np.int64)
            .to_numpy(),
            "studied_credits": pa.array(
                credits.astype(float).to_numpy(), mask=credits.isna().to_numpy()
            ).cast(pa.int64()),
        }
    )
    _bulk_write("analytics_enrollment", rows, ignore_conflicts=True)
    return rows.num_rows


def _assessments_create(
    assessments: pd.DataFrame,
    submissions: pd.DataFrame,
    courses: dict[str, Course],
    learner_ids: dict[int, int],
) -> tuple[int, int]:
    objs = {}
    for r in assessments.itertuples(index=False):
        course = courses[r.key]
        objs[int(r.id_assessment)] = Assessment(
            course=course,
            external_id=str(int(r.id_assessment)),
            kind=_text(r.assessment_type),
            title=f"{_text(r.assessment_type)} {int(r.id_assessment)}",
            due_date=_day_to_date(course.start_date, r.date),
            weight=float(r.weight) if not pd.isna(r.weight) else 0.0,
        )
    Assessment.objects.bulk_create(list(objs.values()), batch_size=2000)
    # Vectorised and COPYed: per-object bulk_create spent most of its time
    # compiling SQL for tens of thousands of rows.
    subs = submissions.dropna(subset=["date_submitted"]).drop_duplicates(
        ["id_assessment", "id_student"], keep="first"
    )
    assessment_ids = subs["id_assessment"].astype(np.int64)
    start = assessment_ids.map(
        {k: np.datetime64(a.course.start_date, "D") for k, a in objs.items()}
    ).to_numpy("datetime64[D]")
    due = assessment_ids.map(
        {
            k: np.datetime64(a.due_date, "D") if a.due_date else np.datetime64("NaT")
            for k, a in objs.items()
        }
    ).to_numpy("datetime64[D]")
    submitted = start + subs["date_submitted"].to_numpy(np.int64).astype("timedelta64[D]")
    rows = pa.table(
        {
            "assessment_id": assessment_ids.map({k: a.pk for k, a in objs.items()}).to_numpy(
                np.int64
            ),
            "learner_id": subs["id_student"].astype(np.int64).map(learner_ids).to_numpy(np.int64),
            "submitted_on": pa.array(submitted.astype(str)),
            "score": pa.array(subs["score"].astype(float).to_numpy(), from_pandas=True),
            "is_banked": subs["is_banked"].fillna(0).astype(bool).to_numpy(),
            "is_late": ~np.isnat(due) & (submitted > due),
        }
    )
    _bulk_write("analytics_submission", rows)
    return len(objs), rows.num_rows


@dataclass
class _Prepared:
    """One run's events and rollup as arrays, ready to write (built without the database)."""

    course_id: str
    read: int  # rows in the file(s), before keeping the run's learners
    n: int
    clicks: int
    events: np.ndarray | None = None  # binary COPY records
    columns: tuple[np.ndarray, ...] = ()  # learner, item, day, count (other databases)
    rollup: tuple = ()  # arguments of _rollup_table
    rollup_parts: list[np.ndarray] | None = None  # binary COPY records, any order


def _events_prepare(
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
) -> _Prepared:
    """One run's click rows as events plus their daily rollup, as arrays.

    Everything is column arithmetic: learner and item ids by binary search,
    times as day offsets, the rollup by sorting one packed integer key.
    """
    done = _Prepared(course_id=course.code, read=read, n=len(rows), clicks=0)
    if rows.empty:
        return done
    own = sorted(((site, pk, kind) for (c, site), (pk, kind) in items.items() if c == course.pk))
    sites = np.array([s for s, _, _ in own], dtype=np.int64)
    item_pks = np.array([pk for _, pk, _ in own], dtype=np.int64)
    type_names = sorted({kind for _, _, kind in own})
    type_codes = np.array([type_names.index(kind) for _, _, kind in own], dtype=np.int64)
    site_of_row = rows["item_id"].to_numpy(np.int64)
    item_pk, found = _lookup(sites, item_pks, site_of_row)
    if not found.all():
        missing = int(site_of_row[~found][0])
        raise ValueError(f"{course.code}: click rows name site {missing} absent from vle.csv")
    learner_pk, _ = _lookup(students, learner_pks, rows["learner_id"].to_numpy(np.int64))
    days = rows["day"].to_numpy(np.int64)
    count = rows["clicks"].to_numpy(np.int64)
    done.clicks = int(count.sum())
    # Midday UTC keeps every event on its OULAD day whatever the viewer's zone.
    start_day = (course.start_date - _PG_EPOCH).days
    if binary:
        occurred_us = ((start_day + days) * 86400 + 43200) * 1_000_000
        # With the table locked for the load, ids and the ingestion time are
        # written too (the ids reserved just before the COPY): no sequence
        # call and default per row.
        ids: list[tuple[str, str, object]] = []
        if own_ids:
            now_us = int((timezone.now() - _PG_EPOCH_UTC).total_seconds() * 1_000_000)
            ids = [("id", "int8", 0), ("ingested_at", "timestamptz", now_us)]
        done.events = _binary_records(
            done.n,
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
    else:
        done.columns = (learner_pk, item_pk, days, count)

    # Rollup: one packed key (learner, day, type), sorted, so rows come out in
    # the unique index's order (course is constant within the run).
    low = int(days.min())
    n_days = int(days.max()) - low + 1
    n_types = len(type_names)
    type_of_row, _ = _lookup(sites, type_codes, site_of_row)
    key = (learner_pk * n_days + (days - low)) * n_types + type_of_row
    unique, inverse = np.unique(key, return_inverse=True)
    events_per_key = np.bincount(inverse, minlength=len(unique))
    clicks_per_key = np.bincount(inverse, weights=count, minlength=len(unique)).astype(np.int64)
    type_idx = unique % n_types
    day_idx = (unique // n_types) % n_days
    learner_idx = unique // (n_types * n_days)
    done.rollup = (
        course, low, n_days, type_names, learner_idx, day_idx, type_idx,
        events_per_key, clicks_per_key,
    )  # fmt: skip
    if rollup_binary and all(type_names):
        # Indexes come after the load, so order does not matter: one fixed
        # record layout per activity type, all in one binary COPY. Ids are
        # reserved and written as for the events (a sequence call per row cost
        # 0.8 s of 2.5 s for OULAD's 3.6M rollup rows).
        days_pg = (start_day + low + day_idx).astype(np.int32)
        done.rollup_parts = []
        for code, name in enumerate(type_names):
            mask = type_idx == code
            if mask.any():
                done.rollup_parts.append(
                    _binary_records(
                        int(mask.sum()),
                        [
                            ("id", "int8", 0),
                            ("course_id", "int8", course.pk),
                            ("learner_id", "int8", learner_idx[mask]),
                            ("date", "date", days_pg[mask]),
                            ("activity_type", "text", name.encode()),
                            ("events", "int4", events_per_key[mask]),
                            ("clicks", "int4", clicks_per_key[mask]),
                            ("active_seconds", "float8", 0.0),
                        ],
                    )
                )
    return done


def _events_write(prepared: _Prepared, course: Course, source: str, deferred: set[str]) -> None:
    """Write a prepared run: events, then its rollup (COPY into a table whose
    indexes come later, else in key order, or an upsert if the run has rollup
    rows already)."""
    if not prepared.n:
        return
    if prepared.events is not None:
        columns = _EVENT_COLUMNS
        if "id" in (prepared.events.dtype.names or ()):
            _ids_assign(_EVENT_TABLE, [prepared.events])
            columns = ["id", "ingested_at", *_EVENT_COLUMNS]
        _copy_binary(_EVENT_TABLE, columns, [prepared.events])
    else:
        learner, item, days, count = prepared.columns
        _events_insert_rows(learner, course, item, days, count, source)
    if _ROLLUP_TABLE not in deferred and DailyActivity.objects.filter(course_id=course.pk).exists():
        _rollup_merge(_rollup_table(*prepared.rollup))
    elif prepared.rollup_parts is not None:
        _ids_assign(_ROLLUP_TABLE, prepared.rollup_parts)
        _copy_binary(_ROLLUP_TABLE, ["id", *_ROLLUP_COLUMNS], prepared.rollup_parts)
    else:
        # Key order (learner, day, type) is the unique index's order within the run.
        _bulk_write(_ROLLUP_TABLE, _rollup_table(*prepared.rollup))


_BINARY_KINDS = {"int8": ">i8", "int4": ">i4", "float8": ">f8", "date": ">i4", "timestamptz": ">i8"}


def _ids_assign(table: str, parts: list[np.ndarray]) -> None:
    """Number the `id` field of the record arrays `parts` (in order) with
    consecutive ids taken from `table`'s id sequence in one step.

    Only while the table is locked against other writers (_indexes_deferred):
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


def _rollup_table(
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


def _binary_records(n: int, columns: list[tuple[str, str, object]]) -> np.ndarray:
    """`n` rows in PostgreSQL's binary COPY layout as one numpy record array.

    Each row: field count, then per field its length and big-endian value.
    `columns` are (name, kind, value): kind one of _BINARY_KINDS (dates as days
    and timestamps as microseconds since 2000-01-01) or "text" for a constant
    string; value an array of n or a constant. Constants and lengths are laid
    down once as a template row copied into every record.
    """
    fields: list[tuple[str, str]] = [("n", ">i2")]
    for name, kind, value in columns:
        size = f"S{len(value)}" if kind == "text" else _BINARY_KINDS[kind]  # type: ignore[arg-type]
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


def _copy_binary(table: str, columns: list[str], parts: list[np.ndarray]) -> None:
    """COPY record arrays made by _binary_records (same columns) in one binary stream."""
    sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT binary)"
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        copy.write(b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8)  # signature, flags, no extension
        step = 8 << 20
        for records in parts:
            payload = records.view(np.uint8).data
            for offset in range(0, len(payload), step):
                copy.write(payload[offset : offset + step])
        copy.write(b"\xff\xff")


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
    _bulk_write(
        _EVENT_TABLE,
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
        f"INSERT INTO {_ROLLUP_TABLE} ({columns}) SELECT {columns} FROM {{source}} "
        "ON CONFLICT (course_id, learner_id, date, activity_type) DO UPDATE SET "
        f"events = {_ROLLUP_TABLE}.events + excluded.events, "
        f"clicks = {_ROLLUP_TABLE}.clicks + excluded.clicks, "
        f"active_seconds = {_ROLLUP_TABLE}.active_seconds + excluded.active_seconds"
    )
    _bulk_write(_ROLLUP_TABLE, rollup, then=upsert)


@contextlib.contextmanager
def _indexes_deferred(tables: list[str]) -> Iterator[set[str]]:
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


# Tables with foreign keys that the import fills with many rows.
_KEYED_TABLES = ["analytics_enrollment", "analytics_submission", "analytics_contentitem"]


@contextlib.contextmanager
def _foreign_keys_deferred(tables: list[str]) -> Iterator[None]:
    """Inside the import transaction: drop the foreign keys of the tables that
    are empty, and add them back after the load.

    Django's foreign keys are DEFERRABLE INITIALLY DEFERRED: each inserted row
    queues one check per key, run at COMMIT one query at a time (about 1 s of
    the OULAD import's commit, for 140,000 enrolments and submissions). Adding
    a key back checks every row in one join instead, and fails the import (so
    rolls it back) on a row that does not match, as the commit would have.
    Locks as `_indexes_deferred` (the referenced tables in SHARE ROW EXCLUSIVE
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
        rebuild.append(definition)
    return rebuild


def _bulk_write(
    table: str, data: pa.Table, *, ignore_conflicts: bool = False, then: str | None = None
) -> None:
    """COPY on PostgreSQL (CSV made by Arrow's C++ writer); batched INSERTs elsewhere.

    `ignore_conflicts` skips rows that break a unique constraint; `then` is an
    INSERT ... SELECT .. FROM {source} run on the rows instead of a plain
    insert (PostgreSQL COPYs them into a temp table first).
    """
    columns = ", ".join(data.column_names)
    if ignore_conflicts:
        then = (
            f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {{source}} "
            "ON CONFLICT DO NOTHING"
        )
    if connection.vendor == "postgresql":
        sink = pa.BufferOutputStream()
        pa_csv.write_csv(
            data,
            sink,
            write_options=pa_csv.WriteOptions(include_header=False, quoting_style="needed"),
        )
        payload = memoryview(sink.getvalue())
        with connection.cursor() as cursor:
            target = table
            if then:
                target = f"import_{table}"
                cursor.execute(f"DROP TABLE IF EXISTS {target}")
                cursor.execute(
                    f"CREATE TEMP TABLE {target} ON COMMIT DROP AS "
                    f"SELECT {columns} FROM {table} WITH NO DATA"
                )
            sql = f"COPY {target} ({columns}) FROM STDIN WITH (FORMAT csv)"
            with cursor.cursor.copy(sql) as copy:
                step = 1 << 20
                for offset in range(0, len(payload), step):
                    copy.write(payload[offset : offset + step])
            if then:
                cursor.execute(then.format(source=target))
                cursor.execute(f"DROP TABLE {target}")
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


_VLE_TYPES = {
    "code_module": pa.dictionary(pa.int32(), pa.string()),
    "code_presentation": pa.dictionary(pa.int32(), pa.string()),
    "id_student": pa.int64(),
    "id_site": pa.int64(),
    "date": pa.int32(),
    "sum_click": pa.int32(),
}


def _vle_file_chunks(path: Path, key: str, wanted: set[str]) -> list[VleChunk]:
    """One studentVle file's rows per course run, parsed by Arrow with typed columns.

    Anything Arrow rejects (a bad number, an empty cell, a corrupt gzip
    stream, a missing column) is re-read by the pandas reader of
    eduplatform.ml.datasets.oulad, which words the one-line error (or accepts what
    only Arrow's stricter parser refused).
    """
    try:
        table = pa_csv.read_csv(
            path, convert_options=pa_csv.ConvertOptions(column_types=_VLE_TYPES)
        )
        if any(name not in table.column_names for name in _VLE_TYPES) or any(
            table[name].null_count for name in ("id_student", "id_site", "date", "sum_click")
        ):
            raise ValueError("needs the careful reader")
    except (pa.ArrowException, ValueError, OSError, EOFError):
        return _vle_file_chunks_careful(path, wanted)
    module, presentation = table["code_module"], table["code_presentation"]
    modules = pc.unique(module).cast(pa.string()).to_pylist()
    presentations = pc.unique(presentation).cast(pa.string()).to_pylist()
    keys: dict[str, pa.ChunkedArray | None]
    if len(modules) == 1 and len(presentations) == 1:
        keys = {course_key(modules[0], presentations[0]): None}
    else:
        joined = pc.binary_join_element_wise(
            pc.cast(module, pa.string()), pc.cast(presentation, pa.string()), "_"
        )
        keys = {k: joined for k in pc.unique(joined).to_pylist()}
    chunks = []
    for course_id, joined in sorted(keys.items()):
        if course_id not in wanted:
            continue
        part = table if joined is None else table.filter(pc.equal(joined, course_id))
        chunks.append(
            VleChunk(
                course_id=course_id,
                rows=pd.DataFrame(
                    {
                        "learner_id": part["id_student"].to_numpy(),
                        "item_id": part["id_site"].to_numpy(),
                        "day": part["date"].to_numpy(),
                        "clicks": part["sum_click"].to_numpy(),
                    }
                ),
            )
        )
    return chunks


def _vle_file_chunks_careful(path: Path, wanted: set[str]) -> list[VleChunk]:
    """The reading of eduplatform.ml.datasets.oulad.iter_student_vle, for one file."""
    from eduplatform.ml.datasets.oulad import _read, _require_numeric

    frame = _read(
        path,
        "studentVle",
        dtype={"code_module": "string", "code_presentation": "string"},
        engine="pyarrow",
    )
    _require_numeric(frame, path, ["id_student", "id_site", "date", "sum_click"], nullable=False)
    keys = course_keys(frame)
    return [
        VleChunk(
            course_id=str(course_id),
            rows=pd.DataFrame(
                {
                    "learner_id": part["id_student"].to_numpy(np.int64),
                    "item_id": part["id_site"].to_numpy(np.int64),
                    "day": part["date"].to_numpy(np.int32),
                    "clicks": part["sum_click"].to_numpy(np.int32),
                }
            ),
        )
        for course_id, part in frame.groupby(keys, sort=True)
        if course_id in wanted
    ]


def _vle_files(folder: Path) -> list[tuple[str, Path]]:
    from eduplatform.ml.datasets.oulad import vle_files

    return vle_files(folder)


def _oulad_chunks(folder: Path, keys: set[str]) -> Iterator[VleChunk]:
    for key, path in _vle_files(folder):
        if key != "*" and key not in keys:
            continue
        yield from _vle_file_chunks(path, key, keys)


def oulad_spec(folder, presentations: list[str] | None) -> TableImport:
    """The TableImport of an OULAD folder (validates the six small tables now)."""
    from eduplatform.ml.datasets.oulad import read_tables

    folder = Path(folder)
    tables = read_tables(folder)
    courses = tables["courses"]
    if presentations:
        known = sorted(set(courses["code_presentation"].astype(str)))
        unknown = [p for p in presentations if p not in known]
        if unknown:
            # a typo would otherwise import the other presentations, or nothing, without a word
            raise ValueError(
                f"{folder}: no presentation {', '.join(unknown)} (has {', '.join(known)})"
            )
        courses = courses[courses["code_presentation"].isin(presentations)]
        tables["courses"] = courses
    start_dates = {
        course_key(m, p): oulad_start_date(p)
        for m, p in zip(courses["code_module"], courses["code_presentation"], strict=True)
    }
    return TableImport(
        tables=tables,
        chunks=lambda keys: _oulad_chunks(folder, keys),
        source=EventSource.OULAD,
        learner_namespace="oulad",
        start_dates=start_dates,
        prefetch=True,
    )
