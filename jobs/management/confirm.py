"""Confirmation for the commands that change or delete jobs in bulk.

On the command line, a command that would change jobs asks first when its
standard input is a terminal, and refuses (exit 2) when it is not and
``--yes`` was not given: a script must say that it means it. ``--dry-run``
never asks. Called from code (``call_command``), the commands do not ask:
the calling code has decided.
"""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError

# The exit status of a usage error (argparse's); a refused confirmation is one.
USAGE_ERROR = 2


class ConfirmingCommand(BaseCommand):
    """A command with ``--dry-run`` and ``--yes`` that confirms before it acts."""

    from_command_line = False

    def add_confirmation_arguments(self, parser: Any, *, dry_run_help: str) -> None:
        parser.add_argument("--dry-run", action="store_true", help=dry_run_help)
        parser.add_argument(
            "--yes", action="store_true", help="do not ask for confirmation (for scripts)"
        )

    def run_from_argv(self, argv: list[str]) -> None:
        self.from_command_line = True
        super().run_from_argv(argv)

    def confirm(self, question: str, **options: Any) -> None:
        """Ask ``question`` on a terminal; raise CommandError unless the answer is yes."""
        if options["yes"] or not self.from_command_line:
            return
        if not sys.stdin.isatty():
            raise CommandError(
                f"{question} Refusing without a terminal to ask on: pass --yes to go ahead, "
                "or --dry-run to see what would change.",
                returncode=USAGE_ERROR,
            )
        self.stdout.write(f"{question} [y/N] ", ending="")
        self.stdout.flush()
        answer = sys.stdin.readline().strip().lower()
        if answer not in {"y", "yes"}:
            raise CommandError("Not confirmed; nothing was changed.", returncode=1)
