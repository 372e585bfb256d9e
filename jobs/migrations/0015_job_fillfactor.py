"""Room on each page of the job table for its rows' next versions (PostgreSQL ``fillfactor`` 80).

A job's row is written four times in a few milliseconds (created, delivered,
claimed, finished). With full pages every later version lands on another
page, and the delivery, which changes no indexed column, still writes a new
entry in every index. With room left on the page it is a heap-only update.
Rows stored before this keep their pages; SQLite has no such setting.
"""

from django.db import migrations


def _set(fillfactor: int):
    def apply(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(f"ALTER TABLE jobs_job SET (fillfactor = {fillfactor})")

    return apply


class Migration(migrations.Migration):
    dependencies = [("jobs", "0014_fewer_job_indexes")]

    operations = [migrations.RunPython(_set(80), _set(100), elidable=False)]
