"""Time the hot API paths in-process: submit a purchase, poll a job, poll with a 304.

Usage (from the repository root)::

    .venv/bin/python bench/api_latency.py [--requests 2000]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/jobs_bench .venv/bin/python bench/api_latency.py

Without DATABASE_URL it uses a throw-away SQLite file (var/bench.sqlite3). The
numbers are server time inside Django (no network, no gunicorn), per request.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only-secret-key")
os.environ.setdefault("DATABASE_URL", f"sqlite:///{ROOT / 'var' / 'bench.sqlite3'}")
os.environ.setdefault("ALLOWED_HOSTS", "testserver")


def timed(label: str, count: int, call) -> None:
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    p95 = samples[int(len(samples) * 0.95) - 1]
    print(
        f"{label:<34} n={count:<6} mean={statistics.mean(samples):6.2f} ms  "
        f"p50={statistics.median(samples):6.2f} ms  p95={p95:6.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()

    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    from jobs import queue
    from purchases.models import Product

    call_command("migrate", verbosity=0)
    # Measure the API, not the broker: enqueueing is replaced by a no-op.
    queue.enqueue = lambda job_id, kind, **_: "bench"

    user, _ = get_user_model().objects.get_or_create(username="bench-user")
    token, _ = Token.objects.get_or_create(user=user)
    product, _ = Product.objects.get_or_create(
        sku="BENCH-1", defaults={"name": "Bench item", "price": "1.00", "stock": 10**6}
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token.key}")
    body = {"goods": [{"product_id": product.pk, "quantity": 1}]}

    print(f"database: {connection.vendor}, requests per figure: {args.requests}")
    created = client.post("/api/purchases/", body, format="json")
    assert created.status_code == 202, created.content
    location, etag = created["Location"], client.get(created["Location"])["ETag"]

    timed("POST /api/purchases/ (202)", args.requests // 4, lambda: client.post("/api/purchases/", body, format="json"))
    timed("GET /api/jobs/{id}/ (200)", args.requests, lambda: client.get(location))
    timed("GET /api/jobs/{id}/ (304)", args.requests, lambda: client.get(location, HTTP_IF_NONE_MATCH=etag))
    timed("GET /api/jobs/ (first page)", args.requests // 4, lambda: client.get("/api/jobs/"))


if __name__ == "__main__":
    main()
