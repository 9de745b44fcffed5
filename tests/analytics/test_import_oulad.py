import csv
import gzip
import shutil

import pytest
from django.core.management import CommandError, call_command
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
    assert Enrollment.objects.count() == table_rows(oulad_slice, "studentInfo.csv")
    assert Assessment.objects.count() == table_rows(oulad_slice, "assessments.csv")
    assert Submission.objects.count() == table_rows(oulad_slice, "studentAssessment.csv")
    assert Learner.objects.count() == 16
    course = Course.objects.get(code="AAA_2013J")
    assert course.start_date.isoformat() == "2013-10-01"
    assert course.length_days == 268
    withdrawn = Enrollment.objects.filter(final_result="Withdrawn").exclude(unregistered_on=None)
    assert withdrawn.exists()


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
