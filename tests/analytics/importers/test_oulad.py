import csv
import datetime as dt
import gzip
import shutil

import pytest
from django.core.management import CommandError, call_command
from django.db import DataError, IntegrityError, connection
from django.db.models import Sum

from analytics.models import (
    Assessment,
    ContentItem,
    Course,
    DailyActivity,
    Enrollment,
    Learner,
    LearningEvent,
    Submission,
)
from tests.conftest import service_missing
from tests.ml.datasets.test_oulad import single_file_folder

pytestmark = pytest.mark.django_db


def source_vle_rows(folder):
    rows = clicks = 0
    for path in sorted((folder / "studentVle").glob("*.csv.gz")):
        with gzip.open(path, "rt") as handle:
            for record in csv.DictReader(handle):
                rows += 1
                clicks += int(record["sum_click"])
    return rows, clicks


def table_rows(folder, name):
    with open(folder / name, newline="") as handle:
        return sum(1 for _ in csv.DictReader(handle))


def import_slice(folder, *args):
    call_command("import_oulad", str(folder), "--no-progress", *args)


def test_import_matches_source_counts_and_click_sums(oulad_slice):
    import_slice(oulad_slice)
    rows, clicks = source_vle_rows(oulad_slice)
    assert LearningEvent.objects.count() == rows
    assert LearningEvent.objects.aggregate(c=Sum("count"))["c"] == clicks
    assert DailyActivity.objects.aggregate(c=Sum("clicks"))["c"] == clicks
    assert DailyActivity.objects.aggregate(e=Sum("events"))["e"] == rows
    assert Course.objects.count() == table_rows(oulad_slice, "courses.csv")
    assert ContentItem.objects.count() == table_rows(oulad_slice, "vle.csv")
    # readable titles (#27 item 3), unique within each run
    titles = list(ContentItem.objects.values_list("course_id", "title"))
    assert len(set(titles)) == len(titles)
    assert not any(t.split()[-1].isdigit() and len(t.split()[-1]) > 3 for _, t in titles)
    assert Enrollment.objects.count() == table_rows(oulad_slice, "studentInfo.csv")
    assert Assessment.objects.count() == table_rows(oulad_slice, "assessments.csv")
    assert Submission.objects.count() == table_rows(oulad_slice, "studentAssessment.csv")
    assert Learner.objects.count() == 16
    course = Course.objects.get(code="AAA_2013J")
    assert course.start_date.isoformat() == "2013-10-01"
    assert course.length_days == 268
    withdrawn = Enrollment.objects.filter(final_result="Withdrawn").exclude(unregistered_on=None)
    assert withdrawn.exists()


@pytest.mark.parametrize("gzipped", [False, True])
def test_one_click_file_imports_as_the_per_run_files(oulad_slice, tmp_path, gzipped):
    folder = single_file_folder(oulad_slice, tmp_path / "one", gzipped=gzipped)
    import_slice(folder)
    rows, clicks = source_vle_rows(oulad_slice)
    assert LearningEvent.objects.count() == rows
    assert LearningEvent.objects.aggregate(c=Sum("count"))["c"] == clicks
    assert DailyActivity.objects.aggregate(e=Sum("events"))["e"] == rows
    assert set(Course.objects.values_list("code", flat=True)) == {"AAA_2013J", "GGG_2014B"}


def test_rerun_adds_nothing(oulad_slice):
    import_slice(oulad_slice)
    counts = (LearningEvent.objects.count(), Learner.objects.count(), Submission.objects.count())
    import_slice(oulad_slice)
    assert (
        LearningEvent.objects.count(),
        Learner.objects.count(),
        Submission.objects.count(),
    ) == counts


def test_presentations_and_max_students(oulad_slice):
    import_slice(oulad_slice, "--presentations", "2014B", "--max-students", "3")
    assert list(Course.objects.values_list("code", flat=True)) == ["GGG_2014B"]
    assert Enrollment.objects.count() == 3
    assert set(LearningEvent.objects.values_list("learner_id", flat=True)) <= set(
        Learner.objects.values_list("id", flat=True)
    )


def test_unknown_presentation_is_refused_and_nothing_imported(oulad_slice):
    with pytest.raises(CommandError) as raised:
        import_slice(oulad_slice, "--presentations", "2013J,2041B")
    assert str(raised.value) == f"{oulad_slice}: no presentation 2041B (has 2013J, 2014B)"
    assert Course.objects.count() == 0


@pytest.mark.parametrize(
    ("file", "mutate", "message"),
    [
        ("studentInfo.csv", lambda t: t.replace('"id_student"', '"student"'), "missing column"),
        ("assessments.csv", lambda t: t.replace('"19"', '"nineteen"'), "must be a number"),
        ("courses.csv", lambda t: "", "cannot parse CSV"),
    ],
)
def test_malformed_file_stops_and_leaves_database_unchanged(
    oulad_slice, tmp_path, file, mutate, message
):
    folder = tmp_path / "oulad"
    shutil.copytree(oulad_slice, folder)
    path = folder / file
    path.write_text(mutate(path.read_text()))
    with pytest.raises(CommandError) as raised:
        import_slice(folder)
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)
    assert Course.objects.count() == 0
    assert LearningEvent.objects.count() == 0


def test_corrupt_click_file_rolls_back(oulad_slice, tmp_path):
    folder = tmp_path / "oulad"
    shutil.copytree(oulad_slice, folder)
    (folder / "studentVle" / "studentVle_GGG_2014B.csv.gz").write_bytes(b"\x1f\x8bgarbage")
    with pytest.raises(CommandError):
        import_slice(folder)
    assert Course.objects.count() == 0
    assert LearningEvent.objects.count() == 0


def test_missing_folder_is_one_line_error(tmp_path):
    with pytest.raises(CommandError, match="not a directory"):
        import_slice(tmp_path / "absent")


def test_import_into_tables_that_already_hold_rows(oulad_slice):
    """The second run finds events and rollup rows: indexes stay, counts still add up."""
    import_slice(oulad_slice, "--presentations", "2014B")
    first = LearningEvent.objects.count()
    assert first > 0
    import_slice(oulad_slice, "--presentations", "2013J")
    rows, clicks = source_vle_rows(oulad_slice)
    assert LearningEvent.objects.count() == rows
    assert DailyActivity.objects.aggregate(c=Sum("clicks"))["c"] == clicks
    assert DailyActivity.objects.aggregate(e=Sum("events"))["e"] == rows


def test_rollup_adds_to_rows_already_there(oulad_slice):
    """A run with rollup rows before the import (e.g. from the events API) gets upserted into."""
    from analytics.importers.oulad import oulad_start_date
    from eduplatform.core.privacy import pseudonymise
    from tests.factories import CourseFactory

    with gzip.open(oulad_slice / "studentVle" / "studentVle_AAA_2013J.csv.gz", "rt") as handle:
        first = next(csv.DictReader(handle))
    with open(oulad_slice / "vle.csv", newline="") as handle:
        kind = next(r for r in csv.DictReader(handle) if r["id_site"] == first["id_site"])[
            "activity_type"
        ]
    start = oulad_start_date("2013J")
    course = CourseFactory(code="AAA_2013J", start_date=start)
    learner = Learner.objects.create(pseudonym=pseudonymise("oulad", first["id_student"]))
    day = start + dt.timedelta(days=int(first["date"]))
    DailyActivity.objects.create(
        course=course, learner=learner, date=day, activity_type=kind, events=5, clicks=100
    )
    import_slice(oulad_slice)
    rows, clicks = source_vle_rows(oulad_slice)
    assert DailyActivity.objects.aggregate(c=Sum("clicks"))["c"] == clicks + 100
    assert DailyActivity.objects.aggregate(e=Sum("events"))["e"] == rows + 5
    merged = DailyActivity.objects.get(course=course, learner=learner, date=day, activity_type=kind)
    assert merged.clicks > 100


def test_indexes_are_all_back_after_a_first_load(oulad_slice):
    """A load into empty tables drops their indexes and rebuilds them in the transaction."""
    if connection.vendor != "postgresql":
        service_missing("index rebuild is PostgreSQL only (set DATABASE_URL)")

    def indexes():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT tablename, indexname, indexdef FROM pg_indexes "
                "WHERE tablename IN ('analytics_learningevent', 'analytics_dailyactivity') "
                "ORDER BY 1, 2"
            )
            return cursor.fetchall()

    before = indexes()
    assert len(before) >= 6
    import_slice(oulad_slice)
    assert indexes() == before
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_constraint "
            "WHERE conrelid = 'analytics_learningevent'::regclass AND contype = 'p'"
        )
        assert cursor.fetchone()[0] == 1
    # The load wrote its own ids from the sequence: the next event continues after them.
    top = LearningEvent.objects.order_by("-id").values_list("id", flat=True).first()
    assert LearningEvent.objects.values("id").distinct().count() == LearningEvent.objects.count()
    sample = LearningEvent.objects.first()
    sample.pk = None
    sample.save()
    assert sample.pk == top + 1
    assert sample.ingested_at is not None
    # The rollup rows too (one id reservation per course run).
    top = DailyActivity.objects.order_by("-id").values_list("id", flat=True).first()
    assert DailyActivity.objects.values("id").distinct().count() == DailyActivity.objects.count()
    row = DailyActivity.objects.first()
    row.pk, row.date = None, dt.date(2030, 1, 1)
    row.save()
    assert row.pk == top + 1


def _foreign_keys():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
            "FROM pg_constraint WHERE contype = 'f' AND conrelid::regclass::text IN "
            "('analytics_enrollment', 'analytics_submission', 'analytics_contentitem') "
            "ORDER BY 1, 2"
        )
        return cursor.fetchall()


def test_foreign_keys_are_all_back_after_a_first_load(oulad_slice, monkeypatch):
    """A load into empty tables drops their foreign keys and adds them back, checked."""
    if connection.vendor != "postgresql":
        service_missing("foreign key deferral is PostgreSQL only (set DATABASE_URL)")
    before = _foreign_keys()
    assert {table for table, _, _ in before} == {
        "analytics_enrollment",
        "analytics_submission",
        "analytics_contentitem",
    }
    assert all("DEFERRABLE INITIALLY DEFERRED" in definition for _, _, definition in before)
    from analytics.importers import oulad

    during = []
    real = oulad._assessments_create

    def noting_the_keys(*args, **kwargs):
        during.append(_foreign_keys())
        return real(*args, **kwargs)

    monkeypatch.setattr(oulad, "_assessments_create", noting_the_keys)
    import_slice(oulad_slice)
    assert during == [[]]  # no per-row checks queued while loading
    assert _foreign_keys() == before
    assert Submission.objects.exists() and Enrollment.objects.exists()


def test_a_row_breaking_a_foreign_key_fails_the_load_and_writes_nothing(oulad_slice, monkeypatch):
    """Adding a key back checks the loaded rows: a dangling one rolls the import back."""
    if connection.vendor != "postgresql":
        service_missing("foreign key deferral is PostgreSQL only (set DATABASE_URL)")
    from analytics.importers import oulad

    real = oulad._assessments_create

    def with_a_dangling_learner(*args, **kwargs):
        out = real(*args, **kwargs)
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE analytics_submission SET learner_id = -1 "
                "WHERE id = (SELECT min(id) FROM analytics_submission)"
            )
        return out

    monkeypatch.setattr(oulad, "_assessments_create", with_a_dangling_learner)
    before = _foreign_keys()
    with pytest.raises(IntegrityError, match="analytics_submission"):
        import_slice(oulad_slice)
    assert not Submission.objects.exists()
    assert not LearningEvent.objects.exists()
    assert not Course.objects.exists()
    assert _foreign_keys() == before


def test_a_malformed_sort_memory_setting_is_refused(oulad_slice, settings):
    if connection.vendor != "postgresql":
        service_missing("the sort memory setting is PostgreSQL only (set DATABASE_URL)")
    settings.IMPORT_MAINTENANCE_WORK_MEM = "1GB; DROP TABLE analytics_course"
    with pytest.raises(DataError):
        import_slice(oulad_slice)
    assert not Course.objects.exists()
