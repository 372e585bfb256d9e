"""Two partial indexes fewer on the job table: ``job_active_kind_idx`` (status, kind) serves both.

Each index on ``jobs_job`` is written when a job is created, claimed and
finished; the pending jobs of the limited kinds and the running jobs by
worker are found through the active jobs' index as well.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("jobs", "0013_processing_worker_idx")]

    operations = [
        migrations.RemoveIndex(model_name="job", name="job_pending_kind_idx"),
        migrations.RemoveIndex(model_name="job", name="job_processing_worker_idx"),
    ]
