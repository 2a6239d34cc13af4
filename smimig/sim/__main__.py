"""The simulator as a stand-in for the nvidia-smi binary, its state kept in a file.

    smimig-sim [--state FILE] [--model A30x4] [--reset] [--fault OPTION=REASON[@N]]…
               [--process GPU[/GI/CI]=PID:NAME]… [--end-process PID] [--gpu-reset GPU] [NVIDIA-SMI ARGUMENTS…]
    python -m smimig.sim …                        (the same)

Point smimig (or any tool) at it with ``SMIMIG_NVIDIA_SMI=$(command -v smimig-sim)``; then every process
sees one node. ``--state`` defaults to ``$SMIMIG_SIM_STATE`` or the model's shared state file in the user's cache
directory (the one ``smimig --simulate MODEL`` and ``smimig.simulate(MODEL)`` use); ``--model`` (default
``$SMIMIG_SIM_MODEL`` or ``A30x4``) is used when the state file is created,
or with ``--reset``, which starts over. ``$SMIMIG_SIM_DELAY`` (``0.025-0.040``) makes each call pause like a
real one (outside the lock, so concurrent calls overlap as real ones do).
``--fault -cgi="Insufficient Resources@2"`` makes the second ``-cgi`` from now fail that way;
``--process 0/1/0=4242:python`` attaches a process to GPU 0, GI 1, CI 0 (it shows in the Processes table and
keeps that instance busy) and ``--end-process 4242`` ends it; ``--gpu-reset N`` makes a pending MIG mode
take effect. Each call takes an exclusive lock on ``FILE.lock`` for the whole
read-change-write, and writes the new state to a temporary file renamed over the old one, so concurrent
calls never see or leave a half-written state.
"""

from __future__ import annotations

import os
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Callable

import attrs

from smimig.sim import CorruptState, StateFileRunner, node_state_path, parse_node_spec
from smimig.sim.state import Fault, Node, ProcessState, SimFailure

__all__ = ["default_state_path", "main"]


STATE_ENV = "SMIMIG_SIM_STATE"
DELAY_ENV = "SMIMIG_SIM_DELAY"  # "0.025-0.040": answer after a random pause, as a real nvidia-smi call takes
MODEL_ENV = "SMIMIG_SIM_MODEL"
DEFAULT_MODEL = "A30x4"


def default_state_path(model: str = DEFAULT_MODEL) -> Path:
    """``$SMIMIG_SIM_STATE``, else the shared file of node ``model`` (:func:`smimig.sim.node_state_path`), the
    one ``smimig --simulate MODEL`` and ``smimig.simulate(MODEL)`` use too."""
    if os.environ.get(STATE_ENV):
        return Path(os.environ[STATE_ENV])
    return node_state_path(model)


def _split_options(argv: list[str]) -> tuple[dict[str, str], list[str]]:
    """Take smimig-sim's own leading options off; the rest are nvidia-smi's."""
    own: dict[str, str] = {}
    changes: list[str] = []
    while argv and argv[0] in ("--state", "--model", "--reset", "--fault", "--process", "--end-process", "--gpu-reset"):
        option = argv.pop(0)
        if option == "--reset":
            own["reset"] = "1"
        elif not argv:
            raise SystemExit(f"smimig-sim: {option} needs a value")
        elif option in ("--state", "--model"):
            own[option[2:]] = argv.pop(0)
        else:
            changes.append(f"{option}={argv.pop(0)}")
    own["changes"] = "\n".join(changes)
    return own, argv


def _edit(changes: list[str]) -> Callable[[Node], None]:
    """One edit of the node for all the --fault/--process/--end-process/--gpu-reset options, in order."""
    steps: list[Callable[[Node], None]] = []
    for change in changes:
        option, _, value = change.partition("=")
        if option == "--fault":
            fault = Fault.parse(value)

            def add_fault(node: Node, fault: Fault = fault) -> None:
                # "@N" counts from now: the Nth such call after this one
                node.faults.append(attrs.evolve(fault, nth=fault.nth + node.calls.get(fault.option, 0)))

            steps.append(add_fault)
        elif option == "--process":
            process = ProcessState.parse(value)
            steps.append(lambda node, process=process: node.processes.append(process))  # type: ignore[misc]
        elif option in ("--end-process", "--gpu-reset") and value.isdigit():
            number = int(value)
            if option == "--gpu-reset":
                steps.append(lambda node, gpu=number: node.reset_gpu(gpu))  # type: ignore[misc]
            else:

                def end(node: Node, pid: int = number) -> None:
                    node.processes = [process for process in node.processes if process.pid != pid]

                steps.append(end)
        else:
            raise ValueError(f"{option} takes a number, got {value!r}")

    def edit(node: Node) -> None:
        for step in steps:
            step(node)

    return edit


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["--help"]:  # the stand-in's own help; nvidia-smi's is "-h" (answered as nvidia-smi does)
        print((__doc__ or "").strip())
        return 0
    own, args = _split_options(arguments)
    spec = own.get("model") or os.environ.get(MODEL_ENV) or DEFAULT_MODEL
    try:
        model, gpus = parse_node_spec(spec)
        path = Path(own["state"]) if "state" in own else default_state_path(spec)
    except ValueError as error:
        print(f"smimig-sim: {error}", file=sys.stderr)
        return 2
    delay = os.environ.get(DELAY_ENV)
    if delay:
        low, _, high = delay.partition("-")
        time.sleep(random.uniform(float(low), float(high or low)))  # noqa: S311  # a pause, not a secret
    runner = StateFileRunner(path, model, gpus)
    if "reset" in own:
        runner.reset()
    changes = [change for change in own["changes"].split("\n") if change]
    if changes:
        try:
            runner.change(_edit(changes))
        except (ValueError, SimFailure) as error:
            print(f"smimig-sim: {error}", file=sys.stderr)
            return 2
    if not args and ("reset" in own or changes):
        return 0
    try:
        result = runner.run(args)
    except CorruptState as error:  # not nvidia-smi's words: say so, and how to start over
        print(f"smimig-sim: {error}", file=sys.stderr)
        return 2
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    return result.returncode


if __name__ == "__main__":
    raise SystemExit(main())
