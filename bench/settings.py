"""Settings for ``bench/poll.py``: the project's own, plus a constant view (``bench/urls.py``)."""

from project.settings import *  # noqa: F403 - the very settings production runs

ROOT_URLCONF = "bench.urls"
