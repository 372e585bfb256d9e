# Written by hand after makemigrations' output for the admin dashboard's indexes in jobs/models.py.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("jobs", "0012_webhooks"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="job",
            index=models.Index(
                condition=models.Q(("status", "processing")),
                fields=["worker"],
                name="job_processing_worker_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="job",
            index=models.Index(
                condition=models.Q(("status__in", ["pending", "processing"])),
                fields=["status", "kind"],
                name="job_active_kind_idx",
            ),
        ),
    ]
