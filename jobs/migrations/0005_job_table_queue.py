"""On PostgreSQL, the job table is the queue of the job-table broker (jobs/broker.py).

A trigger sends ``NOTIFY jobs_job_ready`` when a row becomes deliverable (a
new pending job, a retried or recovered one): the cluster's pusher waits on
LISTEN instead of polling. The change trigger of 0004, which wakes waiting
clients, now fires only when something a client sees changed, not when a
cluster stamps ``enqueued_at`` on taking a job.
Other databases get nothing here.
"""

from django.db import migrations

READY = """
CREATE OR REPLACE FUNCTION jobs_job_notify_ready() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('jobs_job_ready', '');
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER jobs_job_ready_insert
    AFTER INSERT ON jobs_job
    FOR EACH ROW
    WHEN (NEW.status = 'pending')
    EXECUTE FUNCTION jobs_job_notify_ready();

CREATE TRIGGER jobs_job_ready_update
    AFTER UPDATE ON jobs_job
    FOR EACH ROW
    WHEN (NEW.status = 'pending' AND NEW.enqueued_at IS NULL
          AND (OLD.status <> 'pending' OR OLD.enqueued_at IS NOT NULL))
    EXECUTE FUNCTION jobs_job_notify_ready();
"""

# The columns of the job document (and updated_at, which every change sets).
SEEN = (
    "status, progress_percentage, progress_message, result, result_status, error, attempts, "
    "max_attempts, cancel_requested, started_at, finished_at, expires_at, updated_at"
)
NEW_ROW = ", ".join(f"NEW.{c.strip()}" for c in SEEN.split(","))
OLD_ROW = ", ".join(f"OLD.{c.strip()}" for c in SEEN.split(","))


def changed_trigger(condition: str) -> str:
    return f"""
DROP TRIGGER IF EXISTS jobs_job_notify_update ON jobs_job;
CREATE TRIGGER jobs_job_notify_update
    AFTER UPDATE ON jobs_job
    FOR EACH ROW
    WHEN ({condition})
    EXECUTE FUNCTION jobs_job_notify();
"""


DROP_READY = """
DROP TRIGGER IF EXISTS jobs_job_ready_insert ON jobs_job;
DROP TRIGGER IF EXISTS jobs_job_ready_update ON jobs_job;
DROP FUNCTION IF EXISTS jobs_job_notify_ready();
"""


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(READY)
        schema_editor.execute(changed_trigger(f"ROW({OLD_ROW}) IS DISTINCT FROM ROW({NEW_ROW})"))


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_READY)
        schema_editor.execute(changed_trigger("OLD.* IS DISTINCT FROM NEW.*"))


class Migration(migrations.Migration):
    dependencies = [("jobs", "0004_notify_trigger")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
