# Written by hand (the working tree held another engineer's model edits): one AddField.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("analytics", "0003_intervention"),
    ]

    operations = [
        migrations.AddField(
            model_name="intervention",
            name="risk_band",
            field=models.CharField(blank=True, default="", editable=False, max_length=8),
        ),
    ]
