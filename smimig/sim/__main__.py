"""The simulator as a stand-in for the nvidia-smi binary, its state kept in a file.

    smimig-sim [--state FILE] [--model A30x4] [--reset] [NVIDIA-SMI ARGUMENTS…]
    python -m smimig.sim …                        (the same)

Point smimig (or any tool) at it with ``SMIMIG_NVIDIA_SMI=$(command -v smimig-sim)``; then every process
sees one node. ``--state`` defaults to ``$SMIMIG_SIM_STATE`` or ``smimig-sim.json`` in the user's cache
directory; ``--model`` (default ``$SMIMIG_SIM_MODEL`` or ``A30x4``) is used when the state file is created,
or with ``--reset``, which starts over. Each call takes an exclusive lock on ``FILE.lock`` for the whole
read-change-write, and writes the new state to a temporary file renamed over the old one, so concurrent
calls never see or leave a half-written state.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

from smimig.sim import StateFileRunner, parse_node_spec

__all__ = ["default_state_path", "main"]


STATE_ENV = "SMIMIG_SIM_STATE"
MODEL_ENV = "SMIMIG_SIM_MODEL"
DEFAULT_MODEL = "A30x4"


def default_state_path() -> Path:
    """``$SMIMIG_SIM_STATE``, else ``$XDG_CACHE_HOME/smimig/smimig-sim.json`` (``~/.cache`` by default)."""
    if os.environ.get(STATE_ENV):
        return Path(os.environ[STATE_ENV])
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "smimig" / "smimig-sim.json"


def _split_options(argv: list[str]) -> tuple[dict[str, str], list[str]]:
    """Take smimig-sim's own leading options off; the rest are nvidia-smi's."""
    own: dict[str, str] = {}
    while argv and argv[0] in ("--state", "--model", "--reset"):
        option = argv.pop(0)
        if option == "--reset":
            own["reset"] = "1"
        elif argv:
            own[option[2:]] = argv.pop(0)
        else:
            raise SystemExit(f"smimig-sim: {option} needs a value")
    return own, argv


def main(argv: Sequence[str] | None = None) -> int:
    own, args = _split_options(list(sys.argv[1:] if argv is None else argv))
    path = Path(own["state"]) if "state" in own else default_state_path()
    spec = own.get("model") or os.environ.get(MODEL_ENV) or DEFAULT_MODEL
    try:
        model, gpus = parse_node_spec(spec)
    except ValueError as error:
        print(f"smimig-sim: {error}", file=sys.stderr)
        return 2
    runner = StateFileRunner(path, model, gpus)
    if "reset" in own:
        runner.reset()
    if not args and "reset" in own:
        return 0
    result = runner.run(args)
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    return result.returncode


if __name__ == "__main__":
    raise SystemExit(main())
