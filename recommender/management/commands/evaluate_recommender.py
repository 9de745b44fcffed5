"""manage.py evaluate_recommender --data DIR --split-day 100 [--history DIR ...]
[--folds forward] [--json FILE]

Thin wrapper over recommender.model.evaluate / folds (no database access).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from eduplatform.core.progress import command_bar, say


def _load(folder: Path, presentations: list[str] | None = None) -> Any:
    from eduplatform.ml.datasets.oulad import OuladFormatError, load_oulad

    if not folder.is_dir():
        raise CommandError(f"{folder}: no such directory")
    try:
        return load_oulad(folder, presentations=presentations)
    except OuladFormatError as exc:
        raise CommandError(str(exc).splitlines()[0]) from exc
    except (OSError, ValueError) as exc:
        raise CommandError(f"{folder}: {str(exc).splitlines()[0] if str(exc) else exc}") from exc


class Command(BaseCommand):
    help = (
        "Offline evaluation of the content recommender on an OULAD-format folder: "
        "train on clicks before the split day (and on --history runs in full), test on the "
        "items each learner first opens on or after it; prints Recall@k, NDCG@k and coverage "
        "for the product model (the ranker) and the peers."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--data", required=True, help="OULAD-format folder")
        parser.add_argument(
            "--history",
            action="append",
            default=[],
            metavar="DIR",
            help=(
                "OULAD-format folder of earlier presentations known in full, used for training "
                "by the product and every peer (repeatable); a run also in --data is an error"
            ),
        )
        parser.add_argument(
            "--split-day",
            type=int,
            default=100,
            help="train on clicks before this course day, test on or after it (default 100)",
        )
        parser.add_argument(
            "--folds",
            choices=["forward"],
            help=(
                "forward: split days 60, 100 and 150, plus a later-presentation fold (the "
                "latest presentation at day 100, earlier ones in full); ignores --split-day"
            ),
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
        from recommender.model.evaluate import CANDIDATES

        parser.add_argument(
            "--candidates",
            default="",
            help=(
                f"comma-separated former research candidates ({', '.join(CANDIDATES)}); "
                "mlp_ranker is now the served product and is reported as an alias of "
                "'recommender' (same figures)"
            ),
        )

    def handle(self, *args, **options) -> None:
        # The step being run and the time so far on standard error, on a terminal only
        # (eduplatform/core/progress.py); standard output and the JSON are the same either way.
        self._bar = command_bar(self, options, bar_format="{desc} [{elapsed}]", desc="loading")
        with self._bar:
            self._evaluate(options)

    def _evaluate(self, options: dict[str, Any]) -> None:
        """Long because it validates every argument and folder before the minutes of training, then
        runs one of two modes and writes the one report.
        """
        from recommender.model.evaluate import (
            CANDIDATES,
            combine,
            evaluate,
            format_table,
            history_overlap,
        )
        from recommender.model.folds import evaluate_folds, format_folds, forward_folds
        from recommender.model.timeline import Params

        folder = Path(options["data"])
        if options["k"] <= 0:
            raise CommandError("--k must be positive")
        candidates = tuple(c.strip() for c in options["candidates"].split(",") if c.strip())
        unknown = sorted(set(candidates) - set(CANDIDATES))
        if unknown:
            raise CommandError(f"unknown candidate {unknown[0]!r}; known: {', '.join(CANDIDATES)}")
        json_path = Path(options["json_path"]) if options["json_path"] else None
        if json_path is not None and json_path.is_dir():
            raise CommandError(f"{json_path}: is a directory")
        started = time.perf_counter()
        data = _load(folder, options["presentations"] or None)
        if data.item_activity.empty:
            raise CommandError(f"{folder}: no clicks to evaluate on")
        history = None
        if options["history"]:
            parts = [_load(Path(h)) for h in options["history"]]
            seen: set[Any] = set()
            for h, part in zip(options["history"], parts, strict=True):
                dup = seen & set(part.courses["course_id"])
                if dup:
                    raise CommandError(f"{h}: run {sorted(dup, key=str)[0]} is in two --history")
                seen |= set(part.courses["course_id"])
            history = combine(parts)
            overlap = history_overlap(data, history)
            if overlap:
                raise CommandError(
                    f"run {overlap[0]} is in both --history and --data "
                    f"({len(overlap)} such runs); history must be earlier presentations"
                )
        loaded = time.perf_counter() - started

        def log(message: str) -> None:
            # -v 2 keeps every line (above the bar); the bar names the latest step.
            if options["verbosity"] > 1:
                say(self, self._bar, message)
            self._bar.set_description(message.strip()[:60])

        verbose = log if options["verbosity"] > 1 or not self._bar.disable else None
        self._bar.set_description("training and scoring")
        config = Params(seed=options["seed"])
        if options["folds"]:
            result = evaluate_folds(
                forward_folds(data, history),
                k=options["k"],
                seed=options["seed"],
                log=verbose,
                config=config,
                candidates=candidates,
            )
            table = format_folds(result)
        else:
            result = evaluate(
                data,
                split_day=options["split_day"],
                k=options["k"],
                config=config,
                seed=options["seed"],
                log=verbose,
                history=history,
                candidates=candidates,
            )
            if result["test_learners"] == 0:
                raise CommandError(
                    f"no learner has clicks both before and on/after day {options['split_day']}"
                )
            table = format_table(result)
        result["data"] = str(folder)
        result["history"] = [str(h) for h in options["history"]]
        result["load_seconds"] = round(loaded, 2)
        result["total_seconds"] = round(time.perf_counter() - started, 2)
        self._bar.clear()
        self.stdout.write(table)
        self.stdout.write(
            f"loaded in {result['load_seconds']:.1f}s, total {result['total_seconds']:.1f}s"
        )
        if json_path is not None:
            try:
                json_path.parent.mkdir(parents=True, exist_ok=True)
                json_path.write_text(
                    json.dumps(result, indent=2, sort_keys=True, default=str) + "\n"
                )
            except OSError as exc:
                raise CommandError(f"{json_path}: cannot write ({exc.strerror})") from exc
