"""Purchases over HTTP, executed by a real `manage.py qcluster` process."""

from __future__ import annotations

import os
import re
import signal
from decimal import Decimal

import pytest
from django_q.models import Task

from jobs.models import Job, JobStatus
from purchases.models import Order, OrderStatus, Product
from tests.support.factories import token_for
from tests.support.processes import free_port, group_alive, http, serving, wait_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.real_queue,
    pytest.mark.django_db(transaction=True),
]

TERMINAL = set(JobStatus.terminal())


@pytest.fixture
def cluster(launcher):
    return launcher.qcluster(PURCHASES_PAYMENT_DELAY="1.0")


def poll_until_terminal(base: str, token: str, location: str, seen: list[dict]) -> dict:
    def finished():
        status, headers, doc = http("GET", base + location, token=token)
        assert status == 200, doc
        seen.append(doc)
        return doc if doc["status"] in TERMINAL else None

    return wait_for(finished, timeout=60, interval=0.1, what=f"job {location}")


def test_purchases_complete_on_a_real_cluster(live_server, cluster, user, make_product):
    keyboard = make_product(stock=5, price=Decimal("12.50"))
    mouse = make_product(stock=1, price=Decimal("3.00"))
    base = live_server.url
    token = token_for(user)

    locations = []
    for goods in (
        [{"product_id": keyboard.pk, "quantity": 2}, {"product_id": mouse.pk, "quantity": 1}],
        # More than there will ever be: fails whichever worker runs first.
        [{"product_id": mouse.pk, "quantity": 2}],
    ):
        status, headers, doc = http("POST", f"{base}/api/purchases/", {"goods": goods}, token=token)
        assert status == 202, doc
        assert doc["status"] == JobStatus.PENDING
        assert headers["Location"] == f"/api/jobs/{doc['id']}/"
        assert int(headers["Retry-After"]) >= 1
        locations.append(headers["Location"])

    seen: list[dict] = []
    first = poll_until_terminal(base, token, locations[0], seen)
    second = poll_until_terminal(base, token, locations[1], seen)

    assert first["status"] == JobStatus.COMPLETED, first
    assert first["result"]["total"] == "28.00"
    assert first["progress"] == {"percentage": 100, "message": "Order confirmed"}
    assert second["status"] == JobStatus.FAILED, second
    assert second["error"]["code"] == "insufficient_stock"
    # The 1 s payment call leaves time to see progress while the job runs.
    assert any(
        doc["status"] == JobStatus.PROCESSING and doc["progress"]["percentage"] == 40 for doc in seen
    ), seen

    status, _, order = http("GET", f"{base}/api/orders/{first['result']['order_id']}/", token=token)
    assert status == 200 and order["status"] == OrderStatus.PAID
    assert Order.objects.count() == 1
    assert Product.objects.get(pk=keyboard.pk).stock == 3
    assert Product.objects.get(pk=mouse.pk).stock == 0

    # The work ran in a django-q2 worker process, not in the request.
    job = Job.objects.get(pk=first["id"])
    assert int(job.worker.rsplit(":", 1)[1]) != os.getpid()
    # The job's row keeps the outcome; django-q2 keeps no second copy of it.
    assert job.status == JobStatus.COMPLETED and job.result["order_id"] == first["result"]["order_id"]
    assert not Task.objects.filter(name=f"purchases.execute:{job.pk}").exists()


def test_serve_runs_web_and_worker_and_ctrl_c_stops_both(launcher, user, make_product):
    product = make_product(stock=3)
    port = free_port()
    process = launcher.manage(
        ["serve", "--bind", f"127.0.0.1:{port}", "--web-workers", "1", "--grace", "15"],
        PURCHASES_PAYMENT_DELAY="0",
    )
    log = process.log_path
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: serving(base), timeout=30, what="uvicorn to answer")
    token = token_for(user)
    goods = [{"product_id": product.pk, "quantity": 1}]
    status, headers, _ = http("POST", f"{base}/api/purchases/", {"goods": goods}, token=token)
    assert status == 202
    done = poll_until_terminal(base, token, headers["Location"], [])
    assert done["status"] == JobStatus.COMPLETED, done

    pids = re.search(r"\(pid (\d+)\), django-q2 cluster pid (\d+)", log.read_text())
    assert pids, log.read_text()
    web_pid, worker_pid = (int(pid) for pid in pids.groups())
    # A terminal's Ctrl-C: SIGINT to the foreground process group.
    os.killpg(process.pid, signal.SIGINT)
    assert process.wait(timeout=40) == 0, log.read_text()
    assert not group_alive(web_pid), "uvicorn processes left behind"
    assert not group_alive(worker_pid), "django-q2 processes left behind"
