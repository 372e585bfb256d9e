"""The jobs REST API: get, list, cancel and delete jobs, follow them, run any action as a job.

Apps import from ``jobs.api.public`` only; the other modules are the engine's.
"""
