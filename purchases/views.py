"""The demo shop page at ``/``: sign in, buy, watch the job, see recent jobs."""

from __future__ import annotations

from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_safe

from purchases.conf import purchases_setting
from purchases.models import Product


@require_safe
@ensure_csrf_cookie
def shop(request: HttpRequest) -> HttpResponse:
    """Render the shop for a signed-in user, the sign-in form otherwise.

    The page's script posts with the session, so it needs the CSRF cookie.
    """
    if not request.user.is_authenticated:
        return render(request, "purchases/index.html", {"form": AuthenticationForm(request)})
    context = {
        "products": Product.objects.order_by("name", "id"),
        "currency": purchases_setting("CURRENCY"),
        "max_quantity": purchases_setting("MAX_QUANTITY"),
    }
    return render(request, "purchases/index.html", context)
