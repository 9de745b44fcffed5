"""Data-subject access: write everything stored about one learner as JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.serializers.json import DjangoJSONEncoder

from analytics.selectors.learners import learner_export


class Command(BaseCommand):
    help = "Export all data about the learner with this pseudonym as JSON."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("pseudonym", help="the learner's pseudonym (as on their page)")
        parser.add_argument("--output", help="file to write (default: standard output)")

    def handle(self, *args: Any, **options: Any) -> None:
        data = learner_export(pseudonym=options["pseudonym"])
        if data is None:
            raise CommandError(f"no learner with pseudonym {options['pseudonym']}")
        text = json.dumps(data, cls=DjangoJSONEncoder, indent=2, sort_keys=True)
        if options["output"]:
            Path(options["output"]).write_text(text + "\n")
        else:
            self.stdout.write(text)
