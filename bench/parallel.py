"""Data parallelism: feature extraction and batch scoring over 1 against 2 processes.

Run: python -m bench.run --only parallel [--full]

1. The features section's OULAD database (quick: 2014B, six runs; full: all 15
   presentations); churn and recommender trained and promoted once.
2. Each step in this process (no pool), in a pool of one worker process and in
   a pool of two (`bench.course_pool.CoursePool`), the course runs split into
   chunks of about equal enrolments. Pools are started and warmed (Django set
   up, models loaded) before the clock starts; start-up is reported apart.
3. The outputs are checked equal: features and frames row for row (sorted by
   key), batch-score rows as written to the database.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import statistics
import sys
import time

from bench.common import ROOT, Section, table
from bench.features import AS_OF, ensure_oulad, measure_subprocess

FAST_CHURN = {"seeds": [0], "max_epochs": 3, "refit": False}


def _snapshot(kind: str) -> list[tuple]:
    from churn.models import RiskScore
    from recommender.models import NextItems

    if kind == "churn":
        return sorted(
            RiskScore.objects.values_list(
                "course_id", "learner_id", "model_version", "probability", "band", "factors"
            )
        )
    return sorted(
        (c, learner, v, json.dumps(items))
        for c, learner, v, items in NextItems.objects.values_list(
            "course_id", "learner_id", "model_version", "items"
        )
    )


def _diff(a: list[tuple], b: list[tuple]) -> dict:
    keys_equal = [r[:3] for r in a] == [r[:3] for r in b]
    exact = a == b
    max_prob = 0.0
    if keys_equal and a and isinstance(a[0][3], float):
        max_prob = max(abs(x[3] - y[3]) for x, y in zip(a, b, strict=True))
    return {"rows": len(b), "same_learners": keys_equal, "exact": exact, "max_abs_diff": max_prob}


def _compare(a, b, keys: list[str]) -> dict:
    """Rows sorted by key; whether every column is equal, else the share of rows differing."""
    import pandas as pd

    a = a.sort_values(keys, kind="stable").reset_index(drop=True)
    b = b.sort_values(keys, kind="stable").reset_index(drop=True)
    if list(a.columns) != list(b.columns) or len(a) != len(b):
        return {"equal": False, "differing": {"shape": 1.0}}
    differing = {}
    for column in a.columns:
        try:
            pd.testing.assert_series_equal(a[column], b[column], check_dtype=False)
        except AssertionError:
            x, y = a[column], b[column]
            same = (x == y) | (x.isna() & y.isna())
            differing[column] = float(1 - same.mean())
    return {"equal": not differing, "differing": differing, "rows": len(a)}


def measure(repeats: int) -> dict:
    """Long because it times 1 against 2 processes for each job kind in one run, side by side."""
    import django
    import pandas as pd

    django.setup()
    from analytics.learning_data import learning_data
    from analytics.models import Course
    from bench import course_pool as parallel
    from churn.features import training_sets
    from eduplatform.registry import services
    from eduplatform.registry.models import ModelVersion

    as_of = dt.date.fromisoformat(AS_OF)
    training = {}
    for kind, params in (("churn", FAST_CHURN), ("recommender", {})):
        if not ModelVersion.objects.filter(kind=kind, status="active").exists():
            started = time.perf_counter()
            version = services.retrain_request(kind=kind, triggered_by="bench", parameters=params)
            version.refresh_from_db()
            assert version.status == "active", (kind, version.status, version.status_reason)
            training[kind] = time.perf_counter() - started
    ids = list(Course.objects.order_by("id").values_list("id", flat=True))

    def churn_inline():
        return training_sets(as_of=as_of)

    def churn_pool(pool):
        return parallel.parallel_training_sets(as_of=as_of, pool=pool)

    def rec_inline():
        return learning_data(course_ids=ids, until=as_of, with_items=True)

    def rec_pool(pool):
        return parallel.parallel_learning_data(
            course_ids=ids, until=as_of, with_items=True, pool=pool
        )

    def score_inline(kind):
        return services.batch_scores_refresh(kind=kind, course_ids=ids)

    def score_pool(kind, pool):
        return parallel.parallel_batch_scores(kind, ids, pool=pool)

    for kind in ("churn", "recommender"):
        parallel.load_served(kind)
    start_seconds = {}
    pools = {}
    for n in (1, 2):
        started = time.perf_counter()
        pool = parallel.CoursePool(n).__enter__()
        pool.on_every_worker()
        start_seconds[n] = time.perf_counter() - started
        for kind in ("churn", "recommender"):
            pool.on_every_worker(_Loader(kind))
        pools[n] = pool
    chunks = {n: parallel.chunks_for(ids, n) for n in (1, 2)}

    seconds: dict[str, dict[str, list[float]]] = {}
    checks: dict[str, dict] = {}
    outputs: dict[str, dict] = {}

    def timed(step: str, who: str, fn):
        started = time.perf_counter()
        out = fn()
        seconds.setdefault(step, {}).setdefault(who, []).append(time.perf_counter() - started)
        return out

    for _ in range(repeats):
        ref = timed("churn", "inline", churn_inline)
        ref_frame = ref.train.frame.assign(label=ref.train.labels)
        ref_val = ref.val.frame.assign(label=ref.val.labels)
        for n, pool in pools.items():
            got = timed("churn", f"pool{n}", lambda p=pool: churn_pool(p))
            checks.setdefault("churn", {})[f"pool{n}"] = _compare(
                pd.concat([ref_frame, ref_val], ignore_index=True),
                pd.concat(
                    [
                        got.train.frame.assign(label=got.train.labels),
                        got.val.frame.assign(label=got.val.labels),
                    ],
                    ignore_index=True,
                ),
                ["course_id", "learner_id", "cutoff"],
            )
        outputs["churn"] = {"rows": len(ref.train) + len(ref.val)}
        del ref, ref_frame, ref_val, got
        ref = timed("recommender", "inline", rec_inline)
        for n, pool in pools.items():
            got = timed("recommender", f"pool{n}", lambda p=pool: rec_pool(p))
            checks.setdefault("recommender", {})[f"pool{n}"] = {
                name: _compare(getattr(ref, name), getattr(got, name), keys)
                for name, keys in (
                    ("item_activity", ["course_id", "learner_id", "item_id", "day"]),
                    ("activity", ["course_id", "learner_id", "day", "activity_type"]),
                    ("enrolments", ["course_id", "learner_id"]),
                )
            }
        outputs["recommender"] = {"rows": len(ref.item_activity) + len(ref.activity)}
        del ref, got
        for kind in ("churn", "recommender"):
            step = f"score_{kind}"
            written = timed(step, "inline", lambda k=kind: score_inline(k))
            reference = _snapshot(kind)
            outputs[step] = {"rows": written}
            for n, pool in pools.items():
                timed(step, f"pool{n}", lambda k=kind, p=pool: score_pool(k, p))
                checks.setdefault(step, {})[f"pool{n}"] = _diff(reference, _snapshot(kind))
    for pool in pools.values():
        pool.__exit__(None, None, None)
    return {
        "courses": len(ids),
        "chunks": chunks,
        "start_seconds": start_seconds,
        "training_seconds": training,
        "seconds": {s: {w: statistics.median(v) for w, v in d.items()} for s, d in seconds.items()},
        "all_seconds": seconds,
        "checks": checks,
        "outputs": outputs,
        "repeats": repeats,
    }


def _same_text(step: str, check: dict) -> str:
    if step.startswith("score"):
        if not all(c["same_learners"] for c in check.values()):
            return "NO: different learners"
        if all(c["exact"] for c in check.values()):
            return "yes, identical rows"
        worst = max(c["max_abs_diff"] for c in check.values())
        return f"same learners, bands may differ; max probability diff {worst:.1e}"
    if step == "recommender":
        check = {f"{w}.{name}": c for w, d in check.items() for name, c in d.items()}
    if all(c["equal"] for c in check.values()):
        return "yes, identical (sorted by key)"
    columns = sorted({col for c in check.values() for col in c["differing"]})
    worst = max(v for c in check.values() for v in c["differing"].values())
    return f"all but {', '.join(f'`{c}`' for c in columns)} (up to {worst:.2%} of rows; see below)"


class _Loader:
    """Picklable `load_served(kind)` for `CoursePool.on_every_worker`."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def __call__(self) -> int | None:
        from bench.course_pool import load_served

        return load_served(self.kind)


def run(full: bool) -> Section:
    name, _ = ensure_oulad(full)
    m = measure_subprocess(
        "parallel",
        name,
        "2",
        AS_OF_DATE=AS_OF,
        CELERY_TASK_ALWAYS_EAGER="true",
        SERVING_FEATURES_TTL="0",
        ARTIFACT_DIR=str(ROOT / "var" / "bench-artifacts" / name),
    )
    m["load_average"] = os.getloadavg()[0]
    return render(m, full)


def _pays_note(m: dict, labels: dict[str, str]) -> str:
    """Which steps two workers make faster than the product's in-process step."""
    ratio = {k: m["seconds"][k]["inline"] / m["seconds"][k]["pool2"] for k in labels}
    name = {k: label.split(" (")[0] for k, label in labels.items()}
    pays = [f"{name[k]} ({r:.2f}x)" for k, r in ratio.items() if r >= 1.1]
    not_pays = [f"{name[k]} ({r:.2f}x)" for k, r in ratio.items() if r < 1.1]
    text = "\n\nAgainst the in-process step, two workers pay for " + (
        ", ".join(pays) if pays else "none of the steps"
    )
    if not_pays:
        text += (
            "; not for "
            + ", ".join(not_pays)
            + ": under 1.1x is within this box's noise, and a step whose frames come back "
            "to the parent through the pipe gains from the second core only where its "
            "in-process time is mostly work rather than the rows it returns"
        )
    return text + "."


def render(m: dict, full: bool) -> Section:
    """The section from the measured figures (also to re-render a saved parallel.json).

    Long because it writes one report section (table rows and notes) from one result dict.
    """
    labels = {
        "churn": "churn training features (`training_sets` / `parallel_training_sets`)",
        "recommender": "recommender frames (`learning_data(with_items=True)`)",
        "score_churn": "churn batch scores (`batch_scores_refresh`, rows written)",
        "score_recommender": "recommender batch next items (rows written)",
    }
    rows = []
    for step, label in labels.items():
        s = m["seconds"][step]
        same_text = _same_text(step, m["checks"][step])
        rows.append(
            [
                label,
                m["outputs"][step]["rows"],
                s["inline"],
                s["pool1"],
                s["pool2"],
                f"{s['pool1'] / s['pool2']:.2f}x",
                f"{s['inline'] / s['pool2']:.2f}x",
                same_text,
            ]
        )
    total = {w: sum(m["seconds"][s][w] for s in labels) for w in ("inline", "pool1", "pool2")}
    rows.append(
        [
            "all four",
            "",
            total["inline"],
            total["pool1"],
            total["pool2"],
            f"{total['pool1'] / total['pool2']:.2f}x",
            f"{total['inline'] / total['pool2']:.2f}x",
            "",
        ]
    )
    note = _pays_note(m, labels)
    if "last_score" in json.dumps(m["checks"]["churn"]):
        note += (
            "\n\n`last_score` differs on learners with two scored submissions on the same day: "
            "`churn/model/features.py` orders a learner's submissions by day only "
            "(stable sort), so a same-day tie keeps the row order of the SQL read, which "
            "has no ORDER BY and differs between one read of all runs and one read per chunk. "
            "The one-process feature is just as order-dependent (a different plan or a VACUUM "
            "can change it); breaking the tie by assessment (sort by row, day, due day, "
            "assessment id) would make both identical."
        )
    body = (
        f"OULAD {'all 15 presentations' if full else '2014B'} ({m['courses']} course runs), as "
        f"of {AS_OF}; `bench.course_pool.CoursePool` (spawned processes, each with its own "
        "PostgreSQL connection), runs split into chunks of about equal enrolments "
        f"(2 workers: {' | '.join(str(len(c)) + ' runs' for c in m['chunks']['2'])}). "
        f"Median of {m['repeats']} interleaved repeats, seconds of wall time.\n\n"
        + table(
            [
                "step",
                "rows",
                "in-process",
                "1 worker",
                "2 workers",
                "speed-up 1 -> 2",
                "2 workers vs in-process",
                "same output",
            ],
            rows,
        )
        + note
        + f"\n\nStarting a pool (spawn, Django set up) took {m['start_seconds']['1']:.1f} s for "
        f"one worker and {m['start_seconds']['2']:.1f} s for two; the times above leave it out "
        "(the pools were started and the served models loaded first), as a long-lived worker "
        "would. One worker is slower than in-process for the two feature steps because their "
        "frames come back to the parent pickled through a pipe (hundreds of MB on all of OULAD); "
        "scoring returns only counts, its rows go straight to PostgreSQL. The machine has 2 cores shared with other jobs (load average "
        f"{m['load_average']:.1f} at the end of this run) and PostgreSQL runs on the same 2 cores: each "
        "worker's SQL runs in its own server process, so a read-bound step can gain from the "
        "second worker only as far as the other core is free. Batch scores are written in one "
        "transaction per run, as the in-line refresh writes them, so two workers write "
        "different runs at the same time; across machines the Celery scoring queue does the "
        "same split (`registry.score_all`).\n"
    )
    return Section(
        name="parallel",
        title="Data parallelism (1 against 2 processes)",
        body=body,
        mode="full" if full else "quick",
        figures={**m, "as_of": AS_OF},
    )


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "measure":
        print(json.dumps(measure(int(sys.argv[2])), default=str))
