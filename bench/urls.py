"""The project's URLs plus ``GET /bench/constant/``: the cheapest Django answer, for scale."""

from django.http import HttpRequest, JsonResponse
from django.urls import include, path

from project.urls import handler404  # noqa: F401 - JSON 404s under /api/, as in production

CONSTANT = {"status": "ok", "answer": 42}


def constant(request: HttpRequest) -> JsonResponse:
    """A plain synchronous view: no database, no authentication, a small JSON body."""
    return JsonResponse(CONSTANT)


urlpatterns = [
    path("bench/constant/", constant, name="bench-constant"),
    path("", include("project.urls")),
]
