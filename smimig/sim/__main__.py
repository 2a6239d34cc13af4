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

import fcntl
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from smimig.sim import parse_node_spec
from smimig.sim.nvsmi import run
from smimig.sim.state import Node

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


def _write_atomically(path: Path, data: dict[str, object]) -> None:
    handle, temporary = tempfile.mkstemp(prefix=path.name + ".", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(data, stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


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
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(str(path) + ".lock", "a+", encoding="utf-8") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        if path.exists() and "reset" not in own:
            node = Node.from_json(json.loads(path.read_text(encoding="utf-8")))
        else:
            node = Node.new(model, gpus)
        before = node.to_json()
        returncode, stdout, stderr = run(node, args) if args or "reset" not in own else (0, "", "")
        after = node.to_json()
        if after != before or not path.exists() or "reset" in own:
            _write_atomically(path, after)
    sys.stdout.write(stdout)
    sys.stderr.write(stderr)
    return returncode


if __name__ == "__main__":
    raise SystemExit(main())
