"""django-q2's own admin pages, for superusers only.

Out of the box, any staff user who may view failed tasks can resubmit them,
and anyone who may edit schedules can make the cluster run any importable
function (``func='os.system'``). Those pages stay, but only superusers see
or use them.
"""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

# Imported for its registrations, which must exist before we replace them.
from django_q import admin as _django_q_admin  # noqa: F401
from django_q.models import Failure, OrmQ, Schedule, Success

from jobs.admin.filters import RefuseNulBytesMixin


class SuperuserOnly(RefuseNulBytesMixin):
    """Every permission of the wrapped ModelAdmin requires a superuser (and no NUL in filters)."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_add_permission(self, request: HttpRequest, *args: object) -> bool:
        return request.user.is_active and request.user.is_superuser and super().has_add_permission(request, *args)

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return request.user.is_active and request.user.is_superuser and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return request.user.is_active and request.user.is_superuser and super().has_delete_permission(request, obj)


def restrict_django_q_admin(site: admin.AdminSite = admin.site) -> None:
    """Re-register django-q2's ModelAdmins so that only superusers reach them."""
    for model in (Schedule, Success, Failure, OrmQ):
        if not site.is_registered(model):
            continue
        original = type(site.get_model_admin(model))
        site.unregister(model)
        site.register(model, type(f"SuperuserOnly{original.__name__}", (SuperuserOnly, original), {}))


restrict_django_q_admin()
