"""Seed N synthetic events at scale (#28 item 1), through the import's COPY path.

    python manage.py seed_events --events 10000000 --seed 0

Batches of ten course runs (`eduplatform.ml.datasets.synthetic_scale`), each
imported by `tables_import` as the OULAD import and `seed_demo` are: courses,
items, learners, enrolments, assessments, submissions, then the events by binary
COPY and their daily rollup, one transaction per batch. The next batch is drawn
in a background thread while the database writes the current one. The same seed
and `--today` give the same rows.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from analytics.importers.clicks import prefetched
from analytics.importers.oulad import TableImport, tables_import
from analytics.models import EventSource
from eduplatform.ml.datasets.synthetic_scale import batches


class Command(BaseCommand):
    help = "Seed N synthetic events in batches of course runs (deterministic for a seed)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--events", type=int, required=True, help="events in all")
        parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
        parser.add_argument(
            "--today",
            type=dt.date.fromisoformat,
            default=None,
            help="the newest batch's last day, YYYY-MM-DD (default: today)",
        )
        parser.add_argument(
            "--batch-events",
            type=int,
            default=2_000_000,
            help="events per batch of ten course runs (default 2,000,000)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["events"] < 1 or options["batch_events"] < 1:
            raise CommandError("--events and --batch-events must be at least 1")
        started = time.perf_counter()
        total = runs = learners = 0
        source = batches(
            events=options["events"],
            seed=options["seed"],
            today=options["today"] or timezone.now().date(),
            batch_events=options["batch_events"],
        )
        for batch in prefetched(source):
            platform = batch.platform
            summary = tables_import(
                spec=TableImport(
                    tables=platform.tables,
                    chunks=platform.chunk_source,
                    source=EventSource.DEMO,
                    learner_namespace=batch.namespace,
                    start_dates=platform.start_dates,
                    titles=platform.titles,
                    personal=platform.personal,
                )
            )
            total += summary.events
            runs += len(summary.courses)
            learners += summary.learners
            if summary.skipped:
                self.stdout.write(f"batch {batch.number}: already seeded, skipped")
            elif options["verbosity"] > 1:
                self.stdout.write(
                    f"batch {batch.number}: {summary.events} events, "
                    f"{time.perf_counter() - started:.1f}s"
                )
        seconds = time.perf_counter() - started
        self.stdout.write(
            f"seeded {runs} course runs, {learners} learners, {total} events "
            f"in {seconds:.1f}s ({total / max(seconds, 1e-9):,.0f} events/s)"
        )
