"""``python -m smimig``: the same as the ``smimig`` command."""

from __future__ import annotations

from smimig._start import main

main()
