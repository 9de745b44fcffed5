"""Load an OULAD folder. Re-running adds nothing; a bad file leaves the database as it was."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from analytics.importers.oulad import oulad_spec, tables_import
from eduplatform.core.progress import command_bar, stage_counter
from eduplatform.ml.datasets.oulad import OuladFormatError


class Command(BaseCommand):
    help = "Import the Open University Learning Analytics Dataset (CC BY 4.0) from DIR."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "dir", help="OULAD folder (seven tables; studentVle.csv[.gz] or studentVle/*.csv[.gz])"
        )
        parser.add_argument("--presentations", default="", help="comma-separated, e.g. 2013J,2014B")
        parser.add_argument(
            "--max-students", type=int, default=None, help="first N learners per run"
        )
        parser.add_argument(
            "--no-progress",
            action="store_true",
            help="no progress bar (there is none off a terminal or with -v 0 either)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        presentations = [p.strip() for p in options["presentations"].split(",") if p.strip()]
        if options["max_students"] is not None and options["max_students"] < 1:
            raise CommandError("--max-students must be at least 1")
        started = time.perf_counter()
        bar = command_bar(self, options, unit="rows", unit_scale=True)
        try:
            spec = oulad_spec(options["dir"], presentations or None)
            summary = tables_import(
                spec=spec, max_students=options["max_students"], progress=stage_counter(bar)
            )
        except (OuladFormatError, ValueError) as exc:
            raise CommandError(str(exc).splitlines()[0]) from exc
        finally:
            bar.close()
        elapsed = time.perf_counter() - started
        if summary.skipped:
            self.stdout.write(f"already imported, skipped: {', '.join(summary.skipped)}")
        self.stdout.write(
            f"imported {len(summary.courses)} course runs, {summary.learners} learners, "
            f"{summary.enrollments} enrolments, {summary.items} items, {summary.assessments} "
            f"assessments, {summary.submissions} submissions, {summary.events} events "
            f"({summary.clicks} clicks) in {elapsed:.1f}s"
        )
