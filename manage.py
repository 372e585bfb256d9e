#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys
from pathlib import Path

# `make run` keeps the development secret key here and exports it; read it the
# same way so `.venv/bin/python manage.py ...` works in a checkout with nothing
# exported. An exported DJANGO_SECRET_KEY always wins.
DEVELOPMENT_SECRET_KEY = Path(__file__).resolve().parent / "var" / "secret_key"


def use_development_secret_key() -> None:
    """Set DJANGO_SECRET_KEY from var/secret_key when it is unset, for the project's own settings."""
    if os.environ.get("DJANGO_SETTINGS_MODULE") != "project.settings" or os.environ.get("DJANGO_SECRET_KEY"):
        return
    try:
        key = DEVELOPMENT_SECRET_KEY.read_text().strip()
    except OSError:
        return
    if key:
        os.environ["DJANGO_SECRET_KEY"] = key


def main() -> None:
    """Run administrative tasks."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    use_development_secret_key()
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
