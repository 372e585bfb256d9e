"""The schema for queues, priorities and delayed start (issue 14, items 1-3)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("jobs", "0009_dashboard_rollups")]

    operations = [
        migrations.AddField(
            model_name="job",
            name="priority",
            field=models.SmallIntegerField(
                default=0, help_text="Higher runs first within its queue; then the oldest first."
            ),
        ),
        migrations.AddField(
            model_name="job",
            name="queue",
            field=models.CharField(default="default", help_text="The execution queue it waits in.", max_length=100),
        ),
        migrations.AddField(
            model_name="job",
            name="run_at",
            field=models.DateTimeField(blank=True, help_text="Not started before this time.", null=True),
        ),
        migrations.AddIndex(
            model_name="job",
            index=models.Index(
                models.OrderBy(models.F("priority"), descending=True),
                models.F("created_at"),
                condition=models.Q(("status", "pending")),
                name="job_pending_order_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="job",
            index=models.Index(
                condition=models.Q(("available_at__isnull", False), ("status", "pending")),
                fields=["available_at"],
                name="job_pending_due_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="job",
            index=models.Index(
                condition=models.Q(("status", "pending")), fields=["kind"], name="job_pending_kind_idx"
            ),
        ),
    ]
