"""Retrain a model kind now, for cron-minded operators: `manage.py retrain churn --wait`."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from eduplatform.core.progress import command_bar
from eduplatform.registry import services
from eduplatform.registry.kinds import kind_names
from eduplatform.registry.models import ModelVersion


class Command(BaseCommand):
    help = "Start a retraining run of KIND (churn | recommender)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("kind", help=f"the model kind: {' | '.join(kind_names())}")
        parser.add_argument("--wait", action="store_true", help="block until the run finishes")
        parser.add_argument("--from-scratch", action="store_true", help="no warm start")
        parser.add_argument("--timeout", type=int, default=3600, help="seconds to wait at most")

    def handle(self, *args: Any, **options: Any) -> None:
        kind = options["kind"]
        if kind not in kind_names():
            raise CommandError(f"unknown kind {kind!r}; use one of: {', '.join(kind_names())}")
        # The run's stage and percent as a bar on a terminal (core/progress.py), nothing
        # otherwise: standard output is the run's first and last line either way. Reports
        # come from this process when the run trains here (no broker), else from its row.
        bar = command_bar(
            self,
            options,
            total=100,
            desc="queued",
            bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed}]",
        )

        def show(stage: str, percent: int) -> None:
            bar.set_description(stage or "queued", refresh=False)
            bar.update(max(0, percent - bar.n))
            bar.refresh()  # once a report: a stage change shows even without a percent

        with bar, services.progress_listener(show):
            self._run(kind, options, bar, show)

    def _run(self, kind: str, options: dict[str, Any], bar: Any, show: Any) -> None:
        try:
            version = services.retrain_request(
                kind=kind, triggered_by="command", warm_start=not options["from_scratch"]
            )
        except (services.TrainingInProgress, services.BrokerUnavailable) as exc:
            raise CommandError(str(exc)) from exc
        bar.clear()
        self.stdout.write(f"{kind} v{version.version}: {version.status}")
        if not options["wait"]:
            return
        deadline = time.monotonic() + options["timeout"]
        while version.status == ModelVersion.Status.TRAINING:
            if time.monotonic() > deadline:
                raise CommandError(f"{kind} v{version.version} still training after the timeout")
            time.sleep(1)
            version.refresh_from_db()
            show(version.stage, version.percent)
        bar.clear()
        self.stdout.write(
            f"{kind} v{version.version}: {version.status}"
            + (f" ({version.status_reason})" if version.status_reason else "")
        )
        if version.status == ModelVersion.Status.FAILED:
            raise CommandError(f"{kind} v{version.version} failed: {version.status_reason}")
