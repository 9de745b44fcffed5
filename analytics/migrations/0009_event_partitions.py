"""Events partitioned by month on PostgreSQL (#28 item 2); client ids unique through a side table.

PostgreSQL: the event table becomes PARTITIONED BY RANGE (occurred_at), one partition
per UTC month from the oldest event's month (or this month) to three months ahead,
and a DEFAULT partition; the rows move over in one INSERT ... SELECT (minutes for
tens of millions: run it in a maintenance window). The primary key becomes
(id, occurred_at), as PostgreSQL requires; the ids and their identity sequence
carry over. Indexes are created on the parent, so every partition has them.

Both databases: (source, client_event_id) is unique through analytics_eventclientid
(a unique index on the partitioned table would have to include occurred_at, and a
retry with another timestamp would then be stored twice); the events keep a plain
partial index on the pair for look-ups. SQLite keeps one table.
"""

import datetime as dt

from django.db import migrations, models

TABLE = "analytics_learningevent"
OLD = f"{TABLE}_unpartitioned"
AHEAD = 3
INDEXES = [
    f"CREATE INDEX event_learner_time_idx ON {TABLE} (learner_id, course_id, occurred_at)",
    f"CREATE INDEX event_course_time_brin ON {TABLE} USING brin (course_id, occurred_at) "
    "WITH (pages_per_range = 32)",
    f"CREATE INDEX event_client_id_idx ON {TABLE} (source, client_event_id) "
    "WHERE client_event_id IS NOT NULL",
]


def _month(year: int, month: int) -> dt.date:
    year, index = divmod(year * 12 + month - 1, 12)
    return dt.date(year, index + 1, 1)


def _table_swap(schema_editor, *, partitioned: bool) -> None:
    """Rename the table away, create the new one (LIKE it: columns, defaults, identity),
    copy the rows, drop the old one, then the primary key and indexes."""
    run = schema_editor.execute
    run(f"ALTER TABLE {TABLE} RENAME TO {OLD}")
    run(
        f"CREATE TABLE {TABLE} (LIKE {OLD} INCLUDING DEFAULTS INCLUDING IDENTITY)"
        + (" PARTITION BY RANGE (occurred_at)" if partitioned else "")
    )
    if partitioned:
        run(f"CREATE TABLE {TABLE}_default PARTITION OF {TABLE} DEFAULT")
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(
                f"SELECT min(occurred_at AT TIME ZONE 'UTC')::date, "
                f"(now() AT TIME ZONE 'UTC')::date FROM {OLD}"
            )
            oldest, today = cursor.fetchone()
        first = min(oldest or today, today).replace(day=1)
        last = _month(today.year, today.month + AHEAD)
        month = first
        while month <= last:
            following = _month(month.year, month.month + 1)
            run(
                f"CREATE TABLE {TABLE}_p{month:%Y%m} PARTITION OF {TABLE} FOR VALUES "
                f"FROM ('{month} 00:00:00+00') TO ('{following} 00:00:00+00')"
            )
            month = following
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute "
            "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
            [OLD],
        )
        columns = cursor.fetchone()[0]
    run(f"INSERT INTO {TABLE} ({columns}) SELECT {columns} FROM {OLD}")
    run(
        f"SELECT setval(pg_get_serial_sequence('{TABLE}', 'id'), "
        f"coalesce((SELECT max(id) FROM {OLD}), 0) + 1, false)"
    )
    run(f"DROP TABLE {OLD}")
    # The new identity sequence got a suffixed name while the old one existed.
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [TABLE])
        sequence = cursor.fetchone()[0]
    if sequence != f"public.{TABLE}_id_seq":
        run(f"ALTER SEQUENCE {sequence} RENAME TO {TABLE}_id_seq")
    key = "id, occurred_at" if partitioned else "id"
    run(f"ALTER TABLE {TABLE} ADD CONSTRAINT {TABLE}_pkey PRIMARY KEY ({key})")
    for statement in INDEXES:
        run(statement)


def partition(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        _table_swap(schema_editor, partitioned=True)
        # Retention forgets client ids by time; they arrive in time order, so BRIN.
        schema_editor.execute(
            "CREATE INDEX client_id_time_brin ON analytics_eventclientid USING brin (occurred_at)"
        )


def unpartition(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX client_id_time_brin")
        _table_swap(schema_editor, partitioned=False)


def client_ids_copy(apps, schema_editor):
    schema_editor.execute(
        "INSERT INTO analytics_eventclientid (source, client_event_id, occurred_at) "
        "SELECT source, client_event_id, occurred_at FROM analytics_learningevent "
        "WHERE client_event_id IS NOT NULL"
    )


class Migration(migrations.Migration):
    dependencies = [("analytics", "0008_statement_attachments")]

    operations = [
        migrations.CreateModel(
            name="EventClientId",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                (
                    "source",
                    models.CharField(
                        choices=[
                            ("api", "Events API"),
                            ("xapi", "xAPI"),
                            ("oulad", "OULAD import"),
                            ("demo", "Demo seed"),
                        ],
                        max_length=8,
                    ),
                ),
                ("client_event_id", models.CharField(max_length=64)),
                ("occurred_at", models.DateTimeField()),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("source", "client_event_id"), name="client_id_unique"
                    )
                ],
            },
        ),
        migrations.RunPython(client_ids_copy, migrations.RunPython.noop),
        migrations.RemoveConstraint(model_name="learningevent", name="event_client_id_unique"),
        migrations.AddIndex(
            model_name="learningevent",
            index=models.Index(
                condition=models.Q(("client_event_id__isnull", False)),
                fields=["source", "client_event_id"],
                name="event_client_id_idx",
            ),
        ),
        migrations.RunPython(partition, unpartition),
    ]
