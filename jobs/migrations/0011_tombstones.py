"""The schema for tombstones for purged and deleted jobs (issue 14, item 6)."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0010_scheduling"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="Tombstone",
            fields=[
                ("job_id", models.UUIDField(editable=False, primary_key=True, serialize=False)),
                ("kind", models.CharField(max_length=100)),
                ("removed_at", models.DateTimeField(db_index=True)),
                (
                    "reason",
                    models.CharField(
                        choices=[
                            ("expired", "Expired (its time to live passed)"),
                            ("deleted", "Deleted by its owner"),
                            ("purged", "Purged by staff"),
                        ],
                        max_length=16,
                    ),
                ),
                (
                    "owner",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={"ordering": ["-removed_at"]},
        ),
    ]
