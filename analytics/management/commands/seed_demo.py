"""Fill the database with a deterministic synthetic platform via the OULAD import path."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from analytics.importers.oulad import TableImport, tables_import
from analytics.models import EventSource
from eduplatform.core.progress import command_bar, stage_counter
from eduplatform.ml.datasets.synthetic import generate


class Command(BaseCommand):
    help = "Seed realistic synthetic learners, courses and events (deterministic for a seed)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--learners", type=int, default=600, help="learners in all (default 600)"
        )
        parser.add_argument(
            "--courses", type=int, default=3, help="course runs, 1 to 20 (default 3)"
        )
        parser.add_argument(
            "--days", type=int, default=120, help="days of history up to today (default 120)"
        )
        parser.add_argument(
            "--seed",
            type=int,
            default=7,
            help="random seed: the same seed gives the same platform (default 7)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        for name, low in (("learners", 1), ("courses", 1), ("days", 7)):
            if options[name] < low:
                raise CommandError(f"--{name} must be at least {low}")
        if options["courses"] > 20:
            raise CommandError("--courses must be at most 20")
        started = time.perf_counter()
        bar = command_bar(self, options, unit="rows", unit_scale=True, desc="generate")
        bar.refresh()
        try:
            platform = generate(
                learners=options["learners"],
                courses=options["courses"],
                days=options["days"],
                seed=options["seed"],
                today=timezone.now().date(),
            )
            summary = tables_import(
                spec=TableImport(
                    tables=platform.tables,
                    chunks=platform.chunk_source,
                    source=EventSource.DEMO,
                    learner_namespace=f"demo{options['seed']}",
                    start_dates=platform.start_dates,
                    titles=platform.titles,
                    personal=platform.personal,
                ),
                progress=stage_counter(bar),
            )
        finally:
            bar.close()
        if summary.skipped:
            self.stdout.write(f"already seeded, skipped: {', '.join(summary.skipped)}")
        self.stdout.write(
            f"seeded {len(summary.courses)} course runs, {summary.learners} learners, "
            f"{summary.events} events in {time.perf_counter() - started:.1f}s"
        )
