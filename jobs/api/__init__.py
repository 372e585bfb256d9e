"""The jobs REST API, and the base view other apps use to submit jobs."""
