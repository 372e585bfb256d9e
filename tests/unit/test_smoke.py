import pytest

from jobs.models import Job, JobStatus
from jobs.runner import run_job
from jobs.services import job_submit


@pytest.mark.django_db(transaction=True)
def test_purchase_runs_to_completion(user, make_product, fake_queue):
    product = make_product(stock=5)
    submission = job_submit(
        kind="purchases.execute",
        payload={"goods": [{"product_id": product.pk, "quantity": 2}]},
        owner=user,
    )
    assert fake_queue.job_ids == [str(submission.job.pk)]
    assert run_job(str(submission.job.pk)) == JobStatus.COMPLETED
    job = Job.objects.get(pk=submission.job.pk)
    assert job.result["total"] == "20.00"
    product.refresh_from_db()
    assert product.stock == 3
