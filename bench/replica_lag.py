"""Replication lag of the read replica (#28 item 4): how long after a commit on the primary a
row is visible on the streaming replica that `.ci/pg_replica.sh` starts (127.0.0.1:5433).

    .ci/pg_replica.sh && .venv/bin/python -m bench.replica_lag [--commits 500] [--bulk 200000]

Two loads in a scratch database (BENCH_DB + "_lag"): single-row commits, each polled on
the replica until visible (the lag a page sees after a small write elsewhere), and one
transaction of `--bulk` rows (about 50 bytes each; a burst of WAL as an import writes),
timed from its commit to its last row on the replica. Writes docs/bench/replica_lag.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import psycopg

from bench.common import BENCH_DB, PG_ADMIN_URL, Section, table

REPLICA = "postgresql://postgres@127.0.0.1:5433/"
PRIMARY = "postgresql://postgres@127.0.0.1:5432/"


def visible_after(replica: psycopg.Connection, row_id: int, start: float) -> float:
    """Milliseconds from `start` until the replica has row `row_id`."""
    while not replica.execute("SELECT 1 FROM lag WHERE id = %s", [row_id]).fetchone():
        pass
    return (time.perf_counter() - start) * 1000


def measure(commits: int, bulk: int) -> dict[str, float]:
    name = BENCH_DB + "_lag"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        with psycopg.connect(PRIMARY + name, autocommit=True) as primary:
            primary.execute("CREATE TABLE lag (id bigserial PRIMARY KEY, note text)")
            deadline = time.monotonic() + 30
            while True:  # the new database and table reach the replica
                try:
                    with psycopg.connect(REPLICA + name, autocommit=True) as probe:
                        probe.execute("SELECT 1 FROM lag LIMIT 1")
                    break
                except psycopg.Error:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            with psycopg.connect(REPLICA + name, autocommit=True) as replica:
                lags = []
                for _ in range(commits):
                    (row_id,) = primary.execute(
                        "INSERT INTO lag (note) VALUES ('x') RETURNING id"
                    ).fetchone()
                    lags.append(visible_after(replica, row_id, time.perf_counter()))
                lags.sort()
                with primary.transaction():
                    primary.execute(
                        "INSERT INTO lag (note) SELECT repeat('x', 40) FROM generate_series(1, %s)",
                        [bulk],
                    )
                    (last,) = primary.execute("SELECT max(id) FROM lag").fetchone()
                start = time.perf_counter()
                bulk_ms = visible_after(replica, last, start)
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return {
        "commits": commits,
        "p50_ms": statistics.median(lags),
        "p95_ms": lags[max(0, int(0.95 * commits) - 1)],
        "max_ms": lags[-1],
        "bulk_rows": bulk,
        "bulk_ms": bulk_ms,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--commits", type=int, default=500)
    parser.add_argument("--bulk", type=int, default=200_000)
    args = parser.parse_args()
    load = os.getloadavg()[0]  # the machine is shared: how busy it was when the run began
    figures = {**measure(args.commits, args.bulk), "load_1min": load}
    body = "\n".join(
        [
            "Commit on the primary to the row visible on the streaming replica "
            "(`.ci/pg_replica.sh`, same machine; `python -m bench.replica_lag`); "
            f"1-minute load average {load:.1f} at the start (other jobs on the 2 cores).",
            "",
            table(
                ["load", "p50 ms", "p95 ms", "max ms"],
                [
                    [
                        f"{figures['commits']} single-row commits",
                        figures["p50_ms"],
                        figures["p95_ms"],
                        figures["max_ms"],
                    ],
                    [f"one commit of {figures['bulk_rows']:,} rows", "", "", figures["bulk_ms"]],
                ],
            ),
        ]
    )
    Section(name="replica_lag", title="Read replica lag (#28)", body=body, figures=figures).save()
    print(figures)


if __name__ == "__main__":
    main()
