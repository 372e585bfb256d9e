"""On PostgreSQL, a deleted job is announced too (NOTIFY jobs_job_changed, its id).

Migration 0004 announced updates only: a job deleted (by its owner, staff,
or the TTL purge) while a client waited on it went unnoticed until the
waiter's next periodic look, and an event stream never said `deleted`.
"""

from django.db import migrations

CHANNEL = "jobs_job_changed"

CREATE = f"""
CREATE OR REPLACE FUNCTION jobs_job_notify_deleted() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('{CHANNEL}', OLD.id::text);
    RETURN OLD;
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS jobs_job_notify_delete ON jobs_job;
CREATE TRIGGER jobs_job_notify_delete
    AFTER DELETE ON jobs_job
    FOR EACH ROW
    EXECUTE FUNCTION jobs_job_notify_deleted();
"""

DROP = """
DROP TRIGGER IF EXISTS jobs_job_notify_delete ON jobs_job;
DROP FUNCTION IF EXISTS jobs_job_notify_deleted();
"""


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("jobs", "0006_jobevent_lighter")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
