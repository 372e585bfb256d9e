"""The tombstones' admin page: read-only, searchable by job id or owner, filled by the admin's purge."""

from __future__ import annotations

import pytest

from jobs.models import Job, JobStatus, Tombstone
from tests.support.admin import post_action, staff_client
from tests.support.factories import make_job

pytestmark = pytest.mark.django_db
URL = "/admin/jobs/tombstone/"


def test_a_staff_purge_shows_up_as_tombstones_staff_may_only_look_at(admin_client, user, other_user):
    mine = make_job(user, status=JobStatus.FAILED, kind="purchases.execute")
    theirs = make_job(other_user, status=JobStatus.COMPLETED, kind="purchases.sales_report")
    post_action(admin_client, "purge_jobs", [mine, theirs], post="yes")
    assert not Job.objects.exists()
    assert set(Tombstone.objects.values_list("pk", "reason")) == {(mine.pk, "purged"), (theirs.pk, "purged")}

    page = admin_client.get(URL)
    assert page.status_code == 200
    assert str(mine.pk) in page.content.decode() and "Purged by staff" in page.content.decode()
    by_id = admin_client.get(URL, {"q": str(theirs.pk)}).content.decode()
    assert str(theirs.pk) in by_id and str(mine.pk) not in by_id
    by_owner = admin_client.get(URL, {"q": "alice"}).content.decode()
    assert str(mine.pk) in by_owner and str(theirs.pk) not in by_owner

    assert admin_client.get(f"{URL}add/").status_code == 403
    detail = admin_client.get(f"{URL}{mine.pk}/change/")
    assert detail.status_code == 200 and 'type="submit"' not in detail.content.decode().split('id="content-main"')[1]


def test_staff_without_view_permission_do_not_see_tombstones(django_user_model):
    _, client = staff_client(django_user_model, "carol", "view_job")
    assert client.get(URL).status_code == 403
