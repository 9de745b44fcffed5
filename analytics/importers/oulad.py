"""Bulk import of OULAD-shaped tables (the OULAD dataset itself, and the demo seed).

One write path for both: validated tables and per-course click chunks go in,
in one transaction. This module maps the OULAD tables to the models; the
clicks become events and rollup rows in analytics.importers.clicks (numpy,
no per-row Python loop), studentVle files are read by
analytics.importers.oulad_files, and PostgreSQL gets COPY from
analytics.importers.pg_bulk (SQLite plain batched inserts).

Measured on PostgreSQL 15 (docs/benchmarks.md, "Ingestion"): the database's
own work dominates, and in it index maintenance does. So when the event and
rollup tables are empty (a first load) their indexes are dropped inside the
import transaction and rebuilt by sorting after the COPY, which costs about a
third of maintaining them row by row; the rollup is written in index order so
that a non-empty table sees appends rather than random inserts.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from django.db import connection, transaction
from django.utils import timezone

from analytics import activity_stamps
from analytics.importers import pg_bulk
from analytics.importers.clicks import (
    EVENT_TABLE,
    ROLLUP_TABLE,
    Prepared,
    events_prepare,
    events_write,
    lookup_arrays,
    prefetched,
)
from analytics.importers.item_labels import item_titles
from analytics.importers.oulad_files import oulad_chunks
from analytics.models import Assessment, ContentItem, Course, EventSource, ImportRun, Learner
from eduplatform.core.privacy import pseudonymise
from eduplatform.ml.datasets.oulad import VleChunk, course_key, course_keys

logger = logging.getLogger(__name__)

# OULAD gives no calendar dates; presentations "B" start in February and "J"
# in October (Kuzilek et al. 2017), so day 0 is the 1st of that month.
_PRESENTATION_MONTH = {"B": 2, "J": 10}
# Tables with foreign keys that the import fills with many rows.
_KEYED_TABLES = ["analytics_enrollment", "analytics_submission", "analytics_contentitem"]


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
    courses = spec.tables["courses"].assign(key=lambda f: course_keys(f).astype(str))
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
    rows = _rows_of(spec.tables, keys, max_students)
    with transaction.atomic(), pg_bulk.foreign_keys_deferred(_KEYED_TABLES):
        pg_bulk.session_tune()
        course_objs = _courses_create(courses, spec)
        course_ids = {key: c.pk for key, c in course_objs.items()}
        items = _items_create(rows.vle, course_ids)
        learner_ids = _learners_create(rows.enrol, spec)
        summary.enrollments = _enrollments_create(rows.enrol, course_objs, learner_ids)
        summary.assessments, summary.submissions = _assessments_create(
            rows.assessments, rows.submissions, course_objs, learner_ids
        )
        written = _clicks_import(
            spec, keys, course_objs, items, learner_ids, rows.students_by_course, summary, progress
        )
        for key, course in course_objs.items():
            if key not in written:
                ImportRun.objects.create(course=course, source=spec.source, events=0)
        activity_stamps.stamps_bump(course_ids=course_ids.values())
    summary.courses = sorted(course_objs)
    summary.learners = len(learner_ids)
    summary.items = len(items)
    return summary


@dataclass
class _Rows:
    """The rows of the course runs to import, learners cut to `max_students` per run."""

    enrol: pd.DataFrame  # studentInfo joined with studentRegistration
    students_by_course: dict[str, np.ndarray]  # sorted id_student per run
    vle: pd.DataFrame
    assessments: pd.DataFrame
    submissions: pd.DataFrame  # studentAssessment of those assessments and learners


def _rows_of(tables: dict[str, pd.DataFrame], keys: set[str], max_students: int | None) -> _Rows:
    def keyed(frame: pd.DataFrame) -> pd.DataFrame:
        k = course_keys(frame).astype(str)
        out = frame.assign(key=k)
        return out[out["key"].isin(keys)]

    info = keyed(tables["studentInfo"])
    if max_students is not None:
        info = info.sort_values(["key", "id_student"]).groupby("key").head(max_students)
    reg = keyed(tables["studentRegistration"])
    enrol = info.merge(
        reg[["key", "id_student", "date_registration", "date_unregistration"]],
        on=["key", "id_student"],
        how="left",
    )
    students_by_course = {
        key: np.unique(group.to_numpy(np.int64))
        for key, group in enrol.groupby("key")["id_student"]
    }
    assessments = keyed(tables["assessments"])
    sa = tables["studentAssessment"]
    sa = sa[sa["id_assessment"].isin(set(assessments["id_assessment"]))]
    sa = sa[sa["id_student"].isin(set(enrol["id_student"]))]
    return _Rows(enrol, students_by_course, keyed(tables["vle"]), assessments, sa)


def _clicks_import(
    spec: TableImport,
    keys: set[str],
    course_objs: dict[str, Course],
    items: dict[tuple[int, int], tuple[int, str]],
    learner_ids: dict[int, int],
    students_by_course: dict[str, np.ndarray],
    summary: ImportSummary,
    progress: Callable[[str, int], None] | None,
) -> set[str]:
    """Per course run: its click rows as events and rollup, and its ImportRun marker.

    Adds to `summary`; returns the runs written.
    """
    students, learner_pks = lookup_arrays(learner_ids)
    written: set[str] = set()
    with pg_bulk.indexes_deferred([EVENT_TABLE, ROLLUP_TABLE]) as deferred:
        binary = connection.vendor == "postgresql"

        def prepare(chunk: VleChunk) -> Prepared:
            rows = chunk.rows
            rows = rows[np.isin(rows["learner_id"], students_by_course.get(chunk.course_id, []))]
            return events_prepare(
                rows,
                course_objs[chunk.course_id],
                items,
                students,
                learner_pks,
                spec.source,
                binary=binary,
                own_ids=binary and EVENT_TABLE in deferred,
                rollup_binary=binary and ROLLUP_TABLE in deferred,
                read=len(chunk.rows),
            )

        for prepared in _chunks_prepared(spec, keys, prepare):
            course_id = prepared.course_id
            if progress:
                progress(f"read {course_id}", prepared.read)
            course = course_objs[course_id]
            events_write(prepared, course, spec.source, deferred)
            summary.events += prepared.n
            summary.clicks += prepared.clicks
            ImportRun.objects.create(course=course, source=spec.source, events=prepared.n)
            written.add(course_id)
            if progress:
                progress(f"wrote {course_id}", prepared.n)
    return written


def _chunks_prepared(
    spec: TableImport, keys: set[str], prepare: Callable[[VleChunk], Prepared]
) -> Iterator[Prepared]:
    """Click rows per course run turned into write-ready arrays, each run once.

    With `spec.prefetch` the reading and the numpy work run in a background
    thread (Arrow, gzip and numpy release the GIL), one run ahead of the
    database writing the previous one.
    """
    seen: set[str] = set()

    def runs() -> Iterator[Prepared]:
        for chunk in spec.chunks(keys):
            if chunk.course_id not in keys:
                continue
            if chunk.course_id in seen:
                raise ValueError(f"{chunk.course_id}: click rows split over several files")
            seen.add(chunk.course_id)
            yield prepare(chunk)

    return prefetched(runs()) if spec.prefetch else runs()


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
    vle = vle.assign(title=item_titles(vle))
    new = [
        ContentItem(
            course_id=course_ids[row.key],
            external_id=str(int(row.id_site)),
            activity_type=str(row.activity_type),
            title=row.title,
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
        pg_bulk.bulk_write(
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
    pg_bulk.bulk_write("analytics_enrollment", rows, ignore_conflicts=True)
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
    pg_bulk.bulk_write("analytics_submission", rows)
    return len(objs), rows.num_rows


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
        chunks=lambda keys: oulad_chunks(folder, keys),
        source=EventSource.OULAD,
        learner_namespace="oulad",
        start_dates=start_dates,
        prefetch=True,
    )
