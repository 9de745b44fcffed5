"""Event partitions (#28 item 2): dropping a month, and the import with and without partitions.

1. Retention: a month of generated events (3M rows quick, 5M full) in its partition,
   dropped by `event_partitions_expire` (DETACH + DROP), against deleting the same
   rows from an unpartitioned copy with the same indexes (what retention cost before).
2. The OULAD import of the same presentation(s) into the partitioned table and into
   the table as it was before migration 0009 (same code, `migrate analytics 0008`).

Run: BENCH_DB=<name> python -m bench.run --only partitions [--full]
"""

from __future__ import annotations

import datetime as dt
import time

import psycopg

from bench.common import (
    BENCH_DB,
    SHARED_OULAD,
    Section,
    database_url,
    manage,
    recreate_database,
    setup_django,
    table,
)

QUICK_PRESENTATIONS = ["2013B"]
MONTH = dt.date(2026, 1, 1)
PLAIN_DB = f"{BENCH_DB}_plain"


def _connect(name: str = BENCH_DB) -> psycopg.Connection:
    return psycopg.connect(database_url(name).replace("postgres://", "postgresql://"))


def _settle(name: str = BENCH_DB) -> None:
    with _connect(name) as conn:
        conn.autocommit = True
        conn.execute("VACUUM (ANALYZE)")
        conn.execute("CHECKPOINT")


def _month_fill(rows: int) -> None:
    """`rows` events spread over January 2026 (20 runs, 20,000 learners), then a plain
    copy with the same indexes for the row-by-row baseline."""
    with _connect() as conn:
        conn.execute(
            "INSERT INTO analytics_learningevent (learner_id, course_id, item_id, verb, "
            "occurred_at, count, source) SELECT g %% 20000 + 1, g %% 20 + 1, g %% 3000 + 1, "
            "'interacted', %s::timestamptz + g * (interval '31 days' / %s::int), 1 + g %% 5, "
            "'oulad' FROM generate_series(0, %s::int - 1) AS g",
            [f"{MONTH} 00:00:00+00", rows, rows],
        )
        conn.execute("CREATE TABLE bench_plain_events AS SELECT * FROM analytics_learningevent")
        conn.execute("ALTER TABLE bench_plain_events ADD PRIMARY KEY (id)")
        conn.execute("CREATE INDEX ON bench_plain_events (learner_id, course_id, occurred_at)")
        conn.execute(
            "CREATE INDEX ON bench_plain_events USING brin (course_id, occurred_at) "
            "WITH (pages_per_range = 32)"
        )


def _delete_seconds() -> float:
    with _connect() as conn:
        started = time.perf_counter()
        conn.execute(
            "DELETE FROM bench_plain_events WHERE occurred_at < %s",
            [f"{MONTH.replace(month=2)} 00:00:00+00"],
        )
        conn.commit()
        return time.perf_counter() - started


def _import_seconds(name: str, presentations: list[str] | None) -> float:
    args = ["import_oulad", str(SHARED_OULAD), "--no-progress"]
    if presentations:
        args += ["--presentations", ",".join(presentations)]
    started = time.perf_counter()
    manage(*args, name=name)
    return time.perf_counter() - started


def _event_count(name: str) -> int:
    with _connect(name) as conn:
        return int(conn.execute("SELECT count(*) FROM analytics_learningevent").fetchone()[0])


def run(full: bool) -> Section:
    rows = 5_000_000 if full else 3_000_000
    presentations = None if full else QUICK_PRESENTATIONS
    # 2. Import, partitioned (current code) and unpartitioned (0009 unapplied).
    recreate_database()
    manage("migrate", "--noinput")
    recreate_database(PLAIN_DB)
    manage("migrate", "--noinput", name=PLAIN_DB)
    manage("migrate", "analytics", "0008", "--noinput", name=PLAIN_DB)
    plain_import = _import_seconds(PLAIN_DB, presentations)
    parted_import = _import_seconds(BENCH_DB, presentations)
    imported = _event_count(BENCH_DB)
    assert imported == _event_count(PLAIN_DB), "both imports store the same rows"
    recreate_database(PLAIN_DB)  # drop its rows; only the empty database stays

    # 1. Retention: one month of `rows` events.
    setup_django()
    from django.test.utils import override_settings

    from analytics.partitions import event_partitions_cover, event_partitions_expire

    event_partitions_cover(first=MONTH, last=MONTH)
    _month_fill(rows)
    _settle()
    delete_seconds = _delete_seconds()
    _settle()
    # Retention of 10 months on 2026-12-15: the cutoff is February 2026.
    with override_settings(EVENT_RETENTION_MONTHS=10):
        started = time.perf_counter()
        expiry = event_partitions_expire(today=dt.date(2026, 12, 15))
        drop_seconds = time.perf_counter() - started
    assert MONTH in expiry.months, expiry
    figures = {
        "month_rows": rows,
        "drop_month_seconds": drop_seconds,
        "delete_month_rows_seconds": delete_seconds,
        "import_events": imported,
        "import_partitioned_seconds": parted_import,
        "import_unpartitioned_seconds": plain_import,
        "import_partitioned_rows_per_s": imported / parted_import,
        "import_unpartitioned_rows_per_s": imported / plain_import,
    }
    body = "\n".join(
        [
            "Retention drops whole monthly partitions (`event_partitions_expire`: DETACH, DROP);",
            "before #28 the same rows could only be deleted row by row. Target: < 1 s.",
            "",
            table(
                ["step", "rows", "seconds"],
                [
                    ["drop one month partition", f"{rows:,}", f"{drop_seconds:.3f}"],
                    ["DELETE the month, unpartitioned", f"{rows:,}", f"{delete_seconds:.1f}"],
                ],
            ),
            "",
            "`import_oulad` of the same rows (whole command, Python start included), into",
            "the partitioned table and into the table as before migration 0009:",
            "",
            table(
                ["event table", "events", "seconds", "rows/s"],
                [
                    [
                        "partitioned by month",
                        f"{imported:,}",
                        f"{parted_import:.1f}",
                        f"{imported / parted_import:,.0f}",
                    ],
                    [
                        "one table (0008)",
                        f"{imported:,}",
                        f"{plain_import:.1f}",
                        f"{imported / plain_import:,.0f}",
                    ],
                ],
            ),
        ]
    )
    return Section(
        name="partitions",
        title="Event partitions: retention drop and import",
        body=body,
        figures=figures,
        mode="full" if full else "quick",
    )
