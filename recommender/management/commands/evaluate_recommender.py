"""manage.py evaluate_recommender --data DIR --split-day 100 [--json FILE]

Thin wrapper over recommender.model.evaluate (no database access).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = (
        "Offline evaluation of the content recommender on an OULAD-format folder: "
        "train on clicks before the split day, test on the items each learner first "
        "opens on or after it; prints Recall@k, NDCG@k and coverage for the product "
        "model and its peers."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--data", required=True, help="OULAD-format folder")
        parser.add_argument(
            "--split-day",
            type=int,
            default=100,
            help="train on clicks before this course day, test on or after it (default 100)",
        )
        parser.add_argument(
            "--k", type=int, default=10, help="list length of Recall@k and NDCG@k (default 10)"
        )
        parser.add_argument("--json", dest="json_path", help="also write the figures here")
        parser.add_argument(
            "--seed", type=int, default=0, help="random seed of training (default 0)"
        )
        parser.add_argument(
            "--presentations", nargs="*", help="only these presentations (e.g. 2013J 2014B)"
        )

    def handle(self, *args, **options) -> None:
        from eduplatform.ml.datasets.oulad import OuladFormatError, load_oulad
        from recommender.model.evaluate import evaluate, format_table
        from recommender.model.train import TrainConfig

        folder = Path(options["data"])
        if not folder.is_dir():
            raise CommandError(f"{folder}: no such directory")
        if options["k"] <= 0:
            raise CommandError("--k must be positive")
        started = time.perf_counter()
        try:
            data = load_oulad(folder, presentations=options["presentations"] or None)
        except OuladFormatError as exc:
            raise CommandError(str(exc).splitlines()[0]) from exc
        except (OSError, ValueError) as exc:
            raise CommandError(
                f"{folder}: {str(exc).splitlines()[0] if str(exc) else exc}"
            ) from exc
        loaded = time.perf_counter() - started
        if data.item_activity.empty:
            raise CommandError(f"{folder}: no clicks to evaluate on")

        def log(message: str) -> None:
            self.stderr.write(message)

        result = evaluate(
            data,
            split_day=options["split_day"],
            k=options["k"],
            config=TrainConfig(seed=options["seed"]),
            seed=options["seed"],
            log=log if options["verbosity"] > 1 else None,
        )
        if result["test_learners"] == 0:
            raise CommandError(
                f"no learner has clicks both before and on/after day {options['split_day']}"
            )
        result["data"] = str(folder)
        result["load_seconds"] = round(loaded, 2)
        result["total_seconds"] = round(time.perf_counter() - started, 2)
        self.stdout.write(format_table(result))
        self.stdout.write(
            f"loaded in {result['load_seconds']:.1f}s, total {result['total_seconds']:.1f}s"
        )
        if options["json_path"]:
            path = Path(options["json_path"])
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
            except OSError as exc:
                raise CommandError(f"{path}: cannot write ({exc.strerror})") from exc
