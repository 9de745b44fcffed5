"""The scale generator's throughput (#28 item 1): `seed_events` against a binary COPY.

Run: python -m bench.event_generator [--sizes 1000000,10000000] [--db NAME]

Per size, into a fresh PostgreSQL database (migrated):
1. `manage.py seed_events --events N --seed 0 --today 2026-12-07`, timed whole
   (process start-up included) and as the command reports it.
2. The event rows it wrote, every column, exported by binary COPY TO and COPYed
   back (binary) into an unlogged table of the same columns without indexes:
   PostgreSQL taking exactly these rows as fast as it can (the ingestion
   section's limit, same method).
3. Rows, rollup rows, and bytes on disk of the event table (every partition,
   indexes included) against the unlogged copy's.
Results go to docs/bench/event_generator.json.
"""

from __future__ import annotations

import argparse
import json
import re
import time

import psycopg

from bench.common import (
    RESULTS,
    database_url,
    machine,
    manage,
    raw_event_copy,
    recreate_database,
)

DB = "h3_bench_event_generator"
TODAY = "2026-12-07"


def _connect(name: str) -> psycopg.Connection:
    return psycopg.connect(database_url(name).replace("postgres://", "postgresql://"))


def _table_bytes(conn: psycopg.Connection, table: str) -> int:
    """Heap + indexes + TOAST of a table and, if partitioned, of every partition."""
    return int(
        conn.execute(
            "SELECT coalesce(sum(pg_total_relation_size(relid)), 0) "
            "FROM pg_partition_tree(%s::regclass)",
            [table],
        ).fetchone()[0]
    )


def binary_copy(name: str) -> dict:
    """Seconds to COPY (binary) the event rows into an unlogged table without indexes."""
    with _connect(name) as conn:
        done = raw_event_copy(conn)
    return {
        "seconds": done.seconds,
        "rows": done.rows,
        "bytes": done.raw_bytes,
        "stream_bytes": done.stream_bytes,
    }


def measure(size: int, name: str) -> dict:
    recreate_database(name)
    manage("migrate", "--noinput", name=name)
    started = time.perf_counter()
    out = manage(
        "seed_events", "--events", str(size), "--seed", "0", "--today", TODAY, name=name
    ).stdout
    wall = time.perf_counter() - started
    reported = float(re.search(r"in ([\d.]+)s", out).group(1))
    with _connect(name) as conn:
        events = int(conn.execute("SELECT count(*) FROM analytics_learningevent").fetchone()[0])
        rollup = int(conn.execute("SELECT count(*) FROM analytics_dailyactivity").fetchone()[0])
        learners = int(conn.execute("SELECT count(*) FROM analytics_learner").fetchone()[0])
        runs = int(conn.execute("SELECT count(*) FROM analytics_course").fetchone()[0])
        event_bytes = _table_bytes(conn, "analytics_learningevent")
        conn.execute("CHECKPOINT")
    copy = binary_copy(name)
    return {
        "events": events,
        "rollup_rows": rollup,
        "learners": learners,
        "course_runs": runs,
        "seed_events_seconds": wall,
        "seed_events_reported_seconds": reported,
        "rows_per_second": events / wall,
        "binary_copy": copy,
        "binary_copy_rows_per_second": copy["rows"] / copy["seconds"],
        "ratio_to_binary_copy": (events / wall) / (copy["rows"] / copy["seconds"]),
        "event_table_bytes": event_bytes,
        "bytes_per_event": event_bytes / events,
        "raw_copy_bytes_per_event": copy["bytes"] / copy["rows"],
        "output": out.strip(),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000000,10000000")
    parser.add_argument("--db", default=DB)
    args = parser.parse_args()
    results = {"machine": machine(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    for size in (int(s) for s in args.sizes.split(",")):
        results[str(size)] = measure(size, args.db)
        print(json.dumps(results[str(size)], indent=1), flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "event_generator.json").write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
