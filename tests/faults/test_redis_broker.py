"""The kill test and the two-cluster test on django-q2's Redis broker.

django-q2 reads Q_CLUSTER once, at import, so this test process stays on the
ORM broker: jobs are submitted, and the reaper run, by ``manage.py shell -c``
children started with REDIS_URL, like a web process of a Redis deployment.
Redis hands a message over once (BLPOP): a killed worker or a flushed list
loses it for good, and only the reaper brings the job back.
"""

from __future__ import annotations

import json
from collections import Counter
from decimal import Decimal
from typing import Any

import pytest
from django_q.conf import Conf

from jobs.models import Job, JobEvent, JobEventType, JobStatus
from purchases.models import Order, OrderStatus, PaymentCharge, Product
from tests.faults.support import (
    executions,
    manage_shell,
    paying,
    settle,
    status_counts,
    uuids,
)
from tests.support.processes import wait_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.real_queue,
    pytest.mark.faults,
    # Both tests use (and flush) the one Redis database below: one xdist worker runs them in turn.
    pytest.mark.xdist_group("redis_db_11"),
    pytest.mark.django_db(transaction=True),
]

# A database number of its own, flushed before and after.
REDIS_URL = "redis://127.0.0.1:6379/11"
QUEUE_KEY = f"django_q:{Conf.CLUSTER_NAME}:q"

SUBMIT = """
import json, os
from django.contrib.auth import get_user_model
from jobs import submit
spec = json.loads(os.environ["FAULTS_SPEC"])
owner = get_user_model().objects.get(pk=spec["owner"])
print(json.dumps([str(submit(spec["kind"], p, owner=owner).pk) for p in spec["payloads"]]))
"""
REAP = "import json; from jobs.recovery import reap_task; print(json.dumps(reap_task()))"


@pytest.fixture
def redis_broker():
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis does not answer at {REDIS_URL}: {exc}")
    client.flushdb()
    try:
        yield client
    finally:
        client.flushdb()
        client.close()


def submit_on_redis(kind: str, payloads: list[dict[str, Any]], owner: Any) -> list:
    spec = {"kind": kind, "payloads": payloads, "owner": owner.pk}
    return uuids(manage_shell(SUBMIT, REDIS_URL=REDIS_URL, FAULTS_SPEC=json.dumps(spec)))


def reap_on_redis(**env: str) -> dict[str, int]:
    return manage_shell(REAP, REDIS_URL=REDIS_URL, **env)


def test_redis_worker_killed_mid_purchase_the_reaper_sends_it_again(
    clusters, redis_broker, user, make_product
):
    product = make_product(stock=5, price=Decimal("10.00"))
    # A short lease grace: this purchase never overruns (see test_worker_kills).
    first = clusters.start("first", REDIS_URL=REDIS_URL, PURCHASES_PAYMENT_DELAY="3", JOBS_LEASE_GRACE="2")
    [job_id] = submit_on_redis(
        "purchases.execute", [{"goods": [{"product_id": product.pk, "quantity": 2}]}], user
    )
    job = Job.objects.get(pk=job_id)
    wait_for(lambda: paying(job), timeout=30, interval=0.05, what="the purchase to reach the payment")
    # Redis gave the message away: nothing is left to deliver again.
    assert redis_broker.llen(QUEUE_KEY) == 0
    clusters.kill_worker(job, first)
    clusters.stop(first)

    clusters.start("second", REDIS_URL=REDIS_URL, PURCHASES_PAYMENT_DELAY="0.5")
    settle([job.pk], timeout=60, reap=reap_on_redis, logs=clusters.logs)

    job.refresh_from_db()
    assert job.status == JobStatus.COMPLETED, (job.error, clusters.logs())
    assert job.attempts == 2
    assert JobEvent.objects.filter(job=job, type=JobEventType.ATTEMPT_FAILED, actor="reaper").count() == 1
    order = Order.objects.get()
    assert order.job_id == job.pk and order.status == OrderStatus.PAID
    assert Product.objects.get(pk=product.pk).stock == 3
    assert PaymentCharge.objects.count() == 1


def test_redis_two_clusters_run_500_jobs_once_and_the_reaper_resends_what_redis_lost(
    clusters, redis_broker, user
):
    lost = submit_on_redis("faults.sleep", [{"seconds": 0, "n": n} for n in range(100)], user)
    assert redis_broker.llen(QUEUE_KEY) == 100
    # The broker loses these messages (say, Redis restarted without persistence).
    redis_broker.delete(QUEUE_KEY)
    kept = submit_on_redis("faults.sleep", [{"seconds": 0, "n": n} for n in range(100, 500)], user)
    one = clusters.start("one", REDIS_URL=REDIS_URL)
    two = clusters.start("two", REDIS_URL=REDIS_URL)

    settle(kept, timeout=60, logs=clusters.logs)
    assert status_counts(kept) == {JobStatus.COMPLETED: 400}
    assert redis_broker.llen(QUEUE_KEY) == 0
    assert status_counts(lost) == {JobStatus.PENDING: 100}
    assert executions(lost) == []

    # A reaper on the same broker sends them again once JOBS_LOST_AFTER passed.
    settle(lost, timeout=60, reap=lambda: reap_on_redis(JOBS_LOST_AFTER="1"), logs=clusters.logs)

    ids = lost + kept
    assert status_counts(ids) == {JobStatus.COMPLETED: 500}
    assert sorted(executions()) == sorted(str(pk) for pk in ids)
    assert set(Job.objects.filter(pk__in=ids).values_list("attempts", flat=True)) == {1}
    groups = Counter(
        clusters.group_of(int(worker.rsplit(":", 1)[1]))
        for worker in Job.objects.filter(pk__in=ids).values_list("worker", flat=True)
    )
    assert groups[one] > 0 and groups[two] > 0, groups
