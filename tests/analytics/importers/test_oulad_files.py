"""Reading studentVle files: the Arrow fast path, and the pandas reader it falls back to."""

import gzip
import shutil

import pytest
from django.core.management import CommandError
from django.db.models import Sum

from analytics.importers.oulad_files import vle_file_chunks, vle_file_chunks_careful
from analytics.models import Course, LearningEvent
from tests.analytics.importers.test_oulad import import_slice, source_vle_rows

pytestmark = pytest.mark.django_db


def test_large_click_file_read_by_arrow_matches_pandas_reader(oulad_slice):
    """The Arrow fast path and the pandas reader (used for errors) give the same rows."""
    path = oulad_slice / "studentVle" / "studentVle_GGG_2014B.csv.gz"
    fast = vle_file_chunks(path, "GGG_2014B", {"GGG_2014B"})
    careful = vle_file_chunks_careful(path, {"GGG_2014B"})
    assert [c.course_id for c in fast] == [c.course_id for c in careful] == ["GGG_2014B"]
    for column in ("learner_id", "item_id", "day", "clicks"):
        assert (fast[0].rows[column].to_numpy() == careful[0].rows[column].to_numpy()).all()


def test_float_clicks_take_the_careful_reader(oulad_slice, tmp_path):
    """Arrow refuses "3.0" as an integer; the pandas reader accepts it as before."""
    folder = tmp_path / "oulad"
    shutil.copytree(oulad_slice, folder)
    path = folder / "studentVle" / "studentVle_GGG_2014B.csv.gz"
    with gzip.open(path, "rt") as handle:
        text = handle.read()
    header, first, rest = text.split("\n", 2)
    fields = first.split(",")
    fields[-1] = fields[-1] + ".0"
    with gzip.open(path, "wt") as handle:
        handle.write("\n".join([header, ",".join(fields), rest]))
    import_slice(folder)
    rows, clicks = source_vle_rows(oulad_slice)
    assert LearningEvent.objects.count() == rows
    assert LearningEvent.objects.aggregate(c=Sum("count"))["c"] == clicks


def test_bad_number_in_click_file_is_one_line_error(oulad_slice, tmp_path):
    folder = tmp_path / "oulad"
    shutil.copytree(oulad_slice, folder)
    path = folder / "studentVle" / "studentVle_GGG_2014B.csv.gz"
    with gzip.open(path, "rt") as handle:
        text = handle.read()
    header, first, rest = text.split("\n", 2)
    fields = first.split(",")
    fields[-1] = "many"
    with gzip.open(path, "wt") as handle:
        handle.write("\n".join([header, ",".join(fields), rest]))
    with pytest.raises(CommandError) as raised:
        import_slice(folder)
    assert "line 2: column sum_click must be a number" in str(raised.value)
    assert "\n" not in str(raised.value)
    assert Course.objects.count() == 0
    assert LearningEvent.objects.count() == 0
