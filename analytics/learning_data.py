"""The database as `LearningData`: the canonical frames both models read.

One SQL read per frame. On PostgreSQL, outside a transaction, frames arrive
through ADBC (Arrow's PostgreSQL driver: binary COPY decoded in C++ straight
into Arrow columns); psycopg's COPY yields one Python object per row, which
cost 70 s of the 115 s of reading the full OULAD. ADBC opens its own
connection, which cannot see uncommitted rows, so inside a transaction (tests,
request handlers) the read stays on Django's connection: `COPY (query) TO
STDOUT` parsed by Arrow's CSV reader.
"""

from __future__ import annotations

import datetime as dt
import io
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
from django.db import connection

from eduplatform.ml.data import LearningData


def _ids_sql(ids: Sequence[int]) -> str:
    # Only integers reach the SQL text, so interpolation is safe (COPY takes no parameters).
    return ", ".join(str(int(i)) for i in ids) or "NULL"


def _adbc_uri() -> str | None:
    """A libpq URI of Django's database when ADBC may read it (PostgreSQL, no open
    transaction on Django's connection, driver installed)."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return None
    try:
        import adbc_driver_postgresql  # noqa: F401
    except ImportError:
        return None
    s = connection.settings_dict
    user = quote(str(s.get("USER") or ""), safe="")
    password = quote(str(s.get("PASSWORD") or ""), safe="")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = s.get("HOST") or "localhost"
    port = f":{s['PORT']}" if s.get("PORT") else ""
    return f"postgresql://{auth}{host}{port}/{quote(str(s['NAME']), safe='')}"


Reader = Callable[[str, list[str]], pd.DataFrame]


class _AdbcReader:
    """Reads over one ADBC connection: a query's rows as an Arrow table, or as a
    DataFrame with the given column names (a `Reader`)."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def table(self, sql: str) -> pa.Table:
        with self._conn.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetch_arrow_table()

    def __call__(self, sql: str, columns: list[str]) -> pd.DataFrame:
        return self.table(sql).rename_columns(columns).to_pandas(date_as_object=False)


@contextmanager
def frames_reader() -> Iterator[Reader]:
    """`read_frame` for several reads: on the ADBC path they share one connection
    (opening one costs tens of milliseconds; a run's frames take seven reads)."""
    uri = _adbc_uri()
    if uri is None:
        yield read_frame
        return
    import adbc_driver_postgresql.dbapi as adbc

    with adbc.connect(uri) as conn:
        yield _AdbcReader(conn)


def read_frame(sql: str, columns: list[str]) -> pd.DataFrame:
    """Run a parameterless SELECT; return its rows as a DataFrame with `columns`."""
    uri = _adbc_uri()
    if uri is not None:
        import adbc_driver_postgresql.dbapi as adbc

        with adbc.connect(uri) as conn:
            return _AdbcReader(conn)(sql, columns)
    if connection.vendor == "postgresql":
        buffer = io.BytesIO()
        with (
            connection.cursor() as cursor,
            cursor.cursor.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)") as copy,
        ):
            for block in copy:
                buffer.write(block)
        if buffer.tell() == 0:
            return pd.DataFrame({c: [] for c in columns})
        buffer.seek(0)
        table = pa_csv.read_csv(
            buffer,
            read_options=pa_csv.ReadOptions(column_names=columns),
            convert_options=pa_csv.ConvertOptions(strings_can_be_null=True),
        )
        return table.to_pandas()
    with connection.cursor() as cursor:
        cursor.execute(sql)
        rows = cursor.fetchall()
    return pd.DataFrame.from_records(rows, columns=columns)


def _days(dates: pd.Series, course_ids: pd.Series, starts: dict[int, dt.date]) -> np.ndarray:
    start = pd.to_datetime(course_ids.map(starts))
    return (pd.to_datetime(dates) - start).dt.days.to_numpy()


def learning_data(
    *,
    course_ids: Sequence[int],
    until: dt.date | None = None,
    with_items: bool = True,
    with_activity: bool = True,
) -> LearningData:
    """Frames for some course runs, with activity dated before `until` (exclusive) if given.

    1. Courses, enrolments (+ learner demographics), items, assessments, submissions.
    2. The daily rollup summed per activity type (dashboards' and churn's input).
    3. Optionally per-item daily clicks from raw events (the recommender's input;
       one aggregate scan, for training and batch jobs only, never per request).
    `with_activity=False` leaves the rollup frame empty (the recommender reads
    item clicks only; the rollup is 3.6M rows on the full OULAD).
    """
    with frames_reader() as read:
        return _learning_data(
            read,
            course_ids=course_ids,
            until=until,
            with_items=with_items,
            with_activity=with_activity,
        )


def _learning_data(
    read: Reader,
    *,
    course_ids: Sequence[int],
    until: dt.date | None,
    with_items: bool,
    with_activity: bool,
) -> LearningData:
    """Long because the frames are read inside one reader session, one after the other, and
    assembled at the end.
    """
    ids = _ids_sql(course_ids)
    date_filter = f" AND date < '{until.isoformat()}'" if until else ""
    courses = read(
        "SELECT id, module_code, presentation, length_days, start_date FROM analytics_course "
        f"WHERE id IN ({ids}) ORDER BY id",
        ["course_id", "module", "presentation", "length_days", "start_date"],
    )
    starts = {
        int(c): pd.Timestamp(s).date()
        for c, s in zip(courses["course_id"], courses["start_date"], strict=True)
    }
    enrol = read(
        "SELECT e.course_id, e.learner_id, e.registered_on, e.unregistered_on, e.final_result, "
        "l.gender, l.region, l.highest_education, l.imd_band, l.age_band, l.disability, "
        "e.num_prev_attempts, e.studied_credits "
        "FROM analytics_enrollment e JOIN analytics_learner l ON l.id = e.learner_id "
        f"WHERE e.course_id IN ({ids})",
        [
            "course_id",
            "learner_id",
            "registered_on",
            "unregistered_on",
            "final_result",
            "gender",
            "region",
            "highest_education",
            "imd_band",
            "age_band",
            "disability",
            "num_of_prev_attempts",
            "studied_credits",
        ],
    )
    enrolments = enrol.drop(columns=["registered_on", "unregistered_on"]).assign(
        registered_day=_days(enrol["registered_on"], enrol["course_id"], starts).astype(float),
        unregistered_day=_days(enrol["unregistered_on"], enrol["course_id"], starts).astype(float),
        final_result=enrol["final_result"].fillna("").astype(str),
        num_of_prev_attempts=enrol["num_of_prev_attempts"].astype(float),
        studied_credits=enrol["studied_credits"].astype(float),
    )
    for column in ("gender", "region", "highest_education", "imd_band", "age_band", "disability"):
        # "" in the database means unknown; the ML kit expects None there.
        enrolments[column] = enrolments[column].where(enrolments[column].fillna("") != "", None)
    daily = read(
        "SELECT course_id, learner_id, date, activity_type, clicks FROM analytics_dailyactivity "
        f"WHERE course_id IN ({ids}){date_filter}" + ("" if with_activity else " AND false"),
        ["course_id", "learner_id", "date", "activity_type", "clicks"],
    )
    activity = pd.DataFrame(
        {
            "course_id": daily["course_id"].astype(np.int64),
            "learner_id": daily["learner_id"].astype(np.int64),
            "day": _days(daily["date"], daily["course_id"], starts).astype(np.int32),
            "activity_type": daily["activity_type"].astype(str),
            "clicks": daily["clicks"].astype(np.int64),
        }
    )
    items = read(
        "SELECT course_id, id, activity_type, week_from, week_to FROM analytics_contentitem "
        f"WHERE course_id IN ({ids})",
        ["course_id", "item_id", "activity_type", "week_from", "week_to"],
    ).astype({"week_from": float, "week_to": float})
    assessments_raw = read(
        "SELECT course_id, id, kind, due_date, weight FROM analytics_assessment "
        f"WHERE course_id IN ({ids})",
        ["course_id", "assessment_id", "kind", "due_date", "weight"],
    )
    assessments = assessments_raw.drop(columns=["due_date"]).assign(
        due_day=_days(assessments_raw["due_date"], assessments_raw["course_id"], starts).astype(
            float
        )
    )
    subs = read(
        "SELECT s.assessment_id, s.learner_id, s.submitted_on, s.score, s.is_banked, a.course_id "
        "FROM analytics_submission s JOIN analytics_assessment a ON a.id = s.assessment_id "
        f"WHERE a.course_id IN ({ids})"
        + (f" AND s.submitted_on < '{until.isoformat()}'" if until else ""),
        ["assessment_id", "learner_id", "submitted_on", "score", "is_banked", "course_id"],
    )
    submissions = pd.DataFrame(
        {
            "assessment_id": subs["assessment_id"].astype(np.int64),
            "learner_id": subs["learner_id"].astype(np.int64),
            "submitted_day": _days(subs["submitted_on"], subs["course_id"], starts).astype(float),
            "score": subs["score"].astype(float),
            "is_banked": subs["is_banked"].astype(str).str.lower().isin(["t", "true", "1"]),
        }
    )
    item_activity = pd.DataFrame(
        {"course_id": [], "learner_id": [], "item_id": [], "day": [], "clicks": []}
    )
    if with_items:
        item_activity = read_item_activity(read, ids, starts, until)
    data = LearningData(
        courses=courses.drop(columns=["start_date"]).assign(
            length_days=courses["length_days"].astype(int)
        ),
        enrolments=enrolments,
        activity=activity,
        item_activity=item_activity,
        items=items,
        assessments=assessments,
        submissions=submissions,
    )
    data.validate()
    return data


_TICKS_PER_DAY = {"s": 86_400, "ms": 86_400 * 10**3, "us": 86_400 * 10**6, "ns": 86_400 * 10**9}


def item_clicks_per_day(
    batches: Iterable[pa.RecordBatch], starts: dict[int, dt.date], n_rows: int
) -> pd.DataFrame:
    """Clicks per (course run, learner, item, course day) from raw event batches
    (columns course_id, learner_id, item_id, occurred_at, count; `n_rows` in all),
    runs in ascending id order.

    Only the output is as big as the read; everything else stays per batch or per
    run. Arrays above glibc's mmap threshold (32 MB at most) are mapped fresh on
    every allocation, and on the benchmark machine writing fresh pages cost
    several times what reusing the heap does: on 9.9M rows the full-size
    temporaries of a global ordering, a pandas copy and a concatenation took
    1.5-2 s, 20-100x their cost on 0.9M rows (profiled 2026-12-03).
    1. Split each batch by course run: views when the batch holds one run (the
       scan returns long runs of one run), else a stable sort of the batch.
    2. Per run: join its pieces, turn the UTC timestamps into course days, and
       sum the clicks per (learner, item, day) with `sum_clicks`.
    3. Write each run's sums into output columns sized for no duplicates (pages
       never written are never touched) and cut them to length.
    """
    pieces: dict[int, list[list[np.ndarray]]] = defaultdict(list)
    per_day = 1  # timestamp ticks per day, from the batches' unit
    for batch in batches:
        if batch.num_rows == 0:
            continue
        course, *columns = (column.to_numpy() for column in batch.columns)
        per_day = _TICKS_PER_DAY[np.datetime_data(columns[2].dtype)[0]]
        columns[2] = columns[2].view(np.int64)
        if course[0] == course[-1] and not np.any(course != course[0]):
            pieces[int(course[0])].append(columns)
            continue
        order = np.argsort(course, kind="stable")
        ordered = course[order]
        bounds = np.flatnonzero(ordered[1:] != ordered[:-1]) + 1
        for begin, end in zip(np.r_[0, bounds], np.r_[bounds, len(order)], strict=True):
            rows = order[begin:end]
            pieces[int(ordered[begin])].append([c[rows] for c in columns])
    out: dict[str, np.ndarray] = {
        "course_id": np.empty(n_rows, dtype=np.int64),
        "learner_id": np.empty(n_rows, dtype=np.int64),
        "item_id": np.empty(n_rows, dtype=np.int64),
        "day": np.empty(n_rows, dtype=np.int32),
        "clicks": np.empty(n_rows, dtype=np.int64),
    }
    filled = 0
    epoch = dt.date(1970, 1, 1)
    for course_id in sorted(pieces):
        learner, item, stamp, clicks = (
            np.concatenate(parts) if len(parts) > 1 else parts[0]
            for parts in zip(*pieces.pop(course_id), strict=True)
        )
        day = stamp // per_day - (starts[course_id] - epoch).days
        summed = sum_clicks({"learner_id": learner, "item_id": item, "day": day}, clicks)
        end = filled + len(summed["clicks"])
        out["course_id"][filled:end] = course_id
        for column in ("learner_id", "item_id", "day", "clicks"):
            out[column][filled:end] = summed[column]
        filled = end
    return pd.DataFrame({column: values[:filled] for column, values in out.items()}, copy=False)


def sum_clicks(keys: dict[str, np.ndarray], clicks: np.ndarray) -> dict[str, np.ndarray]:
    """Clicks summed per distinct combination of the `keys` columns, as columns.

    What ``groupby(keys)["clicks"].sum()`` gives (groups in order of first
    appearance), in about a third of the time:

    1. Pack the key columns into one int64, mixed radix: a column whose values
       span no more than there are rows contributes its offset from its
       minimum, any other its dense codes (a hash pass).
    2. Number the distinct packed keys in order of first appearance.
    3. Sum clicks per number; take the key columns from each group's first row.
    A four-column groupby builds a MultiIndex; one integer key is a plain hash.
    """
    n_rows = len(clicks)
    packed = np.zeros(n_rows, dtype=np.int64)
    radix = 1
    for values in keys.values():
        low = int(values.min()) if n_rows else 0
        span = int(values.max()) - low + 1 if n_rows else 1
        if span <= max(n_rows, 1):
            codes, size = values.astype(np.int64, copy=False) - low, span
        else:
            codes, uniques = pd.factorize(values)
            size = max(len(uniques), 1)
        radix *= size
        if radix >= 2**62:  # more key combinations than an int64 holds: pandas' way
            frame = pd.DataFrame({**keys, "clicks": clicks})
            summed = frame.groupby(list(keys), sort=False)["clicks"].sum().reset_index()
            return {column: summed[column].to_numpy() for column in summed.columns}
        packed *= size
        packed += codes
    group, _ = pd.factorize(packed)
    n = int(group.max()) + 1 if n_rows else 0
    first = np.empty(n, dtype=np.int64)
    first[group[::-1]] = np.arange(n_rows - 1, -1, -1)
    out = {column: values[first] for column, values in keys.items()}
    out["clicks"] = np.bincount(group, weights=clicks, minlength=n).astype(np.int64)
    return out


def read_item_activity(
    read: Reader, ids: str, starts: dict[int, dt.date], until: dt.date | None
) -> pd.DataFrame:
    until_sql = f" AND e.occurred_at < '{until.isoformat()}'" if until else ""
    if isinstance(read, _AdbcReader):
        # Sum per (learner, item, UTC day) here, not in SQL: PostgreSQL's hash
        # aggregate over the full OULAD (5.7M groups) took 26-32 s, reading the
        # 7M raw rows and grouping them here under 7 s. The UTC day comes from
        # the timestamp's integer microseconds (what ADBC hands over); asking
        # the server for it (extract(epoch ...), numeric) cost 0.7 s more.
        table = read.table(
            "SELECT e.course_id, e.learner_id, e.item_id, e.occurred_at, e.count "
            "FROM analytics_learningevent e "
            f"WHERE e.course_id IN ({ids}) AND e.item_id IS NOT NULL{until_sql}"
        )
        return item_clicks_per_day(table.to_batches(), starts, table.num_rows)
    if connection.vendor == "postgresql":
        day_sql = "(e.occurred_at AT TIME ZONE 'UTC')::date"
    else:
        day_sql = "date(e.occurred_at)"
    raw = read(
        f"SELECT e.course_id, e.learner_id, e.item_id, {day_sql}, SUM(e.count) "
        "FROM analytics_learningevent e "
        f"WHERE e.course_id IN ({ids}) AND e.item_id IS NOT NULL{until_sql} "
        f"GROUP BY e.course_id, e.learner_id, e.item_id, {day_sql}",
        ["course_id", "learner_id", "item_id", "date", "clicks"],
    )
    # A timestamp the database cannot turn into a date must not become day -2**31.
    raw = raw[raw["date"].notna()]
    return pd.DataFrame(
        {
            "course_id": raw["course_id"].astype(np.int64),
            "learner_id": raw["learner_id"].astype(np.int64),
            "item_id": raw["item_id"].astype(np.int64),
            "day": _days(raw["date"], raw["course_id"], starts).astype(np.int32),
            "clicks": raw["clicks"].astype(np.int64),
        }
    )
