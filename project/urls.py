"""Root URLs: the admin, the API of each app, and JSON 404s under /api/."""

from django.contrib import admin
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import include, path
from django.views.defaults import page_not_found
from rest_framework.authtoken.views import ObtainAuthToken

urlpatterns = [
    path("admin/", admin.site.urls),
    # No authentication classes: a stale token sent along must not stop a login.
    path(
        "api/auth/token/",
        ObtainAuthToken.as_view(authentication_classes=[]),
        name="api-token",
    ),
    path("api/", include("jobs.api.urls")),
    path("api/", include("purchases.api.urls")),
]


def handler404(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Answer unknown API paths in JSON, like every other API error."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return page_not_found(request, exception)
