import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from django.core.management import call_command

from analytics.learning_data import item_clicks_per_day, learning_data, sum_clicks
from analytics.models import Course
from eduplatform.ml.datasets.oulad import load_oulad
from tests.conftest import service_missing

pytestmark = pytest.mark.django_db


def test_database_frames_match_the_oulad_loader(oulad_slice):
    """Importing then reading back gives the frames the file loader gives."""
    call_command("import_oulad", str(oulad_slice), "--no-progress")
    course = Course.objects.get(code="AAA_2013J")
    from_db = learning_data(course_ids=[course.pk])
    from_files = load_oulad(oulad_slice, course_ids=["AAA_2013J"])
    assert len(from_db.enrolments) == len(from_files.enrolments)
    assert from_db.activity["clicks"].sum() == from_files.activity["clicks"].sum()
    assert from_db.item_activity["clicks"].sum() == from_files.item_activity["clicks"].sum()
    assert len(from_db.item_activity) == len(from_files.item_activity)
    assert sorted(from_db.activity["day"].unique()) == sorted(from_files.activity["day"].unique())
    assert np.nansum(from_db.enrolments["unregistered_day"]) == np.nansum(
        from_files.enrolments["unregistered_day"]
    )
    assert (
        from_db.submissions["submitted_day"].sum() == from_files.submissions["submitted_day"].sum()
    )
    assert set(from_db.assessments["due_day"].dropna()) == set(
        from_files.assessments["due_day"].dropna()
    )
    assert set(from_db.activity["activity_type"]) == set(from_files.activity["activity_type"])


def test_until_excludes_later_activity(oulad_slice):
    call_command("import_oulad", str(oulad_slice), "--no-progress")
    course = Course.objects.get(code="AAA_2013J")
    cutoff = course.start_date.replace(day=31)
    data = learning_data(course_ids=[course.pk], until=cutoff)
    assert data.activity["day"].max() < course.day_of(cutoff)
    assert data.item_activity["day"].max() < course.day_of(cutoff)


@pytest.mark.django_db(transaction=True)
def test_arrow_driver_and_copy_paths_read_the_same_frames(oulad_slice):
    """Committed data through ADBC (own connection) equals Django's connection's COPY read."""
    from django.db import connection, transaction

    if connection.vendor != "postgresql":
        service_missing("ADBC reads PostgreSQL only (set DATABASE_URL); SQLite has one path")
    import pandas as pd

    from analytics import learning_data as module

    call_command("import_oulad", str(oulad_slice), "--no-progress")
    ids = list(Course.objects.values_list("id", flat=True))
    assert module._adbc_uri() is not None
    fast = learning_data(course_ids=ids)
    with transaction.atomic():
        assert module._adbc_uri() is None  # ADBC could not see this transaction's rows
        plain = learning_data(course_ids=ids)
    for name in ("courses", "enrolments", "activity", "item_activity", "items", "submissions"):
        a, b = getattr(fast, name), getattr(plain, name)
        keys = list(a.columns)
        pd.testing.assert_frame_equal(
            a.sort_values(keys).reset_index(drop=True),
            b.sort_values(keys).reset_index(drop=True),
            check_dtype=False,
        )
    assert fast.item_activity["clicks"].sum() > 0


def test_without_activity_leaves_the_rollup_frame_empty(oulad_slice):
    call_command("import_oulad", str(oulad_slice), "--no-progress")
    ids = list(Course.objects.values_list("id", flat=True))
    data = learning_data(course_ids=ids, with_activity=False)
    assert data.activity.empty and list(data.activity.columns)[:2] == ["course_id", "learner_id"]
    assert not data.item_activity.empty


def _groupby_sum(raw: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    summed = raw.groupby(keys)["clicks"].sum().reset_index()
    return summed.sort_values(keys).reset_index(drop=True).astype("int64")


def _sum_frame(raw: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    columns = sum_clicks({k: raw[k].to_numpy() for k in keys}, raw["clicks"].to_numpy())
    summed = pd.DataFrame(columns)
    return summed.sort_values(keys).reset_index(drop=True).astype("int64")


def test_sum_clicks_matches_a_pandas_groupby() -> None:
    rng = np.random.default_rng(3)
    n = 20_000
    raw = pd.DataFrame(
        {
            "course_id": rng.integers(1, 4, n),
            "learner_id": rng.integers(10**9, 10**9 + 300, n),  # large ids, few distinct
            "item_id": rng.integers(1, 50, n),
            "epoch_day": rng.integers(19_000, 19_030, n).astype(np.int32),
            "clicks": rng.integers(1, 9, n).astype(np.int32),
        }
    )
    keys = ["course_id", "learner_id", "item_id", "epoch_day"]
    fast = _sum_frame(raw, keys)
    assert len(fast) < n  # there were duplicates to sum
    assert fast.equals(_groupby_sum(raw, keys))
    assert _sum_frame(raw.iloc[:0], keys).empty


def test_sum_clicks_falls_back_when_keys_do_not_fit_an_int64() -> None:
    n = 70_000
    raw = pd.DataFrame({k: np.arange(n) for k in ("a", "b", "c", "d")}).assign(clicks=1)
    raw["b"] = raw["b"] * 1000  # sparse: its dense codes are used
    # 70,000 distinct values in each of four columns: 2.4e19 combinations > 2**62.
    out = _sum_frame(raw, ["a", "b", "c", "d"])
    assert len(out) == n and int(out["clicks"].sum()) == n


@pytest.mark.parametrize("grouped", [True, False])
def test_item_clicks_per_day_match_a_pandas_groupby(grouped: bool) -> None:
    """Batches holding one course run, several, or runs spread over batches all
    give the groupby's sums, with course days counted from each run's start."""
    rng = np.random.default_rng(5)
    n = 30_000
    starts = {c: dt.date(2024, 1, 1) + dt.timedelta(days=7 * c) for c in range(1, 6)}
    raw = pd.DataFrame(
        {
            "course_id": rng.integers(1, 6, n),
            "learner_id": rng.integers(10**9, 10**9 + 400, n),  # large ids
            "item_id": rng.integers(1, 60, n),
            "occurred_at": pd.Timestamp("2024-01-01", tz="UTC")
            + pd.to_timedelta(rng.integers(0, 80 * 86_400, n), unit="s"),
            "count": rng.integers(1, 9, n).astype(np.int32),
        }
    )
    if grouped:  # as a run-by-run load reads back
        raw = raw.sort_values("course_id", kind="stable")
    table = pa.Table.from_pandas(raw, preserve_index=False)
    batches = table.to_batches(max_chunksize=4_000)
    if grouped:
        assert any(len(set(b.column(0).to_pylist())) == 1 for b in batches)
    got = item_clicks_per_day(batches, starts, n)
    assert np.all(np.diff(got["course_id"]) >= 0)  # runs in ascending order
    assert got["day"].dtype == np.int32
    start_days = raw["course_id"].map({c: pd.Timestamp(d, tz="UTC") for c, d in starts.items()})
    expected = raw.assign(
        day=(raw["occurred_at"].dt.floor("D") - start_days).dt.days, clicks=raw["count"]
    )
    keys = ["course_id", "learner_id", "item_id", "day"]
    assert (expected["day"] < 0).any()  # days before a run's start count back from it
    summed = got.sort_values(keys).reset_index(drop=True).astype("int64")
    assert len(summed) < n
    assert summed.equals(_groupby_sum(expected, keys))
    assert item_clicks_per_day([], starts, 0).empty
    assert list(item_clicks_per_day(table.slice(0, 0).to_batches(), starts, 0).columns) == [
        *keys,
        "clicks",
    ]
