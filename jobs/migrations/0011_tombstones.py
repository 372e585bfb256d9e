"""The schema for tombstones for purged and deleted jobs (issue 14, item 6)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("jobs", "0010_scheduling")]

    operations = []
