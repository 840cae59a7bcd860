"""Django's command line for the installed service: ``python -m animochat.manage …``.

The checkout's ``manage.py`` calls this too, so both run the same commands
(``migrate``, ``collectstatic``, ``heartbeat``, ``sweep_queues``, ``maintenance``…).
"""

from __future__ import annotations

import os
import sys

from django.core.management import execute_from_command_line


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "animochat.settings")
    execute_from_command_line(argv if argv is not None else sys.argv)


if __name__ == "__main__":
    main()
