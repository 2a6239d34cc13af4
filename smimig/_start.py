"""The ``smimig`` command's entry point, kept apart from :mod:`smimig.cli` so that a Ctrl-C while the
command line is still loading ends it as a Ctrl-C does later (``smimig: interrupted.``, exit code 130), not
with the traceback of whichever import it cut short. Only Python's own start-up, before this module runs,
is left to print one."""

from __future__ import annotations

import sys

INTERRUPTED = 130
"""128 + SIGINT, as :mod:`smimig.exit_codes` gives it (a test holds the two together)."""


def main() -> None:
    """Load the command line and run it."""
    try:
        from smimig.cli import main_exit  # noqa: PLC0415  # the point: an interrupted import is caught here
    except KeyboardInterrupt:
        sys.stderr.write("smimig: interrupted.\n")
        raise SystemExit(INTERRUPTED) from None
    main_exit()
