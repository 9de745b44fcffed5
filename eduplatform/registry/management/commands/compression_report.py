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

No database access. Timings are in this process, one thread by default.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from django.conf import settings as django_settings
from django.core.management.base import BaseCommand, CommandError

DEFAULT_COURSES = "DDD_2013B,DDD_2013J,DDD_2014B"
CUTOFFS = [30, 60, 90, 150]


class Command(BaseCommand):
    help = "Compress a freshly trained churn or recommender model and print the variant table."

    def add_arguments(self, parser):
        parser.add_argument("--model", required=True, choices=["churn", "recommender"])
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
        parser.add_argument("--threads", type=int, default=1)
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
        parser.add_argument("--bench-seconds", type=float, default=60.0)
        parser.add_argument("--seed", type=int, default=0)

    # ------------------------------------------------------------------ helpers

    def _say(self, message: str) -> None:
        self.stderr.write(f"  {message}")

    def _settings(self, options):
        from eduplatform.ml.compress import VARIANTS, CompressionSettings

        kind = CompressionSettings.churn if options["model"] == "churn" else None
        s = (kind or CompressionSettings.recommender)(threads=max(1, options["threads"]))
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
        return s

    def _policy(self, kind: str, options):
        from eduplatform.ml.compress import SelectionPolicy

        policy = SelectionPolicy.churn() if kind == "churn" else SelectionPolicy.recommender()
        if options.get("tolerance") is not None:
            policy.tolerance = options["tolerance"]
        return policy

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

    # ------------------------------------------------------------------ kinds

    def _churn(self, options, s, policy, tmp: Path):
        from churn.model.evaluate import split_by_time
        from churn.model.features import build_dataset
        from churn.model.model import ChurnSettings, train_churn_model
        from churn.model.compression import compress_churn

        data, label = self._data(options, tmp)
        features = build_dataset(data, CUTOFFS).labelled()
        is_val, val_names = split_by_time(features, data.courses)
        fit, val = features.subset(~is_val), features.subset(is_val)
        if len(fit) == 0 or len(val) == 0 or len(set(val.labels)) < 2:
            raise CommandError("need labelled rows of both classes before and in the last run")
        cs = ChurnSettings(refit=False)
        if options.get("seeds"):
            cs.seeds = tuple(range(max(1, options["seeds"])))
        if options.get("max_epochs"):
            cs.max_epochs = max(1, options["max_epochs"])
        self._say(f"churn: {label}; {len(fit)} train rows, {len(val)} validation rows {val_names}")
        t0 = time.perf_counter()
        predictor, report = train_churn_model(fit, val, cs)
        self._say(
            f"trained in {time.perf_counter() - t0:.1f}s, validation AUC {report.val_auc:.4f}"
        )
        epochs = options.get("finetune_epochs")
        result = compress_churn(
            predictor,
            fit,
            val,
            policy=policy,
            settings=s,
            finetune_epochs=2 if epochs is None else epochs,
            log=self._say,
        )
        result.extra.update({"data": label, "validation": val_names})
        return result, f"churn model, {label}"

    def _recommender(self, options, s, policy, tmp: Path):
        from recommender.model.compression import (
            compress_recommender,
            distill_finetune,
            fidelity_evaluator,
            ndcg_evaluator,
            ranking_finetune,
        )

        epochs = options.get("finetune_epochs")
        if options.get("catalog_items"):
            n = options["catalog_items"]
            if n < 20:
                raise CommandError("--catalog-items must be at least 20")
            large = n > 5000
            t0 = time.perf_counter()
            if options["untrained"]:
                from recommender.model.synthetic import build_synthetic

                rec = build_synthetic(n, seed=options["seed"], n_learners=options["learners"])
                evaluate = fidelity_evaluator(rec, learners=200)
                what = "untrained network, quality = agreement with fp32's top 10"
            else:
                from recommender.model.compression import synthetic_catalogue

                rec, splits, split = synthetic_catalogue(
                    n, seed=options["seed"], n_learners=options["learners"]
                )
                evaluate = ndcg_evaluator(rec, splits, split)
                learners = sum(len(x.test_rows) for x in splits)
                what = (
                    f"trained on days < {split}, NDCG@10 of the later first visits "
                    f"of {learners} learners"
                )
            self._say(f"synthetic catalogue of {n} items ready in {time.perf_counter() - t0:.1f}s")
            finetune = distill_finetune(
                rec,
                epochs=3 if epochs is None else epochs,
                batch_size=8 if large else 64,
                max_learners=64 if large else 2048,
            )
            result = compress_recommender(
                rec, evaluate=evaluate, finetune=finetune, policy=policy, settings=s, log=self._say
            )
            result.extra.update({"quality": what})
            return result, f"recommender, synthetic catalogue of {n} items ({what})"

        from recommender.model.evaluate import split_runs, train_view
        from recommender.model.runs import build_runs, type_vocabulary
        from recommender.model.predictor import Recommender
        from recommender.model.train import TrainConfig, train_net

        data, label = self._data(options, tmp)
        split = options["split_day"]
        view = train_view(data, split)
        config = TrainConfig(seed=options["seed"])
        if options.get("max_epochs"):
            config.epochs = max(1, options["max_epochs"])
        vocab = type_vocabulary(view.items)
        t0 = time.perf_counter()
        # Recommender.fit, keeping the raw rows for the fine-tuning replays
        runs = build_runs(
            view,
            split,
            vocab,
            config.half_life_days,
            config.follow_window,
            config.neighbours,
            keep_raw=True,
        )
        if not runs:
            raise CommandError(f"no clicks before day {split}")
        net, stats = train_net(runs, len(vocab), config)
        finetune = ranking_finetune(
            runs, len(vocab), config, epochs=2 if epochs is None else epochs
        )
        rec = Recommender(net, runs, vocab, config, stats)
        self._say(f"recommender: {label}; trained in {time.perf_counter() - t0:.1f}s")
        splits = split_runs(data, split)
        if not splits:
            raise CommandError(f"no learner with clicks both before and after day {split}")
        result = compress_recommender(
            rec,
            evaluate=ndcg_evaluator(rec, splits, split),
            finetune=finetune,
            policy=policy,
            settings=s,
            log=self._say,
        )
        for run in runs:
            run.raw = None
            run.follow_all = None
        result.extra.update(
            {
                "data": label,
                "split_day": split,
                "test_learners": sum(len(x.test_rows) for x in splits),
            }
        )
        return result, f"recommender, {label}, split day {split}"

    # ------------------------------------------------------------------ main

    def handle(self, *args, **options):
        import torch

        started = time.perf_counter()
        kind = options["model"]
        if options.get("catalog_items") and kind != "recommender":
            raise CommandError("--catalog-items applies to --model recommender")
        torch.manual_seed(options["seed"])
        s = self._settings(options)
        policy = self._policy(kind, options)
        serve = options.get("serve")
        if serve and serve not in ("fp32", *s.variants):
            raise CommandError(f"--serve {serve}: not among the variants built")
        with tempfile.TemporaryDirectory(prefix="compression-report-") as tmp:
            if kind == "churn":
                result, title = self._churn(options, s, policy, Path(tmp))
            else:
                result, title = self._recommender(options, s, policy, Path(tmp))
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
