"""Finish `make demo`: an admin login (printed once), first model versions where possible and
a few recorded instructor actions (analytics.demo)."""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management import call_command, get_commands
from django.core.management.base import BaseCommand

from eduplatform.core.progress import command_bar


class Command(BaseCommand):
    help = "Create (or reset) the demo admin login and train the models once."

    def handle(self, *args: Any, **options: Any) -> None:
        user_model = get_user_model()
        password = secrets.token_urlsafe(12)
        user, _ = user_model.objects.get_or_create(username="admin", defaults={"is_staff": True})
        user.is_staff = user.is_superuser = True
        user.set_password(password)
        user.save()
        if "retrain" in get_commands():
            from analytics.models import Course
            from eduplatform.registry.services import batch_scores_refresh

            course_ids = list(Course.objects.values_list("id", flat=True))
            kinds = ("churn", "recommender")
            # one step per retrain (which draws its own stage bar) and per batch scoring
            with command_bar(self, options, total=2 * len(kinds), unit="steps") as bar:
                for kind in kinds:
                    bar.set_description(f"{kind}: train")
                    call_command("retrain", kind, "--wait", stdout=self.stdout, stderr=self.stderr)
                    bar.update()
                    bar.set_description(f"{kind}: score")
                    # Tables of many learners read batch scores: fill them once for the demo.
                    written = batch_scores_refresh(kind=kind, course_ids=course_ids)
                    bar.update()
                    self.stdout.write(f"{kind}: scored {written} enrolments")
            # a few made-up actions three weeks back: the course page's outcome card (#27)
            from analytics.demo import demo_actions_record

            recorded = demo_actions_record(user=user)
            self.stdout.write(f"demo: recorded {recorded} instructor actions")
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo ready: open http://127.0.0.1:8000/ and log in as admin / {password}"
            )
        )
