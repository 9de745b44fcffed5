"""Feature extraction against one plain SQL aggregate scan of the same events.

Run: python -m bench.run --only features [--full]

1. A scratch database with OULAD imported (quick: the six 2014B runs; full: all
   15 presentations in ../shared/datasets/oulad).
2. In one process, side by side and interleaved (median of the repeats):
   the raw event aggregate scan (the I/O limit), the daily-rollup read, churn
   training features (`churn.features.training_sets`), churn serving frames
   of every run, and the recommender's frames (`learning_data(with_items=True,
   with_activity=False)`, as its retraining reads them).
3. Where the time of each product step goes (SQL read against pandas/numpy).
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
import subprocess
import sys
import time

from bench.common import (
    ROOT,
    SHARED_OULAD,
    Section,
    django_env,
    manage,
    recreate_database,
    table,
)

QUICK_PRESENTATIONS = ["2014B"]
AS_OF = "2015-01-01"  # after every OULAD run here ended: all runs finished, all labelled

# The limit: every event read once, summed per learner x course x day.
SCAN_SQL = (
    "SELECT learner_id, course_id, (occurred_at AT TIME ZONE 'UTC')::date AS day, "
    "SUM(count) AS clicks FROM analytics_learningevent GROUP BY 1, 2, 3"
)
ROLLUP_SQL = (
    "SELECT course_id, learner_id, date, activity_type, clicks FROM analytics_dailyactivity "
    "WHERE date < '{as_of}'"
)


SUGGESTIONS = """\
What brought the product steps to this, and what is left:

- Recommender frames: the per-item clicks need the raw events (the rollup has no item). They
  are read with the timestamp as ADBC hands it over (the UTC day computed from its integer
  microseconds, not by the server) and summed over one packed integer key instead of a
  four-column `groupby` (`sum_clicks`), one course run at a time straight from the Arrow
  batches (`item_clicks_per_day`: no pandas copy, global ordering or concatenation of
  read-sized arrays, whose fresh pages cost 1.5-2 s on 9.9M rows). A per-item daily rollup
  kept at ingestion would make it a plain read of fewer rows on data that is not already
  daily (OULAD is).
- Churn serving frames: every `learning_data` call reads its seven frames over one ADBC
  connection (opening one per read cost about 0.4 s per run).
- Churn training features: `LearningData.by_course` splits the frames by run in one pass
  (filtering every frame once per run cost runs x rows); `build_dataset` is most of the rest.
"""


def database(full: bool) -> str:
    return "eduplatform_bench_feat_full" if full else "eduplatform_bench_feat_quick"


def ensure_oulad(full: bool) -> tuple[str, float | None]:
    """The section's OULAD database, imported if it is not there yet (import is idempotent)."""
    import psycopg

    from bench.common import PG_ADMIN_URL

    name = database(full)
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
    if not exists:
        recreate_database(name)
    manage("migrate", "--noinput", name=name)
    args = ["import_oulad", str(SHARED_OULAD), "--no-progress"]
    if not full:
        args += ["--presentations", ",".join(QUICK_PRESENTATIONS)]
    started = time.perf_counter()
    out = manage(*args, name=name)
    print(out.stdout.strip(), file=sys.stderr)
    return name, None if "skipped" in out.stdout else time.perf_counter() - started


def measure_subprocess(module: str, name: str, *args: str, **env: str) -> dict:
    """Run `python -m bench.<module> measure ...` on database `name`; its last stdout line is JSON."""
    result = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "python"), "-m", f"bench.{module}", "measure", *args],
        cwd=ROOT,
        env={**django_env(name), **env},
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(f"bench.{module} measure failed:\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- in the subprocess


def _copy_rows(sql: str) -> tuple[int, int]:
    """Stream a query's rows to this process as CSV (as the product's reads do); rows, bytes."""
    from django.db import connection

    rows = size = 0
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)") as copy,
    ):
        for block in copy:
            size += len(block)
            rows += bytes(block).count(b"\n")
    return rows, size


def _server_scan() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM ({SCAN_SQL}) s")
        return int(cursor.fetchone()[0])


def measure(repeats: int) -> dict:
    """Long because it times each feature step in turn on the same frames (side by side in one
    run).
    """
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection

    from analytics.learning_data import frames_reader, learning_data, read_item_activity
    from analytics.models import Course
    from churn.features import serving_frames, training_sets
    from churn.model.features import build_dataset

    as_of = dt.date.fromisoformat(AS_OF)
    courses = list(Course.objects.order_by("start_date", "id"))
    ids = [c.id for c in courses]
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*), coalesce(sum(count), 0) FROM analytics_learningevent")
        events, clicks = cursor.fetchone()
        cursor.execute("SELECT count(*) FROM analytics_dailyactivity")
        rollup_rows = cursor.fetchone()[0]

    def churn_training() -> int:
        sets = training_sets(as_of=as_of)
        return len(sets.train) + len(sets.val)

    def churn_serving() -> int:
        serving_frames.clear()
        return sum(len(serving_frames.get(c, as_of)) for c in courses)

    def recommender() -> int:
        # As the recommender's retraining reads them (recommender/services.py): no rollup.
        data = learning_data(course_ids=ids, until=as_of, with_items=True, with_activity=False)
        return len(data.item_activity)

    # Parts of the product steps: the SQL reads alone, and the pandas/numpy work alone.
    def churn_read() -> int:
        return len(learning_data(course_ids=ids, until=as_of, with_items=False).activity)

    data = learning_data(course_ids=ids, until=as_of, with_items=False)

    subsets = data.by_course()

    def churn_subset() -> int:
        # what training_sets does before building: split every frame by run, once
        return sum(len(part.activity) for part in data.by_course().values())

    def churn_build() -> int:
        rows = 0
        for c in courses:
            cut = [k for k in settings.CHURN_CUTOFFS if k < min(c.day_of(as_of), c.length_days)]
            rows += len(build_dataset(subsets[c.id], cut, label_mode="oulad"))
        return rows

    item_sql = (
        "SELECT e.course_id, e.learner_id, e.item_id, (e.occurred_at AT TIME ZONE 'UTC')::date, "
        f"SUM(e.count) FROM analytics_learningevent e WHERE e.course_id IN "
        f"({', '.join(map(str, ids))}) AND e.item_id IS NOT NULL AND e.occurred_at < '{AS_OF}' "
        "GROUP BY 1, 2, 3, 4"
    )

    def item_server() -> int:
        # the per-item aggregate done by PostgreSQL alone (what a GROUP BY per item costs)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM ({item_sql}) s")
            return int(cursor.fetchone()[0])

    starts = {c.id: c.start_date for c in courses}

    def item_product() -> int:
        # the recommender's own item-click read, as learning_data calls it
        with frames_reader() as read:
            return len(read_item_activity(read, ", ".join(map(str, ids)), starts, as_of))

    steps = {
        "scan_server": _server_scan,
        "scan_copy": lambda: _copy_rows(SCAN_SQL)[0],
        "rollup_copy": lambda: _copy_rows(ROLLUP_SQL.format(as_of=AS_OF))[0],
        "item_server": item_server,
        "item_product": item_product,
        "churn_training": churn_training,
        "churn_serving": churn_serving,
        "recommender": recommender,
        "churn_read": churn_read,
        "churn_subset": churn_subset,
        "churn_build": churn_build,
    }
    _server_scan()  # warm the page cache once: every step then reads from memory
    seconds: dict[str, list[float]] = {k: [] for k in steps}
    rows: dict[str, int] = {}
    for _ in range(repeats):
        for key, fn in steps.items():
            started = time.perf_counter()
            rows[key] = int(fn())
            seconds[key].append(time.perf_counter() - started)
    return {
        "events": int(events),
        "clicks": int(clicks),
        "rollup_rows": int(rollup_rows),
        "courses": len(courses),
        "rows": rows,
        "seconds": {k: statistics.median(v) for k, v in seconds.items()},
        "all_seconds": seconds,
        "repeats": repeats,
    }


# ---------------------------------------------------------------- the section


def run(full: bool) -> Section:
    """Long because it is one benchmark section: each reader measured side by side on the same
    data.
    """
    name, import_seconds = ensure_oulad(full)
    m = measure_subprocess("features", name, str(3))
    s, r = m["seconds"], m["rows"]
    limit = s["scan_server"]

    def ratio(x: float) -> str:
        return f"{x / limit:.2f}x"

    both = s["churn_training"] + s["recommender"]
    rows = [
        [
            "**raw event aggregate scan** (`SELECT learner, course, day, sum(count) … GROUP BY`, "
            "counted in the server): the limit",
            m["events"],
            r["scan_server"],
            limit,
            "1.00x",
            "",
        ],
        [
            "same scan, rows streamed to the client (`COPY … TO STDOUT`)",
            m["events"],
            r["scan_copy"],
            s["scan_copy"],
            ratio(s["scan_copy"]),
            "",
        ],
        [
            "daily rollup read (`analytics_dailyactivity`, `COPY`)",
            m["rollup_rows"],
            r["rollup_copy"],
            s["rollup_copy"],
            ratio(s["rollup_copy"]),
            "",
        ],
        [
            "churn training features: `training_sets(as_of)` (rollup read + features at 4 cut-offs)",
            m["rollup_rows"],
            r["churn_training"],
            s["churn_training"],
            ratio(s["churn_training"]),
            "<= 3x",
        ],
        [
            "churn serving frames of every run (`serving_frames.get`, cache cleared)",
            m["rollup_rows"],
            r["churn_serving"],
            s["churn_serving"],
            ratio(s["churn_serving"]),
            "<= 3x",
        ],
        [
            "recommender frames: `learning_data(with_items=True, with_activity=False)`, as its "
            "retraining reads them (per-item event aggregate, no rollup)",
            m["events"],
            r["recommender"],
            s["recommender"],
            ratio(s["recommender"]),
            "<= 3x",
        ],
        [
            "churn training + recommender frames (what the two retrainings read)",
            "",
            "",
            both,
            ratio(both),
            "",
        ],
    ]
    parts = table(
        ["part", "rows out", "seconds", "vs scan"],
        [
            ["churn: `learning_data(with_items=False)` (7 SQL reads)", r["churn_read"],
             s["churn_read"], ratio(s["churn_read"])],
            ["churn: `by_course` (all frames split by run in one pass, in memory)",
             r["churn_subset"], s["churn_subset"], ratio(s["churn_subset"])],
            ["churn: `build_dataset` of every run (frames already split by run)", r["churn_build"],
             s["churn_build"], ratio(s["churn_build"])],
            ["recommender: item clicks as the product reads them (`read_item_activity`)",
             r["item_product"], s["item_product"], ratio(s["item_product"])],
            ["for comparison: the same per-item sum as one SQL `GROUP BY`, counted in the server",
             r["item_server"], s["item_server"], ratio(s["item_server"])],
        ],
    )  # fmt: skip
    scope = "all 15 presentations" if full else f"presentations {', '.join(QUICK_PRESENTATIONS)}"
    verdict = []
    for key, label in (
        ("churn_training", "churn training features"),
        ("churn_serving", "churn serving frames"),
        ("recommender", "recommender frames"),
    ):
        verdict.append(
            f"{label} {s[key] / limit:.2f}x ({'met' if s[key] <= 3 * limit else 'NOT met'})"
        )
    body = (
        f"OULAD {scope} ({m['courses']} course runs, {m['events']:,} events, "
        f"{m['rollup_rows']:,} daily rollup rows) in PostgreSQL 15; as of {AS_OF} (every run "
        f"finished). One process, the steps interleaved, median of {m['repeats']} repeats, page "
        "cache warm.\n\n"
        "By design the product does not read raw events for churn: dashboards and churn "
        "features read the daily rollup (`DailyActivity`, one row per learner x run x day x "
        "activity type, kept by the importer and the events API), so the churn steps read "
        f"{m['rollup_rows'] / max(m['events'], 1):.2f} rows per event. The recommender reads "
        "per-item clicks, which only the raw events hold: its frames include one aggregate scan "
        "of the events. Both the rollup-based product steps and the raw scan are shown.\n\n"
        + table(["step", "rows in", "rows out", "seconds", "vs scan", "target"], rows)
        + "\n\nTarget: feature extraction at most 3x the raw aggregate scan. "
        + "; ".join(verdict)
        + ".\n\nWhere the time goes (each part timed alone in the same run):\n\n"
        + parts
        + "\n\n"
        + SUGGESTIONS
    )
    return Section(
        name="features",
        title="Feature extraction",
        body=body,
        mode="full" if full else "quick",
        figures={**m, "import_seconds": import_seconds, "as_of": AS_OF},
    )


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "measure":
        print(json.dumps(measure(int(sys.argv[2]))))
