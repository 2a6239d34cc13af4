"""``python -m smimig``: the same as the ``smimig`` command."""

from __future__ import annotations

from smimig.cli import main_exit

main_exit()
