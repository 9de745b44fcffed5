"""Monthly partitions of the event table on PostgreSQL (#28): made ahead, DEFAULT swept, retention.

`analytics_learningevent` is PARTITIONED BY RANGE (occurred_at) (migration 0009):
one partition per UTC calendar month, `analytics_learningevent_pYYYYMM`, and a
DEFAULT partition (`analytics_learningevent_default`) so that no insert ever fails.
Rows dated in a month without a partition (a back-dated API event, an xAPI
statement placed late) wait in DEFAULT until `event_partitions_ensure` gives their
month a partition and moves them in. The bulk import creates the months of the
run it loads before its COPY (`event_partitions_cover`), so imports never fill
DEFAULT.

Writes are keyword-only and atomic; on other databases (SQLite keeps one table)
every function is a no-op.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

PARENT = "analytics_learningevent"
DEFAULT = f"{PARENT}_default"
CLIENT_IDS = "analytics_eventclientid"
_NAME = re.compile(rf"^{PARENT}_p(\d{{4}})(\d{{2}})$")
# One partition maintainer at a time (the beat tasks, an import's cover): the
# advisory lock is held until the transaction ends.
_LOCK_KEY = 2_028_0002


def partitioned() -> bool:
    """True where the event table is partitioned (PostgreSQL, migration 0009 applied)."""
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_partitioned_table WHERE partrelid = %s::regclass)",
            [PARENT],
        )
        return cursor.fetchone()[0]


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def months_add(month: dt.date, n: int) -> dt.date:
    year, index = divmod(month.year * 12 + month.month - 1 + n, 12)
    return dt.date(year, index + 1, 1)


def months_between(first: dt.date, last: dt.date) -> list[dt.date]:
    """Every month from first's to last's, both included."""
    month, end, out = month_start(first), month_start(last), []
    while month <= end:
        out.append(month)
        month = months_add(month, 1)
    return out


def partition_name(month: dt.date) -> str:
    return f"{PARENT}_p{month:%Y%m}"


def _bound(month: dt.date) -> str:
    return f"'{month.isoformat()} 00:00:00+00'"


def _today() -> dt.date:
    return timezone.now().astimezone(dt.UTC).date()


def partition_months() -> list[dt.date]:
    """The months that have a partition, oldest first (empty where not partitioned)."""
    if not partitioned():
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass",
            [PARENT],
        )
        names = [row[0] for row in cursor.fetchall()]
    months = []
    for name in names:
        match = _NAME.match(name)
        if match:
            months.append(dt.date(int(match[1]), int(match[2]), 1))
    return sorted(months)


def retention_cutoff(*, today: dt.date | None = None) -> dt.date | None:
    """The first month kept under EVENT_RETENTION_MONTHS (the current month and that
    many before it); None when retention is off (0, the default) or the table is not
    partitioned (SQLite keeps every event)."""
    months = settings.EVENT_RETENTION_MONTHS
    if months <= 0 or not partitioned():
        return None
    return months_add(month_start(today or _today()), -months)


def _columns() -> str:
    from analytics.models import LearningEvent

    return ", ".join(str(f.column) for f in LearningEvent._meta.local_concrete_fields)


def _partition_create(cursor, month: dt.date) -> int:
    """Create `month`'s partition, moving its rows out of DEFAULT; rows moved.

    PostgreSQL refuses a new partition while DEFAULT holds rows of its range, so
    the partition is built as a plain table, filled from DEFAULT, then attached.
    DEFAULT is locked first so that no insert lands there in between; ATTACH
    itself only takes SHARE UPDATE EXCLUSIVE on the parent (inserts go on).
    """
    name = partition_name(month)
    low, high = _bound(month), _bound(months_add(month, 1))
    cursor.execute(f"LOCK TABLE ONLY {PARENT} IN SHARE UPDATE EXCLUSIVE MODE")
    cursor.execute(f"LOCK TABLE {DEFAULT} IN ACCESS EXCLUSIVE MODE")
    cursor.execute(f"CREATE TABLE {name} (LIKE {PARENT} INCLUDING DEFAULTS)")
    columns = _columns()
    cursor.execute(
        f"WITH moved AS (DELETE FROM {DEFAULT} WHERE occurred_at >= {low} "
        f"AND occurred_at < {high} RETURNING {columns}) "
        f"INSERT INTO {name} ({columns}) SELECT {columns} FROM moved"
    )
    moved = cursor.rowcount
    cursor.execute(
        f"ALTER TABLE {PARENT} ATTACH PARTITION {name} FOR VALUES FROM ({low}) TO ({high})"
    )
    return moved


def _partitions_create(months: list[dt.date]) -> list[dt.date]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
    have = set(partition_months())
    created = []
    with connection.cursor() as cursor:
        for month in sorted(set(months) - have):
            _partition_create(cursor, month)
            created.append(month)
    return created


@transaction.atomic
def event_partitions_cover(*, first: dt.date, last: dt.date) -> list[dt.date]:
    """Give every month from `first` to `last` a partition (the bulk import, before its
    COPY); the months created."""
    if not partitioned():
        return []
    return _partitions_create(months_between(first, last))


@transaction.atomic
def event_partitions_ensure(*, months_ahead: int, today: dt.date | None = None) -> list[dt.date]:
    """Partitions for this month and `months_ahead` after it, and for every month whose
    rows wait in DEFAULT (moved in), except months retention would drop. Idempotent:
    a second run creates nothing. The months created, oldest first."""
    if not partitioned():
        return []
    current = month_start(today or _today())
    months = [months_add(current, k) for k in range(months_ahead + 1)]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT DISTINCT date_trunc('month', occurred_at AT TIME ZONE 'UTC')::date "
            f"FROM {DEFAULT}"
        )
        held = [row[0] for row in cursor.fetchall()]
    cutoff = retention_cutoff(today=current)
    months += [m for m in held if cutoff is None or m >= cutoff]
    return _partitions_create(months)


@dataclass(frozen=True)
class Expiry:
    cutoff: dt.date | None
    months: list[dt.date] = field(default_factory=list)  # partitions dropped
    held_rows: int = 0  # rows older than the cutoff deleted from DEFAULT


@transaction.atomic
def event_partitions_expire(*, today: dt.date | None = None) -> Expiry:
    """Detach and drop every monthly partition older than EVENT_RETENTION_MONTHS.

    Dropping a partition is a catalog change (no row is read): its time does not
    grow with its rows. The daily rollup (DailyActivity) stays; rollups_rebuild
    leaves the days before the cutoff alone. Rows older than the cutoff still in
    DEFAULT are deleted. The client ids go separately (event_client_ids_forget):
    that is row work, and must not hold the parent's lock taken here.
    """
    cutoff = retention_cutoff(today=today)
    if cutoff is None or not partitioned():
        return Expiry(cutoff=cutoff)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
    old = [m for m in partition_months() if m < cutoff]
    with connection.cursor() as cursor:
        for month in old:
            name = partition_name(month)
            cursor.execute(f"ALTER TABLE {PARENT} DETACH PARTITION {name}")
            cursor.execute(f"DROP TABLE {name}")
        cursor.execute(f"DELETE FROM {DEFAULT} WHERE occurred_at < {_bound(cutoff)}")
        held = cursor.rowcount
    return Expiry(cutoff=cutoff, months=old, held_rows=held)


@transaction.atomic
def event_client_ids_forget(*, today: dt.date | None = None) -> int:
    """Forget the client ids of events older than the retention cutoff (their events are
    gone: a retry of one is stored again, and dropped by the next expiry); how many.
    A BRIN index on occurred_at (migration 0009) finds them: ids arrive in time order."""
    cutoff = retention_cutoff(today=today)
    if cutoff is None:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {CLIENT_IDS} WHERE occurred_at < {_bound(cutoff)}")
        return cursor.rowcount
