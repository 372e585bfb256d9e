"""Issue 11, defect 12: an open event stream ends once its credentials no longer hold.

Against a real uvicorn worker with a one-second heartbeat; no cluster runs,
so the job stays pending and the stream would otherwise stay open until
``STREAM_MAX_SECONDS``.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from rest_framework.authtoken.models import Token

from jobs.api.streams import Credentials

pytestmark = pytest.mark.usefixtures("fresh_wait_slots")

HEARTBEAT = 1
MARGIN = 3.0


def revoke_token(user: Any) -> None:
    Token.objects.filter(user=user).delete()


def deactivate(user: Any) -> None:
    user.is_active = False
    user.save(update_fields=["is_active"])


def revoke_both(user: Any) -> None:
    revoke_token(user)
    deactivate(user)


def in_own_connection(func: Any, *args: Any) -> None:
    """Run ``func`` in this (helper) thread, closing the connection it opened here."""
    try:
        func(*args)
    finally:
        connections.close_all()


@pytest.mark.slow
@pytest.mark.real_queue
@pytest.mark.parametrize("revoke", [revoke_both, revoke_token, deactivate], ids=lambda f: f.__name__)
def test_stream_ends_within_a_heartbeat_of_revoked_credentials(server, user, revoke):
    base = server(JOBS_STREAM_HEARTBEAT=str(HEARTBEAT), JOBS_STREAM_MAX_SECONDS="120")
    token, _ = Token.objects.get_or_create(user=user)
    headers = {"Authorization": f"Bearer {token.key}"}

    async def scenario() -> tuple[float, list[str]]:
        async with httpx.AsyncClient(base_url=base, timeout=30, headers=headers) as client:
            submitted = await client.post(
                "/api/reports/sales/", json={}, headers={"Prefer": "respond-async"}
            )
            assert submitted.status_code == 202, submitted.text
            events = f"/api/jobs/{submitted.json()['id']}/events/"
            lines: list[str] = []
            async with client.stream("GET", events, headers={"Accept": "text/event-stream"}) as stream:
                assert stream.status_code == 200
                revoked_at = None
                async with asyncio.timeout(HEARTBEAT + MARGIN + 20):
                    async for line in stream.aiter_lines():
                        lines.append(line)
                        if line == "event: status" and revoked_at is None:
                            # The stream is open and delivering: now revoke.
                            await sync_to_async(in_own_connection, thread_sensitive=False)(revoke, user)
                            revoked_at = time.monotonic()
                assert revoked_at is not None, lines
                return time.monotonic() - revoked_at, lines

    took, lines = asyncio.run(scenario())
    print(f"{revoke.__name__}: the stream ended {took:.2f} s after the revocation")
    assert took < HEARTBEAT + MARGIN, f"the stream went on for {took:.1f} s: {lines}"
    assert "event: revoked" in lines, lines
    data = lines[lines.index("event: revoked") + 1]
    body = json.loads(data.removeprefix("data: "))
    assert body["code"] == "not_authenticated" and body["detail"]


# --- The check itself, in process -------------------------------------------------


@pytest.mark.django_db
def test_credentials_hold_while_the_token_exists_and_the_user_is_active(user, other_user):
    token, _ = Token.objects.get_or_create(user=user)
    credentials = Credentials(user_pk=user.pk, token_key=token.key)
    assert credentials.still_hold()
    assert not Credentials(user_pk=other_user.pk, token_key=token.key).still_hold()
    deactivate(user)
    assert not credentials.still_hold()
    user.is_active = True
    user.save(update_fields=["is_active"])
    assert credentials.still_hold()
    token.delete()
    assert not credentials.still_hold()


@pytest.mark.django_db
def test_session_credentials_end_with_the_session_or_the_user(user, client):
    client.force_login(user)
    credentials = Credentials(user_pk=user.pk, session_key=client.session.session_key)
    assert credentials.still_hold()
    deactivate(user)
    assert not credentials.still_hold()
    user.is_active = True
    user.save(update_fields=["is_active"])
    client.logout()  # deletes the session
    assert not credentials.still_hold()
