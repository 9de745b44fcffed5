from django.db import migrations


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "CREATE INDEX IF NOT EXISTS event_course_time_brin ON analytics_learningevent "
            "USING brin (course_id, occurred_at) WITH (pages_per_range = 32)"
        )
    else:
        schema_editor.execute(
            "CREATE INDEX IF NOT EXISTS event_course_time_idx ON analytics_learningevent "
            "(course_id, occurred_at)"
        )


def drop(apps, schema_editor):
    schema_editor.execute("DROP INDEX IF EXISTS event_course_time_brin")
    schema_editor.execute("DROP INDEX IF EXISTS event_course_time_idx")


class Migration(migrations.Migration):
    dependencies = [("analytics", "0001_initial")]
    operations = [migrations.RunPython(create, drop)]
