"""Offline churn evaluation on OULAD-format folders (thin wrapper, no database).

    python manage.py evaluate_churn --train DIR [--train DIR ...] --test DIR \\
        --cutoffs 30,60,90,150 [--json FILE]
    python manage.py evaluate_churn --train DIR --split-presentation 2014B ...
    python manage.py evaluate_churn --train DIR --folds forward [--json FILE]
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from churn.model.evaluate import evaluate_churn
from churn.model.folds import evaluate_folds, presentations_of
from churn.model.training import ChurnSettings
from eduplatform.core.progress import command_bar
from eduplatform.ml.data import LearningData
from eduplatform.ml.datasets.oulad import OuladFormatError, course_keys, load_oulad, read_tables


def _concat(parts: list[LearningData]) -> LearningData:
    import pandas as pd

    if len(parts) == 1:
        return parts[0]
    return LearningData(
        **{
            name: pd.concat([getattr(p, name) for p in parts], ignore_index=True)
            for name in LearningData.frame_names()
        }
    )


def _distinct_runs(parts: list[LearningData], folders: list[Path]) -> set[str]:
    """The course runs of the --train folders; a run in two of them would be trained on twice."""
    seen: dict[str, Path] = {}
    for part, folder in zip(parts, folders, strict=True):
        for run in sorted(set(part.courses["course_id"].astype(str))):
            if run in seen:
                raise CommandError(
                    f"course run {run} is in two --train folders: {seen[run]}, {folder}"
                )
            seen[run] = folder
    return set(seen)


class Command(BaseCommand):
    help = "Train the churn model and its peers on OULAD folders and score them per cut-off."

    def add_arguments(self, parser):
        parser.add_argument(
            "--train",
            action="append",
            default=[],
            metavar="DIR",
            help="OULAD-format folder to train on (repeat for several)",
        )
        parser.add_argument(
            "--test",
            metavar="DIR",
            help="OULAD-format folder to test on (runs also in --train are left out)",
        )
        parser.add_argument(
            "--cutoffs",
            default="30,60,90,150",
            help="comma-separated course days to predict at (default 30,60,90,150)",
        )
        parser.add_argument(
            "--split-presentation",
            metavar="PRES",
            help="hold out this presentation of the single --train folder as the test set",
        )
        parser.add_argument(
            "--folds",
            choices=["forward"],
            help="forward: every forward fold of the --train data (train on the presentations "
            "before P, test on P) and leave-one-module-out inside its latest presentation",
        )
        parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
        parser.add_argument(
            "--seeds", type=int, default=None, help="ensemble members (default: the model's)"
        )
        parser.add_argument(
            "--max-epochs", type=int, default=None, help="epoch cap (default: the model's)"
        )

    def handle(self, *args, **options):
        # The step being run and the time so far on standard error, on a terminal only
        # (eduplatform/core/progress.py); standard output and the JSON are the same either way.
        self._bar = command_bar(self, options, bar_format="{desc} [{elapsed}]", desc="loading")
        with self._bar:
            self._evaluate(options)

    def _step(self, message: str) -> None:
        """A line of the report's log (standard output), and the bar's current step."""
        self._bar.clear()
        self.stdout.write(f"  {message}")
        self._bar.set_description(message.strip()[:60])

    def _evaluate(self, options):
        """Long because it validates every argument before the minutes of training, then prints and
        writes the one report.
        """
        start = time.perf_counter()
        try:
            cutoffs = sorted({int(c) for c in options["cutoffs"].split(",") if c.strip()})
        except ValueError:
            raise CommandError(f"--cutoffs must be integers, got {options['cutoffs']!r}") from None
        if not cutoffs:
            raise CommandError("--cutoffs is empty")
        if cutoffs[0] < 0:
            raise CommandError(f"--cutoffs are days from the course start, got {cutoffs[0]}")
        for flag in ("seeds", "max_epochs"):
            if options.get(flag) is not None and options[flag] < 1:
                name = "--" + flag.replace("_", "-")
                raise CommandError(f"{name} must be at least 1, got {options[flag]}")
        train_dirs = [Path(d) for d in options["train"]]
        if not train_dirs:
            raise CommandError("give at least one --train DIR")
        split = options.get("split_presentation")
        left_out: list[str] = []
        settings = ChurnSettings()
        if options.get("seeds") is not None:
            settings.seeds = tuple(range(options["seeds"]))
        if options.get("max_epochs") is not None:
            settings.max_epochs = options["max_epochs"]
        if options.get("folds"):
            if split or options.get("test"):
                raise CommandError(
                    "--folds uses the --train data only (no --test / --split-presentation)"
                )
            self._folds(train_dirs, cutoffs, settings, options, start)
            return
        if split and options.get("test"):
            raise CommandError("use either --test or --split-presentation, not both")
        if not split and not options.get("test"):
            raise CommandError("give --test DIR or --split-presentation PRES")
        if split and len(train_dirs) != 1:
            raise CommandError("--split-presentation needs exactly one --train DIR")
        try:
            if split:
                folder = train_dirs[0]
                presentations = sorted(
                    set(read_tables(folder)["courses"]["code_presentation"].astype(str))
                )
                if split not in presentations:
                    raise CommandError(
                        f"{folder}: no presentation {split} (has {', '.join(presentations)})"
                    )
                others = [p for p in presentations if p != split]
                if not others:
                    raise CommandError(f"{folder}: nothing left to train on besides {split}")
                train = load_oulad(folder, presentations=others)
                test = load_oulad(folder, presentations=[split])
                label = f"{folder} [{', '.join(others)}] -> {split}"
            else:
                parts = [load_oulad(d) for d in train_dirs]
                train_runs = _distinct_runs(parts, train_dirs)
                test_dir = Path(options["test"])
                # courses.csv first: the click files of runs left out are never read
                test_runs = set(course_keys(read_tables(test_dir)["courses"]).astype(str))
                if not test_runs:
                    raise CommandError(f"{test_dir}: courses.csv lists no course runs")
                held_out = sorted(test_runs - train_runs)
                if not held_out:
                    raise CommandError(
                        f"{test_dir}: every course run is also in the training data; "
                        "nothing held out to test on"
                    )
                left_out = sorted(test_runs & train_runs)
                train = _concat(parts)
                test = load_oulad(test_dir, course_ids=held_out if left_out else None)
                label = f"{', '.join(map(str, train_dirs))} -> {test_dir}"
        except OuladFormatError as exc:
            raise CommandError(str(exc).splitlines()[0]) from exc
        self._bar.clear()
        self.stdout.write(f"churn evaluation: {label}; cut-offs {cutoffs}")
        self._bar.set_description("features")
        if left_out:
            # scoring a run the models were trained on would inflate every figure
            self.stdout.write(
                f"  test: left out {len(left_out)} course run(s) also in the training data: "
                + ", ".join(left_out)
            )
        try:
            evaluation, _ = evaluate_churn(train, test, cutoffs, settings=settings, log=self._step)
        except ValueError as exc:
            raise CommandError(str(exc).splitlines()[0]) from exc
        self._bar.clear()
        self.stdout.write(evaluation.table())
        wall = time.perf_counter() - start
        self.stdout.write(f"wall time {wall:.1f} s")
        if options.get("json"):
            payload = {
                **evaluation.to_dict(),
                "command": label,
                "wall_seconds": wall,
                "left_out_test_runs": left_out,
            }
            _write_json(options["json"], payload)

    def _folds(self, train_dirs, cutoffs, settings, options, start) -> None:
        try:
            parts = [load_oulad(d) for d in train_dirs]
            _distinct_runs(parts, train_dirs)
        except OuladFormatError as exc:
            raise CommandError(str(exc).splitlines()[0]) from exc
        data = _concat(parts)
        label = ", ".join(map(str, train_dirs))
        presentations = presentations_of(data)
        if len(presentations) < 2:
            raise CommandError(
                f"{label}: forward folds need at least two presentations "
                f"(has {', '.join(presentations) or 'none'})"
            )
        self._bar.clear()
        self.stdout.write(f"churn folds: {label} ({', '.join(presentations)}); cut-offs {cutoffs}")
        self._bar.set_description("features")
        try:
            result = evaluate_folds(data, cutoffs, settings=settings, log=self._step)
        except ValueError as exc:
            raise CommandError(f"{label}: {str(exc).splitlines()[0]}") from exc
        self._bar.clear()
        self.stdout.write(result.table())
        wall = time.perf_counter() - start
        self.stdout.write(f"wall time {wall:.1f} s")
        if options.get("json"):
            payload = {
                **result.to_dict(),
                "command": f"--folds forward {label}",
                "wall_seconds": wall,
            }
            _write_json(options["json"], payload)


def _write_json(path: str, payload: dict) -> None:
    try:
        Path(path).write_text(json.dumps(payload, indent=2, sort_keys=True))
    except OSError as exc:
        raise CommandError(f"{path}: cannot write ({exc.strerror})") from exc
