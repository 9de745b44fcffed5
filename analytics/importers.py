"""Bulk import of OULAD-shaped tables (the OULAD dataset itself, and the demo seed).

One write path for both: validated tables and per-course click chunks go in,
in one transaction; PostgreSQL gets COPY, SQLite plain batched inserts.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute
import pyarrow.csv as pa_csv
from django.db import connection, transaction

from analytics.models import (
    Assessment,
    ContentItem,
    Course,
    Enrollment,
    EventSource,
    ImportRun,
    Learner,
)
from eduplatform.ml.oulad import VleChunk, course_key
from eduplatform.privacy import pseudonymise

logger = logging.getLogger(__name__)

# OULAD gives no calendar dates; presentations "B" start in February and "J"
# in October (Kuzilek et al. 2017), so day 0 is the 1st of that month.
_PRESENTATION_MONTH = {"B": 2, "J": 10}


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


def tables_import(
    *,
    spec: TableImport,
    max_students: int | None = None,
    progress: Callable[[str, int], None] | None = None,
) -> ImportSummary:
    """Import every course run of `spec` not imported from this source before.

    1. Pick the course runs; skip those with an ImportRun for this source.
    2. Optionally keep the first `max_students` learners (by id) per run.
    3. Read and validate all click chunks before writing anything.
    4. In one transaction: courses, items, learners, enrolments, assessments,
       submissions, events (COPY), daily rollup (COPY), ImportRun markers.
    """
    t = spec.tables
    courses = t["courses"].assign(
        key=lambda f: f["code_module"].str.cat(f["code_presentation"], sep="_").astype(str)
    )
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
        k = frame["code_module"].str.cat(frame["code_presentation"], sep="_").astype(str)
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
    learners_by_course = enrol.groupby("key")["id_student"].apply(set).to_dict()
    vle = keyed(t["vle"])
    assessments = keyed(t["assessments"])
    sa = t["studentAssessment"]
    sa = sa[sa["id_assessment"].isin(set(assessments["id_assessment"]))]
    sa = sa[sa["id_student"].isin(set(enrol["id_student"]))]

    chunks: list[VleChunk] = []
    for chunk in spec.chunks(keys):
        rows = chunk.rows
        rows = rows[rows["learner_id"].isin(learners_by_course.get(chunk.course_id, set()))]
        chunks.append(VleChunk(course_id=chunk.course_id, rows=rows))
        if progress:
            progress(f"read {chunk.course_id}", len(rows))

    with transaction.atomic():
        course_objs = _courses_create(courses, spec)
        course_ids = {key: c.pk for key, c in course_objs.items()}
        items = _items_create(vle, course_ids)
        learner_ids = _learners_create(enrol, spec)
        summary.enrollments = _enrollments_create(enrol, course_objs, learner_ids)
        summary.assessments, summary.submissions = _assessments_create(
            assessments, sa, course_objs, learner_ids
        )
        for chunk in chunks:
            course = course_objs[chunk.course_id]
            events, clicks = _events_copy(chunk, course, items, learner_ids, spec.source)
            summary.events += events
            summary.clicks += clicks
            ImportRun.objects.create(course=course, source=spec.source, events=events)
            if progress:
                progress(f"wrote {chunk.course_id}", events)
        for key, course in course_objs.items():
            if not any(c.course_id == key for c in chunks):
                ImportRun.objects.create(course=course, source=spec.source, events=0)
    summary.courses = sorted(course_objs)
    summary.learners = len(learner_ids)
    summary.items = len(items)
    return summary


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


def _learners_create(enrol: pd.DataFrame, spec: TableImport) -> dict[int, int]:
    """id_student -> learner pk (demographics of the latest row win)."""
    latest = enrol.drop_duplicates("id_student", keep="last")
    pseudonyms = {
        int(s): pseudonymise(spec.learner_namespace, str(int(s))) for s in latest["id_student"]
    }
    existing = dict(
        Learner.objects.filter(pseudonym__in=pseudonyms.values()).values_list("pseudonym", "id")
    )
    new = []
    for row in latest.itertuples(index=False):
        student = int(row.id_student)
        if pseudonyms[student] in existing:
            continue
        name, email = spec.personal.get(student, ("", ""))
        new.append(
            Learner(
                pseudonym=pseudonyms[student],
                name=name,
                email=email,
                gender=_text(row.gender),
                region=_text(row.region),
                highest_education=_text(row.highest_education),
                imd_band=_text(row.imd_band),
                age_band=_text(row.age_band),
                disability=_text(row.disability),
            )
        )
    Learner.objects.bulk_create(new, batch_size=2000)
    by_pseudonym = dict(
        Learner.objects.filter(pseudonym__in=pseudonyms.values()).values_list("pseudonym", "id")
    )
    return {student: by_pseudonym[p] for student, p in pseudonyms.items()}


def _day_to_date(start: dt.date, day: float) -> dt.date | None:
    return None if pd.isna(day) else start + dt.timedelta(days=int(day))


def _enrollments_create(
    enrol: pd.DataFrame, courses: dict[str, Course], learner_ids: dict[int, int]
) -> int:
    rows = [
        Enrollment(
            course=courses[r.key],
            learner_id=learner_ids[int(r.id_student)],
            registered_on=_day_to_date(courses[r.key].start_date, r.date_registration),
            unregistered_on=_day_to_date(courses[r.key].start_date, r.date_unregistration),
            final_result=_text(r.final_result),
            num_prev_attempts=int(r.num_of_prev_attempts)
            if not pd.isna(r.num_of_prev_attempts)
            else 0,
            studied_credits=int(r.studied_credits) if not pd.isna(r.studied_credits) else None,
        )
        for r in enrol.itertuples(index=False)
    ]
    Enrollment.objects.bulk_create(rows, batch_size=2000, ignore_conflicts=True)
    return len(rows)


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


def _events_copy(
    chunk: VleChunk,
    course: Course,
    items: dict[tuple[int, int], tuple[int, str]],
    learner_ids: dict[int, int],
    source: str,
) -> tuple[int, int]:
    """Write one run's click rows as events plus their daily rollup; return (rows, clicks)."""
    rows = chunk.rows
    if rows.empty:
        return 0, 0
    site_to_item = {site: pk for (c, site), (pk, _) in items.items() if c == course.pk}
    site_to_type = {site: kind for (c, site), (_, kind) in items.items() if c == course.pk}
    item_pk = rows["item_id"].map(site_to_item)
    if item_pk.isna().any():
        missing = int(rows["item_id"][item_pk.isna()].iloc[0])
        raise ValueError(f"{course.code}: click rows name site {missing} absent from vle.csv")
    learner_pk = rows["learner_id"].map(learner_ids).to_numpy(np.int64)
    days = rows["day"].to_numpy()
    # One label per distinct day instead of formatting millions of timestamps.
    # Midday UTC keeps every event on its OULAD day whatever the viewer's zone.
    low = int(days.min())
    span = np.arange(low, int(days.max()) + 1)
    dates = np.datetime64(course.start_date, "D") + span.astype("timedelta64[D]")
    day_labels = np.array([str(d) for d in dates], dtype=object)
    date_of_row = day_labels[days - low]
    count = rows["clicks"].to_numpy(np.int64)
    n = len(rows)
    events = pa.table(
        {
            "learner_id": learner_pk,
            "course_id": np.full(n, course.pk, dtype=np.int64),
            "item_id": item_pk.to_numpy(np.int64),
            "verb": pa.DictionaryArray.from_arrays(np.zeros(n, np.int32), ["interacted"]),
            "occurred_at": pa.array(date_of_row).cast(pa.string()),
            "count": count,
            "source": pa.DictionaryArray.from_arrays(np.zeros(n, np.int32), [source]),
        }
    )
    # SQLite stores aware datetimes as naive UTC text, PostgreSQL parses the offset.
    midday = " 12:00:00+00:00" if connection.vendor == "postgresql" else " 12:00:00"
    events = events.set_column(
        4, "occurred_at", pa.compute.binary_join_element_wise(events["occurred_at"], midday, "")
    )
    rollup = (
        pd.DataFrame(
            {
                "learner_id": learner_pk,
                "day": days,
                "activity_type": rows["item_id"].map(site_to_type).to_numpy(),
                "count": count,
            }
        )
        .groupby(["learner_id", "day", "activity_type"], as_index=False, sort=False)
        .agg(events=("count", "size"), clicks=("count", "sum"))
    )
    rollup_table = pa.table(
        {
            "course_id": np.full(len(rollup), course.pk, dtype=np.int64),
            "learner_id": rollup["learner_id"].to_numpy(np.int64),
            "date": pa.array(day_labels[rollup["day"].to_numpy() - low]).cast(pa.string()),
            "activity_type": rollup["activity_type"].astype(str).to_numpy(),
            "events": rollup["events"].to_numpy(np.int64),
            "clicks": rollup["clicks"].to_numpy(np.int64),
            "active_seconds": np.zeros(len(rollup)),
        }
    )
    _bulk_write("analytics_learningevent", events)
    _bulk_write("analytics_dailyactivity", rollup_table)
    return n, int(count.sum())


def _bulk_write(table: str, data: pa.Table) -> None:
    """COPY on PostgreSQL (CSV made by Arrow's C++ writer); batched INSERTs elsewhere."""
    columns = ", ".join(data.column_names)
    if connection.vendor == "postgresql":
        sink = pa.BufferOutputStream()
        pa_csv.write_csv(
            data,
            sink,
            write_options=pa_csv.WriteOptions(include_header=False, quoting_style="needed"),
        )
        payload = memoryview(sink.getvalue())
        with connection.cursor() as cursor:
            sql = f"COPY {table} ({columns}) FROM STDIN WITH (FORMAT csv)"
            with cursor.cursor.copy(sql) as copy:
                step = 1 << 20
                for offset in range(0, len(payload), step):
                    copy.write(payload[offset : offset + step])
        return
    placeholders = ", ".join(["%s"] * data.num_columns)
    sql = f"INSERT INTO {table} ({columns}) VALUES ({placeholders})"
    with connection.cursor() as cursor:
        for batch in data.to_batches(max_chunksize=5000):
            cursor.executemany(sql, list(zip(*(c.to_pylist() for c in batch.columns), strict=True)))


def oulad_spec(folder, presentations: list[str] | None) -> TableImport:
    """The TableImport of an OULAD folder (validates the six small tables now)."""
    from pathlib import Path

    from eduplatform.ml.oulad import iter_student_vle, read_tables

    folder = Path(folder)
    tables = read_tables(folder)
    courses = tables["courses"]
    if presentations:
        courses = courses[courses["code_presentation"].isin(presentations)]
        tables["courses"] = courses
    start_dates = {
        course_key(m, p): oulad_start_date(p)
        for m, p in zip(courses["code_module"], courses["code_presentation"], strict=True)
    }
    return TableImport(
        tables=tables,
        chunks=lambda keys: iter_student_vle(folder, keys),
        source=EventSource.OULAD,
        learner_namespace="oulad",
        start_dates=start_dates,
    )
