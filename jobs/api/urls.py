from django.urls import path

from jobs.api import streams, views, webhooks

app_name = "jobs"

urlpatterns = [
    path("jobs/", views.JobListView.as_view(), name="job-list"),
    path(
        "jobs/<str:job_id>/",
        streams.long_pollable(views.JobDetailView.as_view()),
        name="job-detail",
    ),
    path("jobs/<str:job_id>/cancel/", views.JobCancelView.as_view(), name="job-cancel"),
    path("jobs/<str:job_id>/retry/", views.JobRetryView.as_view(), name="job-retry"),
    path(
        "jobs/<str:job_id>/events/",
        streams.events_view(streams.JobEventsView.as_view()),
        name="job-events",
    ),
    path("webhooks/secret/", webhooks.WebhookSecretView.as_view(), name="webhook-secret"),
    path("webhooks/endpoint/", webhooks.WebhookEndpointView.as_view(), name="webhook-endpoint"),
]
