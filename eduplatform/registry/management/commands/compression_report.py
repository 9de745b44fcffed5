"""Train a small model, build its compressed variants, print the variant table.

    python manage.py compression_report --model churn [--data DIR] [--json FILE]
    python manage.py compression_report --model recommender [--data DIR] [--json FILE]
    python manage.py compression_report --model recommender --catalog-items 50000

churn        OULAD folder (default ../shared/datasets/oulad), the runs of
             --courses (default DDD's three presentations): trained on the earlier
             presentations, validated (AUC) on the latest one. Without the folder
             (or with --synthetic) on a generated platform written as an OULAD folder.
recommender  same data; trained on the clicks before --split-day, quality = NDCG@10
             of the first visits on or after it (the product's evaluation protocol).
             With --catalog-items N: one synthetic course run of N items (the
             generator of recommender.model.synthetic.build_synthetic),
             trained on its first 56 days, NDCG@10 of the first visits of the last
             14; this mode shows how size and speed scale with the catalogue.
             --untrained: build_synthetic's random network instead (seconds), quality
             = agreement of each variant's top 10 with fp32's (NDCG@10, fp32 = 1.0).

No database access. Timings are in this process, one thread by default. Each kind's
`compression_report` entry point (registered with the registry) trains and compresses;
this command only parses options, loads the folder and prints the table.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from django.conf import settings as django_settings
from django.core.management.base import BaseCommand, CommandError

from eduplatform.core.progress import command_bar, say

DEFAULT_COURSES = "DDD_2013B,DDD_2013J,DDD_2014B"


class Command(BaseCommand):
    help = "Compress a freshly trained churn or recommender model and print the variant table."

    def add_arguments(self, parser):
        from eduplatform.registry.kinds import kind_names

        parser.add_argument(
            "--model", required=True, choices=kind_names(), help="the model kind to report on"
        )
        parser.add_argument("--data", help="OULAD folder (default ../shared/datasets/oulad)")
        parser.add_argument(
            "--courses",
            default=DEFAULT_COURSES,
            help=f"course runs (module_presentation) to use (default {DEFAULT_COURSES})",
        )
        parser.add_argument("--synthetic", action="store_true", help="use generated data")
        parser.add_argument("--max-students", type=int, help="first N learners of each run")
        parser.add_argument("--catalog-items", type=int, help="recommender: synthetic catalogue")
        parser.add_argument("--learners", type=int, default=500, help="with --catalog-items")
        parser.add_argument(
            "--untrained",
            action="store_true",
            help="with --catalog-items: random network (fast), quality = agreement with fp32",
        )
        parser.add_argument("--split-day", type=int, default=100, help="recommender split day")
        parser.add_argument("--json", metavar="FILE", help="also write the report as JSON")
        parser.add_argument("--variants", help="comma-separated variant names (default: all)")
        parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
        parser.add_argument("--seeds", type=int, help="churn ensemble members (default: model's)")
        parser.add_argument("--max-epochs", type=int, help="training epoch cap")
        parser.add_argument("--finetune-epochs", type=int, help="fine-tuning epochs per step")
        parser.add_argument(
            "--finetune",
            choices=["distill", "ranking"],
            default="distill",
            help="recommender fine-tuning: match fp32 (default) or the training objective",
        )
        parser.add_argument("--sparsity", type=float, help="magnitude pruning sparsity")
        parser.add_argument("--keep", type=float, help="structured pruning: share of units kept")
        parser.add_argument("--energy", type=float, help="low-rank: explained energy")
        parser.add_argument(
            "--serve",
            metavar="VARIANT",
            help="serve this variant (a recipe chosen on other data, e.g. OULAD, for a "
            "synthetic catalogue); the policy's own choice is reported too",
        )
        parser.add_argument("--tolerance", type=float, help="quality tolerance of the policy")
        parser.add_argument("--repeats", type=int, help="timing rounds at batch 1 (b256: / 5)")
        parser.add_argument(
            "--bench-seconds",
            type=float,
            default=60.0,
            help="timing budget in seconds per batch size, all variants together (default 60)",
        )
        parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")

    # ------------------------------------------------------------------ helpers

    def _say(self, message: str) -> None:
        # Above the elapsed-time line when one is drawn (a terminal, -v 1 or more).
        say(self, self._bar, f"  {message}")
        self._bar.set_description(message.strip()[:60])

    def _tuner(self, options):
        """Apply the command's overrides to a kind's default settings and policy."""
        from eduplatform.ml.compress import VARIANTS

        def tune(s, policy) -> None:
            s.threads = max(1, options["threads"])
            if options.get("variants"):
                names = tuple(v.strip() for v in options["variants"].split(",") if v.strip())
                unknown = [n for n in names if n not in VARIANTS]
                if unknown:
                    raise CommandError(f"unknown variants {unknown} (known: {', '.join(VARIANTS)})")
                s.variants = names
            if options.get("sparsity") is not None:
                s.magnitude_sparsity = options["sparsity"]
            if options.get("keep") is not None:
                s.structured_keep = options["keep"]
            if options.get("energy") is not None:
                s.lowrank_energy = options["energy"]
            if options.get("repeats"):
                s.repeats_b1 = options["repeats"]
                s.repeats_b256 = max(3, options["repeats"] // 5)
                s.min_repeats = min(s.min_repeats, s.repeats_b256)
            s.bench_seconds = options["bench_seconds"]
            if options.get("tolerance") is not None:
                policy.tolerance = options["tolerance"]
            serve = options.get("serve")
            if serve and serve not in ("fp32", *s.variants):
                raise CommandError(f"--serve {serve}: not among the variants built")

        return tune

    def _data(self, options, tmp: Path):
        from eduplatform.ml.datasets.oulad import OuladFormatError, load_oulad

        folder = Path(options["data"]) if options.get("data") else None
        if folder is None:
            folder = Path(django_settings.BASE_DIR).parent / "shared" / "datasets" / "oulad"
        courses: list[str] | None = [c.strip() for c in options["courses"].split(",") if c.strip()]
        if options["synthetic"] or not folder.is_dir():
            from eduplatform.ml.datasets.synthetic import generate, write_oulad_folder

            if not options["synthetic"]:
                self._say(f"{folder}: not found, using generated data")
            platform = generate(
                learners=options.get("max_students") or 300, courses=3, seed=options["seed"] + 7
            )
            folder = tmp / "synthetic_oulad"
            write_oulad_folder(platform, folder)
            courses = None
        try:
            data = load_oulad(folder, course_ids=courses, max_students=options.get("max_students"))
        except OuladFormatError as exc:
            raise CommandError(str(exc).splitlines()[0]) from exc
        if data.courses.empty:
            raise CommandError(f"{folder}: none of the course runs {courses}")
        label = f"{folder} [{', '.join(map(str, data.courses['course_id']))}]"
        return data, label

    # ------------------------------------------------------------------ main

    def handle(self, *args, **options):
        import torch

        from eduplatform.registry.kinds import CompressionRequest, get_kind

        started = time.perf_counter()
        kind = get_kind(options["model"])
        if kind.compression_report is None:
            raise CommandError(f"model kind {kind.name!r} has no compression report")
        if options.get("catalog_items") and kind.name != "recommender":
            raise CommandError("--catalog-items applies to --model recommender")
        torch.manual_seed(options["seed"])
        self._bar = command_bar(self, options, bar_format="{desc} [{elapsed}]", desc="training")
        with (
            self._bar,
            tempfile.TemporaryDirectory(prefix="compression-report-") as tmp,
        ):
            request = CompressionRequest(
                options=options,
                load_data=lambda: self._data(options, Path(tmp)),
                tune=self._tuner(options),
                log=self._say,
            )
            try:
                result, title = kind.compression_report(request)
            except ValueError as exc:
                raise CommandError(str(exc)) from exc
        serve = options.get("serve")
        if serve:
            result.force(serve, f"forced by --serve {serve}")
        wall = time.perf_counter() - started
        self.stdout.write(f"compression report: {title}")
        self.stdout.write(result.table())
        self.stdout.write(f"wall time {wall:.1f}s")
        if options.get("json"):
            payload = {**result.to_dict(), "title": title, "wall_seconds": round(wall, 1)}
            try:
                path = Path(options["json"])
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
            except OSError as exc:
                raise CommandError(f"{options['json']}: cannot write ({exc.strerror})") from exc
