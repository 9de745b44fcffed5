"""The admin: every model of every app, read-only where only the system writes, and learner
erasure / export through the data-subject services."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.admin import helpers
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from analytics.models import DailyActivity, Enrollment, Learner, LearningEvent
from analytics.selectors.learners import learner_export
from churn.models import RiskHistory, RiskScore
from eduplatform.registry.models import ModelVersion
from recommender.models import NextItems
from tests.factories import EnrollmentFactory, LearningEventFactory, UserFactory

pytestmark = pytest.mark.django_db

OUR_APPS = ("analytics", "registry", "churn", "recommender")
# Rows only ingestion and scoring write: browsable, never added, changed or deleted by hand.
SYSTEM_WRITTEN = ("LearningEvent", "DailyActivity", "ImportRun", "RiskScore", "RiskHistory")
SYSTEM_WRITTEN += ("NextItems", "Statement", "EventClientId")


def our_models():
    return [model for label in OUR_APPS for model in apps.get_app_config(label).get_models()]


@pytest.fixture
def superuser():
    return UserFactory(username="root", is_superuser=True, is_staff=True)


@pytest.fixture
def admin_client(client, superuser):
    client.force_login(superuser)
    return client


@pytest.fixture
def learner_with_data():
    enrollment = EnrollmentFactory()
    learner, course = enrollment.learner, enrollment.course
    for day in range(3):
        LearningEventFactory(
            learner=learner,
            course=course,
            occurred_at=dt.datetime(2026, 10, 5 + day, 9, tzinfo=dt.UTC),
        )
    DailyActivity.objects.create(
        course=course, learner=learner, date=dt.date(2026, 10, 5), activity_type="resource"
    )
    now = timezone.now()
    RiskScore.objects.create(
        course=course, learner=learner, model_version=1, as_of=now.date(), scored_at=now,
        probability=0.7, band="high",
    )  # fmt: skip
    RiskHistory.objects.create(
        course=course, learner=learner, as_of=now.date(), probability=0.7, band="high"
    )
    NextItems.objects.create(course=course, learner=learner, model_version=1, scored_at=now)
    ModelVersion.objects.create(kind="churn", version=1, status=ModelVersion.Status.ACTIVE)
    return learner


def test_every_model_of_our_apps_is_registered():
    missing = [m.__name__ for m in our_models() if not admin.site.is_registered(m)]
    assert missing == []


def test_system_written_rows_are_read_only(superuser):
    request = RequestFactory().get("/admin/")
    request.user = superuser
    for model in our_models():
        model_admin = admin.site.get_model_admin(model)
        if model.__name__ in SYSTEM_WRITTEN:
            assert not model_admin.has_add_permission(request), model
            assert not model_admin.has_change_permission(request), model
            assert not model_admin.has_delete_permission(request), model
    registry = admin.site.get_model_admin(ModelVersion)
    assert not registry.has_add_permission(request)
    assert not registry.has_delete_permission(request)
    assert set(registry.get_readonly_fields(request)) >= {"status", "artifact_path"}


def test_every_changelist_searches_and_filters(admin_client, learner_with_data):
    for model in our_models():
        model_admin = admin.site.get_model_admin(model)
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        assert admin_client.get(url).status_code == 200, url
        assert model_admin.list_filter, f"{model.__name__} has no list filter"
        if model is not ModelVersion:
            assert model_admin.search_fields, f"{model.__name__} has no search"
        if model_admin.search_fields:
            found = admin_client.get(url, {"q": learner_with_data.pseudonym})
            assert found.status_code == 200, url
    by_learner = admin_client.get(
        reverse("admin:churn_riskscore_changelist"), {"q": learner_with_data.pseudonym}
    )
    assert learner_with_data.pseudonym in by_learner.content.decode()


def test_learner_export_action_gives_the_export_service_output(admin_client, learner_with_data):
    response = admin_client.post(
        reverse("admin:analytics_learner_changelist"),
        {"action": "export", helpers.ACTION_CHECKBOX_NAME: [learner_with_data.pk]},
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert learner_with_data.pseudonym in response["Content-Disposition"]
    exported = json.loads(response.content)
    expected = json.loads(
        json.dumps(learner_export(pseudonym=learner_with_data.pseudonym), default=str)
    )
    assert set(exported) == {learner_with_data.pseudonym}
    assert exported[learner_with_data.pseudonym].keys() == expected.keys()
    assert len(exported[learner_with_data.pseudonym]["events"]) == 3


def assert_erased(learner: Learner) -> None:
    assert not Learner.objects.filter(pk=learner.pk).exists()
    for model in (LearningEvent, DailyActivity, Enrollment, RiskScore, RiskHistory, NextItems):
        assert not model.objects.filter(learner_id=learner.pk).exists(), model
    # The erasure service marks the active models for retraining without the learner.
    assert ModelVersion.objects.get(kind="churn", version=1).retrain_due


def test_erase_action_asks_then_erases_through_the_service(admin_client, learner_with_data):
    url = reverse("admin:analytics_learner_changelist")
    chosen = {"action": "erase", helpers.ACTION_CHECKBOX_NAME: [learner_with_data.pk]}
    confirm = admin_client.post(url, chosen)
    assert confirm.status_code == 200
    assert learner_with_data.pseudonym in confirm.content.decode()
    assert Learner.objects.filter(pk=learner_with_data.pk).exists()  # nothing erased yet
    done = admin_client.post(url, {**chosen, "post": "yes"}, follow=True)
    assert done.status_code == 200
    assert f"Erased {learner_with_data.pseudonym}" in done.content.decode()  # capfirst
    assert_erased(learner_with_data)


def test_learner_delete_in_the_admin_is_an_erasure(admin_client, learner_with_data):
    url = reverse("admin:analytics_learner_delete", args=[learner_with_data.pk])
    page = admin_client.get(url)
    assert page.status_code == 200
    # Not refused for lack of delete permission on the read-only event and score admins.
    assert "Yes, I\u2019m sure" in page.content.decode()
    response = admin_client.post(url, {"post": "yes"})
    assert response.status_code == 302
    assert_erased(learner_with_data)


def test_plain_delete_selected_is_not_offered_for_learners(admin_client):
    page = admin_client.get(reverse("admin:analytics_learner_changelist"))
    assert 'value="delete_selected"' not in page.content.decode()
    assert 'value="erase"' in page.content.decode()


def test_admins_edit_an_item_title_and_a_reimport_keeps_it(admin_client, oulad_slice):
    """#27 item 3: imported titles ("Quiz, week 5") are data an admin may correct in the
    admin; importing the same files again does not undo the correction. Killed mutant:
    title in ContentItemAdmin.readonly_fields."""
    from django.core.management import call_command

    from analytics.models import ContentItem

    def import_slice():
        call_command("import_oulad", str(oulad_slice), "--no-progress")

    import_slice()
    item = ContentItem.objects.order_by("pk").first()
    assert item.title  # a readable label from the import
    url = reverse("admin:analytics_contentitem_change", args=[item.pk])
    form = {
        "course": item.course_id,
        "external_id": item.external_id,
        "activity_type": item.activity_type,
        "title": "Week 5 quiz: cells and tissues",
        "week_from": item.week_from or "",
        "week_to": item.week_to or "",
    }
    response = admin_client.post(url, form)
    assert response.status_code == 302, response.content.decode()[:2000]
    item.refresh_from_db()
    assert item.title == "Week 5 quiz: cells and tissues"
    import_slice()
    item.refresh_from_db()
    assert item.title == "Week 5 quiz: cells and tissues"
