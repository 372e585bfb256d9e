"""/metrics scraped from two real uvicorn workers while a real `manage.py qcluster` finishes jobs."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import httpx
import pytest
from django.urls import resolve
from prometheus_client.parser import text_string_to_metric_families

from jobs.models import Job, JobStatus
from tests.support.processes import wait_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.real_queue,
    pytest.mark.django_db(transaction=True),
]

TOKEN = "live-scrape-token-0123456789"
REPORTS = 4


def scrape(base: str, token: str | None = TOKEN) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(f"{base}/metrics", headers=headers, timeout=30)


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    """Every sample of a scrape, keyed by name and labels."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(found: dict[tuple[str, frozenset], float], name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


def test_scrapes_match_the_job_table_while_a_real_cluster_runs_jobs(launcher, user, make_product, tmp_path):
    shared = tmp_path / "prometheus"
    shared.mkdir()
    env = {"METRICS_TOKEN": TOKEN, "PROMETHEUS_MULTIPROC_DIR": str(shared)}
    bases = [launcher.uvicorn(**env)[1], launcher.uvicorn(**env)[1]]
    launcher.qcluster(ready=True)

    response = httpx.post(
        f"{bases[0]}/api/auth/token/", json={"username": "alice", "password": "alice-pass-123"}
    )
    api_token = response.json()["token"]
    auth = {"Authorization": f"Bearer {api_token}"}
    product = make_product(stock=1, price=Decimal("5.00"))
    # Reports complete; of two purchases of the one item in stock, one fails.
    for i in range(REPORTS):
        response = httpx.post(
            f"{bases[i % 2]}/api/reports/sales/", json={}, headers={**auth, "Prefer": "respond-async"}
        )
        assert response.status_code == 202, response.text
    for i in range(2):
        response = httpx.post(
            f"{bases[i]}/api/purchases/",
            json={"goods": [{"product_id": product.pk, "quantity": 1}]},
            headers=auth,
        )
        assert response.status_code == 202, response.text

    # A scrape while the cluster works: every job is somewhere.
    assert scrape(bases[0]).status_code == 200

    def all_finished() -> bool:
        return not Job.objects.filter(status__in=JobStatus.active()).exists()

    wait_for(all_finished, timeout=60, interval=0.2, what="the cluster to finish every job")
    table = Counter(Job.objects.values_list("kind", "status"))
    assert sum(table.values()) == REPORTS + 2
    assert {status for _, status in table} == {JobStatus.COMPLETED, JobStatus.FAILED}
    started = Counter(Job.objects.filter(started_at__isnull=False).values_list("kind", flat=True))

    report_view = resolve("/api/reports/sales/").view_name
    for base in bases:
        response = scrape(base)
        assert response.status_code == 200, response.text
        found = samples(response.text)
        for kind in {kind for kind, _ in table}:
            for outcome in JobStatus.terminal():
                assert value(found, "jobs_finished_recent", kind=kind, outcome=outcome) == table[(kind, outcome)]
            assert value(found, "jobs_pending", kind=kind) == 0
            assert value(found, "jobs_processing", kind=kind) == 0
            assert value(found, "jobs_queue_depth", kind=kind) == 0
            assert value(found, "jobs_expired_leases", kind=kind) == 0
            assert value(found, "jobs_oldest_pending_age_seconds", kind=kind) == 0
            assert value(found, "jobs_wait_seconds_gcount", kind=kind) == started[kind]
            assert value(found, "jobs_run_seconds_gcount", kind=kind) == started[kind]
            assert value(found, "jobs_run_seconds_bucket", kind=kind, le="+Inf") == started[kind]
        # Half the reports went to each process; either one's scrape adds both up.
        posted = value(found, "http_requests_total", method="POST", view=report_view, status="202")
        assert posted == REPORTS
        assert value(found, "process_resident_memory_bytes") > 0

    # Not for anyone without the token: the same 404 as a page that does not exist.
    assert scrape(bases[0], token=None).status_code == 404
    assert scrape(bases[1], token="not-the-token").status_code == 404
    assert httpx.get(f"{bases[0]}/metrics", headers={"Authorization": f"Token {TOKEN}"}).status_code == 404
