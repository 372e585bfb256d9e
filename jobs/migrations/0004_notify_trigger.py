"""On PostgreSQL, a trigger announces every change to a job with NOTIFY.

Waiting clients (long poll, event stream) LISTEN on the channel instead of
reading the row over and over. A trigger catches every writer: workers,
the reaper, the admin, bulk commands. The payload is the job id; the
notification is delivered when the writing transaction commits.
Other databases get nothing here: their waiters check the row periodically.
"""

from django.db import migrations

CHANNEL = "jobs_job_changed"

CREATE = f"""
CREATE OR REPLACE FUNCTION jobs_job_notify() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('{CHANNEL}', NEW.id::text);
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER jobs_job_notify_update
    AFTER UPDATE ON jobs_job
    FOR EACH ROW
    WHEN (OLD.* IS DISTINCT FROM NEW.*)
    EXECUTE FUNCTION jobs_job_notify();
"""

DROP = """
DROP TRIGGER IF EXISTS jobs_job_notify_update ON jobs_job;
DROP FUNCTION IF EXISTS jobs_job_notify();
"""


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("jobs", "0003_action_calls")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
