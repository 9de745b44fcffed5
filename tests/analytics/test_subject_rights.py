import json

import pytest
from django.core.management import CommandError, call_command

from analytics.models import DailyActivity, Enrollment, Learner, LearningEvent, Submission

pytestmark = pytest.mark.django_db


@pytest.fixture
def imported(oulad_slice):
    call_command("import_oulad", str(oulad_slice), "--no-progress")
    return True


def some_learner() -> Learner:
    return Learner.objects.filter(learningevent__isnull=False).distinct().first()


def test_export_contains_everything_about_the_learner(imported, tmp_path):
    learner = some_learner()
    out = tmp_path / "export.json"
    call_command("export_learner", learner.pseudonym, "--output", str(out))
    data = json.loads(out.read_text())
    assert data["learner"]["pseudonym"] == learner.pseudonym
    assert len(data["events"]) == LearningEvent.objects.filter(learner=learner).count()
    assert len(data["enrollments"]) == Enrollment.objects.filter(learner=learner).count()
    assert len(data["submissions"]) == Submission.objects.filter(learner=learner).count()
    assert sum(r["clicks"] for r in data["daily_activity"]) == sum(
        e["count"] for e in data["events"]
    )


def test_export_unknown_pseudonym_is_an_error():
    with pytest.raises(CommandError, match="no learner"):
        call_command("export_learner", "0" * 24)


def test_erase_is_complete_and_idempotent(imported, capsys):
    learner = some_learner()
    others = LearningEvent.objects.exclude(learner=learner).count()
    call_command("erase_learner", learner.pseudonym)
    assert not Learner.objects.filter(pseudonym=learner.pseudonym).exists()
    assert LearningEvent.objects.filter(learner_id=learner.pk).count() == 0
    assert DailyActivity.objects.filter(learner_id=learner.pk).count() == 0
    assert Submission.objects.filter(learner_id=learner.pk).count() == 0
    assert Enrollment.objects.filter(learner_id=learner.pk).count() == 0
    assert LearningEvent.objects.count() == others
    call_command("erase_learner", learner.pseudonym)
    assert "already erased" in capsys.readouterr().out
    assert LearningEvent.objects.count() == others
