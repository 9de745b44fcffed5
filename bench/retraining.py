"""Retraining time per stage on OULAD imported into PostgreSQL, from scratch and warm-started.

Run: python -m bench.run --only retraining [--full]

1. A scratch database with OULAD imported (full: all presentations of
   ../shared/datasets/oulad; quick: the 2013J and 2014B presentations), seen as of
   2014-12-31 (every run finished, so churn labels are final results).
2. For each kind, a retrain from scratch (v1, promoted), then one warm-started from
   it (v2), each in a fresh process, through the registry's own service
   (`model_version_train`: features -> train -> compress -> evaluate -> register ->
   gate -> promote), exactly what the Celery task runs.
3. The stage seconds each run recorded, its wall time, quality and served variant.
"""

from __future__ import annotations

import json
import os
import shutil

from bench.common import SHARED_OULAD, Section, manage, recreate_database, table

DB = os.environ.get("BENCH_RETRAIN_DB", "eduplatform_bench_retrain")
AS_OF = "2014-12-31"
TARGET_SECONDS = 120.0
QUICK_PRESENTATIONS = "2013J,2014B"

RUN = r"""
import json, time
from eduplatform.registry import services
t = time.perf_counter()
v = services.model_version_start(kind=KIND, triggered_by="bench", parameters={"warm_start": WARM})
v = services.model_version_train(version_id=v.id)
wall = time.perf_counter() - t
report = v.compression_report or {}
print("RESULT " + json.dumps({
    "kind": v.kind, "version": v.version, "status": v.status, "reason": v.status_reason,
    "wall": wall, "stages": v.metrics.get("stage_seconds", {}), "score": v.metrics.get("score"),
    "metric": "auc" if v.kind == "churn" else "ndcg@10",
    "warm_start": v.metrics.get("warm_start"), "warm_started": v.warm_started_from_id is not None,
    "variant": v.served_variant, "artifact_bytes": v.artifact_bytes,
    "served_model": report.get("served_model"),
    "variants": [{k: r.get(k) for k in ("name", "artifact_bytes", "quality")}
                 for r in report.get("variants", [])],
    "n_train": v.metrics.get("n_train"), "n_val": v.metrics.get("n_val"),
}, default=str))
"""

STAGES = ["features", "validate", "train", "compress", "evaluate"]


def _retrain(kind: str, warm: bool) -> dict:
    code = "import django\ndjango.setup()\n" + RUN.replace("KIND", repr(kind)).replace(
        "WARM", repr(warm)
    )
    out = manage("shell", "-c", code, name=DB, AS_OF_DATE=AS_OF, ARTIFACT_DIR=f"/tmp/{DB}")
    line = next(x for x in out.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


def run(full: bool) -> Section:
    """Long because it is one benchmark section: each model retrained and timed in turn on the same
    data.
    """
    mode = "full" if full else "quick"
    if not os.environ.get("BENCH_KEEP_DB"):
        recreate_database(DB)
        manage("migrate", "--noinput", name=DB)
        args = ["import_oulad", str(SHARED_OULAD), "--no-progress"]
        if not full:
            args += ["--presentations", QUICK_PRESENTATIONS]
        manage(*args, name=DB)
    counts = manage(
        "shell",
        "-c",
        "import django\ndjango.setup()\nfrom analytics.models import *\n"
        "print('COUNTS', Course.objects.count(), Enrollment.objects.count(), "
        "LearningEvent.objects.count())",
        name=DB,
    ).stdout
    counts = next(x for x in counts.splitlines() if x.startswith("COUNTS ")).split()[1:]
    # A clean registry: v1 from scratch, v2 warm-started from it.
    manage(
        "shell",
        "-c",
        "import django\ndjango.setup()\nfrom eduplatform.registry.models import ModelVersion\n"
        "ModelVersion.objects.all().delete()",
        name=DB,
    )
    shutil.rmtree(f"/tmp/{DB}", ignore_errors=True)
    runs = []
    for kind in ("churn", "recommender"):
        for warm in (False, True):
            runs.append(_retrain(kind, warm))
    rows = []
    for r in runs:
        rows.append(
            [
                f"{r['kind']} v{r['version']}",
                "warm" if r["warm_started"] else "scratch",
                *[r["stages"].get(s, "") for s in STAGES],
                round(r["wall"], 1),
                "yes" if r["wall"] <= TARGET_SECONDS else "**no**",
                f"{r['metric']} {r['score']:.4f}" if r["score"] is not None else "n/a",
                r["variant"],
                r["artifact_bytes"],
                r["status"],
            ]
        )
    body = (
        f"OULAD from `{SHARED_OULAD.name}` "
        f"({'all presentations' if full else 'presentations ' + QUICK_PRESENTATIONS}: "
        f"{int(counts[0])} course runs, {int(counts[1]):,} enrolments, "
        f"{int(counts[2]):,} event rows) in PostgreSQL, as of {AS_OF}. Each run is "
        "`model_version_train` in a fresh process (what the Celery task calls): seconds "
        "per stage as the run recorded them, wall = the whole call including register, "
        "gate and promotion.\n\n"
        + table(
            [
                "run",
                "start",
                *STAGES,
                "wall s",
                f"<= {TARGET_SECONDS:.0f} s",
                "validation",
                "served",
                "artifact bytes",
                "status",
            ],
            rows,
        )
        + "\n\nStages: features = reading the database into frames (and churn features); "
        "validate = the recommender's fit on all but the last 14 days and its NDCG@10 there; "
        "train = the model that is served (warm: from the previous version's fp32 "
        "checkpoint); compress = every variant built, timed and scored, and the chosen recipe "
        "applied; evaluate = churn's served-variant AUC and the champion's on the same rows. "
        "Warm start: churn's networks start from the previous version's (same columns and "
        "architecture) and train at most 5 epochs; the recommender's refit starts from the "
        "previous network and trains on half the replay batches. The recommender's validation "
        "fit always starts from scratch (a warm start from a model that saw the held-out "
        "window would leak it), so its NDCG@10 is the same in both rows.\n"
    )
    return Section(
        name="retraining",
        title="Retraining per stage",
        body=body,
        mode=mode,
        figures={"runs": runs, "as_of": AS_OF, "target_seconds": TARGET_SECONDS},
    )
