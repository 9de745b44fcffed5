"""Data-subject erasure: delete everything about one learner (idempotent)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from analytics.services import learner_erase


class Command(BaseCommand):
    help = "Erase the learner with this pseudonym: events, rollups, predictions, personal data."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("pseudonym", help="the learner's pseudonym (as on their page)")

    def handle(self, *args: Any, **options: Any) -> None:
        result = learner_erase(pseudonym=options["pseudonym"])
        if not result.found:
            self.stdout.write(f"nothing stored for {options['pseudonym']} (already erased?)")
            return
        self.stdout.write(
            f"erased {options['pseudonym']}: {result.events} events, {result.rollup_rows} rollup "
            f"rows, {result.submissions} submissions, {result.enrollments} enrolments; active "
            "models marked for retraining"
        )
