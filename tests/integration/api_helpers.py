"""Small helpers shared by the API tests (test_api_*.py)."""

from __future__ import annotations

import json
from functools import partial
from datetime import timedelta
from typing import Any

from django.utils import timezone

from jobs.models import Job, JobStatus
from tests.support import factories

PURCHASE_KIND = "purchases.execute"

JOB_DOCUMENT_KEYS = {
    "id",
    "url",
    "kind",
    "status",
    "progress",
    "result",
    "result_status",
    "error",
    "attempts",
    "max_attempts",
    "cancel_requested",
    "created_at",
    "started_at",
    "finished_at",
    "expires_at",
    "options",
    "queue",
    "priority",
    "run_at",
}


def job_url(job_id: Any) -> str:
    return f"/api/jobs/{job_id}/"


def cancel_url(job_id: Any) -> str:
    return f"/api/jobs/{job_id}/cancel/"


# The API tests' jobs are purchases unless they say otherwise.
make_job = partial(factories.make_job, kind=PURCHASE_KIND)


def set_status(job: Job, status: str, **fields: Any) -> None:
    """Move an existing job to ``status`` with an UPDATE (as a worker would)."""
    now = timezone.now()
    values: dict[str, Any] = {"status": status, "updated_at": now}
    if status in JobStatus.terminal():
        values.update(finished_at=now, expires_at=now + timedelta(days=7))
    if status == JobStatus.PROCESSING:
        values.update(started_at=now)
    values.update(fields)
    Job.objects.filter(pk=job.pk).update(**values)


def post_json(client: Any, path: str, body: Any, capture: Any, **headers: Any) -> Any:
    """POST ``body`` as JSON, running on-commit callbacks (the enqueue) as a commit would."""
    with capture(execute=True):
        return client.post(path, data=json.dumps(body), content_type="application/json", **headers)


def purchase_body(product_id: int, quantity: int = 2, **extra: Any) -> dict[str, Any]:
    return {"goods": [{"product_id": product_id, "quantity": quantity}], **extra}


def assert_json_404(response: Any) -> None:
    assert response.status_code == 404, (response.status_code, response.content[:300])
    assert response["Content-Type"].startswith("application/json")
    assert "detail" in response.json()
