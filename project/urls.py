"""Root URLs: the demo shop and sign-in, the admin, the API of each app, JSON errors under /api/."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from project.metrics import metrics
from project.throttling import limit_login_attempts
from project.views import ObtainTokenView
from purchases.views import shop

urlpatterns = [
    # First: the job poll is most of all requests, and Django tries the
    # patterns in order (no other pattern here starts with api/jobs/ or
    # api/webhooks/).
    path("api/", include("jobs.api.urls")),
    # The demo page: the JavaScript client at work (see README, "Frontend").
    path("", shop, name="shop"),
    path(
        "accounts/login/",
        limit_login_attempts(
            auth_views.LoginView.as_view(
                template_name="purchases/login.html", next_page="shop", redirect_authenticated_user=True
            )
        ),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(next_page="shop"), name="logout"),
    # The admin's own login view behind the sign-in throttles (project/throttling.py):
    # matched before admin.site.urls, and reverse("admin:login") gives the same path.
    path("admin/login/", limit_login_attempts(admin.site.login)),
    # The live jobs dashboard (jobs/admin/dashboard.py), inside the admin;
    # the admin index links to it (admin.site.index_template, below).
    path("admin/jobs/dashboard/", include("jobs.admin.dashboard")),
    path("admin/", admin.site.urls),
    path("api/auth/token/", ObtainTokenView.as_view(), name="api-token"),
    # The OpenAPI schema and Swagger UI: public, like any API reference.
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/", include("purchases.api.urls")),
    # Prometheus scrapes: a 404 without METRICS_TOKEN (project/metrics.py).
    path("metrics", metrics, name="metrics"),
]

admin.site.index_template = "admin/jobs/index.html"


# Error pages: JSON under /api/, Django's HTML elsewhere (project/views.py).
handler400 = "project.views.bad_request"
handler403 = "project.views.permission_denied"
handler404 = "project.views.page_not_found"
handler500 = "project.views.server_error"
