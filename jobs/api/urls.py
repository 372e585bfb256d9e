from django.urls import path

from jobs.api import views

app_name = "jobs"

urlpatterns = [
    path("jobs/", views.JobListView.as_view(), name="job-list"),
    path("jobs/<str:job_id>/", views.JobDetailView.as_view(), name="job-detail"),
    path("jobs/<str:job_id>/cancel/", views.JobCancelView.as_view(), name="job-cancel"),
]
