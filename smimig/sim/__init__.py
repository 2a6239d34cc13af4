"""A simulated MIG GPU node that speaks nvidia-smi's text: for tests, demos and machines with no GPU.

>>> import smimig
>>> from smimig.sim import SimulatedRunner
>>> smi = smimig.Smi(runner=SimulatedRunner("A30", gpus=4))
>>> smi.enable_mig(0)
[MigModeChange(gpu=0, bus_id='00000000:17:00.0', enabled=True, pending=False, reason=None, warnings=())]
>>> smi.create_gi(0, ["2g.12gb", "2g.12gb"], ci=True)
[CreatedGpuInstance(gpu=0, id=1, profile_name='MIG 2g.12gb', ...), CreatedGpuInstance(gpu=0, id=2, ...)]

It answers every command smimig sends (``-L``, the plain table, the MIG mode query, ``-mig``, and ``mig``
with ``-lgip -lgipp -lgi -lcip -lcipp -lci -cgi [-C] -cci -dci -dgi`` and their ``-i/-gi/-ci`` selectors)
in nvidia-smi's own words, so everything it prints goes through smimig's real parsers.

Models (keys, any case, or aliases such as ``"H200"``; ``smimig --simulate list`` prints them with what each
infers; see :mod:`smimig.sim.catalog`): ``"A30"`` (the seed's node: its UUIDs, bus ids and recorded MIG device
UUIDs), ``"A100-40GB"`` (published figures), ``"A100-80GB"`` (PCIe, driver 515 walk-through),
``"H100-80GB"`` and ``"H200-141GB"`` (driver 580 captures), ``"GH200-480GB"`` (its driver 550 ``-lgip``),
``"B200"`` (three recorded ``-lgip`` rows, the rest inferred), ``"RTX-PRO-6000"`` (RTX PRO 6000 Blackwell
Server Edition: recorded ``-lgip`` and tables; placements on the grid of 12 newer drivers print) and
``"RTX-PRO-6000-GRID4"`` (the same GPU with the grid of 4 of older drivers). Each model lists what it takes
from recordings (``GpuModel.recorded``) and what it infers (``GpuModel.inferred``).

**Modelled from recordings** (tests compare the output with them byte for byte): the A30 listings
(``-L``, ``-lgip``, ``-lgipp``, ``-lgi``, ``-lcip``, ``-lci``, the GPU table and "MIG devices:" box, the
create and mode messages) and their ids, placements and device order; the H100 and H200 ``-L``, ``-lgip``,
``-lgipp``, ``--query-gpu``, ``--version`` and plain table (MIG off), and their MIG-off listing messages; the
GH200 and RTX PRO 6000 ``-lgip``; the RTX PRO 6000 tables with MIG on (no MIG device; one 1g device in GI 3),
its "Shared" "MIG devices:" box (driver 580) and its name cut to "NVIDIA RTX PRO 6000 Blac..."; the A100 80GB
walk-through (pending ``-mig 1``, ``-lgip``, ``-cgi``, ``-lgi``, ``-lcip``, ``-cci``, ``-lci``, ``-mig 0`` with
the persistence-mode warning; its tables through the parser); "No MIG-enabled devices found." for listings
on a GPU in MIG mode off (exit 0); "No devices were found" for an unknown GPU (exit 6);
``Option "-x" is not recognized.`` (exit 2); ``-L`` refusing ``-i``.

**Inferred** (no recording shows it): placements chosen without an explicit start (the free one that blocks
fewest others); media-engine exclusivity (one GI with the OFA at a time); CI profiles and placements inside
GIs larger than the recorded ones, and all of them on the Hopper and Blackwell models; ``-lcipp``'s format;
the failure lines of ``-cgi/-cci/-dci/-dgi`` and their exit codes (as the synthetic fixtures); exit 6 for
"No GPU instances found: Not Found"; ``-mig 0`` refused while GIs exist; temperatures, power and memory in
use; the 580-style ``-lgi``/``-lci``/``-lcip`` layouts (and Name columns widened for long names); the
Processes box on driver 545; a mode change takes effect at once unless a process holds the GPU; MIG device
memory where only GiB is recorded (:func:`~smimig.sim.catalog.mib_of`); per model, the rest of its
``inferred`` list (GH200 and B200 placements, the B200's last four rows, the RTX PRO 6000's grids …).

In process, :class:`SimulatedRunner` is a :class:`smimig.Runner`, safe to share between threads. As a
stand-in binary, ``smimig-sim`` (or ``python -m smimig.sim``) keeps the state in a file, locked and written
atomically, so separate processes see one consistent node: point ``SMIMIG_NVIDIA_SMI`` at it.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Callable

from smimig.runner import RunResult
from smimig.sim.catalog import MODELS, GpuModel, model_named
from smimig.sim.nvsmi import run
from smimig.sim.state import Fault, Node, ProcessState

__all__ = [
    "MODELS",
    "CorruptState",
    "Fault",
    "GpuModel",
    "Node",
    "ProcessState",
    "SimulatedRunner",
    "StateFileRunner",
    "model_named",
    "node_state_path",
    "parse_node_spec",
    "simulated_node",
]


MAX_SIMULATED_GPUS = 64


def parse_node_spec(spec: str) -> tuple[str, int]:
    """``"A30x4"`` -> ``("A30", 4)``; ``"h100x2"`` -> ``("H100-80GB", 2)``; ``"rtx-pro-6000"`` -> one GPU.

    The model comes back as its catalog key, whatever case or alias was written, so every spelling of a node
    names one node.

    Raises:
        ValueError: an empty spec, an unknown model (the message lists the known ones), or a count that is
            not a plain number from 1 to 64.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError("an empty node spec: expected MODEL or MODELxN, e.g. A30x4 (smimig --simulate list)")
    match = re.fullmatch(r"(.*?)[xX]([0-9]*)", spec)
    model, count = (match.group(1), match.group(2)) if match else (spec, "1")
    if match and not count:  # "A30x": a count was meant
        raise ValueError(f"bad node spec {spec!r}: expected MODEL or MODELxN, e.g. A30x4")
    key = model_named(model).key
    if len(count) > 3 or not 1 <= int(count) <= MAX_SIMULATED_GPUS:
        raise ValueError(f"bad node spec {spec!r}: a simulated node has 1 to {MAX_SIMULATED_GPUS} GPUs")
    return key, int(count)


def node_state_path(spec: str) -> Path:
    """Where the node ``spec`` keeps its state: one file per (model, GPU count), whatever the spelling, in
    ``$XDG_CACHE_HOME/smimig`` (``~/.cache/smimig``). ``smimig --simulate SPEC``, :func:`smimig.simulate`
    and ``smimig-sim --model SPEC`` all use it, so a terminal and a notebook see one node."""
    model, gpus = parse_node_spec(spec)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "smimig" / f"simulate-{model}x{gpus}.json"


def simulated_node(spec: str, *, reset: bool = False) -> StateFileRunner:
    """The runner of the shared simulated node ``spec`` (its state in :func:`node_state_path`)."""
    model, gpus = parse_node_spec(spec)
    runner = StateFileRunner(node_state_path(spec), model, gpus)
    if reset:
        runner.reset()
    return runner


class SimulatedRunner:
    """A :class:`smimig.Runner` that answers from a simulated node instead of running nvidia-smi.

    Args:
        model: a key of :data:`MODELS` (``"A30"``, ``"H100-80GB"``, ``"RTX-PRO-6000"`` …) or an alias, any case.
        gpus: how many GPUs of that model.
        mig: start with MIG mode on (default: off, as a fresh node).
        faults: :class:`Fault` s to inject: the nth call using an option fails with nvidia-smi's words.

    Safe to share between threads: one call at a time changes the node.
    """

    def __init__(self, model: str = "A30", gpus: int = 1, *, mig: bool = False, faults: Sequence[Fault] = ()) -> None:
        self.node = Node.new(model, gpus, mig=mig)
        self.node.faults.extend(faults)
        self._lock = threading.Lock()

    def add_process(
        self, gpu: int, gi: int | None = None, ci: int | None = None, *, pid: int = 4242, name: str = "python"
    ) -> ProcessState:
        """Attach a simulated process: it shows in the Processes table and keeps its instance busy."""
        process = ProcessState(pid, name, gpu, gi, ci)
        with self._lock:
            self.node.processes.append(process)
        return process

    def remove_process(self, pid: int) -> None:
        """The process ends."""
        with self._lock:
            self.node.processes = [process for process in self.node.processes if process.pid != pid]

    def reset_gpu(self, gpu: int) -> None:
        """``nvidia-smi -r``: a pending MIG mode takes effect (the GPU must be idle)."""
        with self._lock:
            self.node.reset_gpu(gpu)

    def __repr__(self) -> str:
        return f"SimulatedRunner({self.node.model.key!r}, gpus={len(self.node.gpus)})"

    def run(self, args: Sequence[str]) -> RunResult:
        """Answer nvidia-smi's ``args`` from the simulated node."""
        with self._lock:
            returncode, stdout, stderr = run(self.node, list(args))
        return RunResult(("nvidia-smi", *args), returncode, stdout, stderr)


class CorruptState(ValueError):
    """A simulated node's state file that cannot be read (truncated, edited, from an incompatible version)."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(
            f"the simulated node's state file {path} cannot be read ({problem}); start the node over: "
            "smimig --simulate NODE --reset-simulation …, smimig-sim --state FILE --reset, "
            "or smimig.simulate(NODE, reset=True)"
        )
        self.path = path


def _load_node(path: Path) -> Node:
    try:
        return Node.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, KeyError, TypeError, AttributeError, IndexError) as error:  # json's, and a wrong shape
        raise CorruptState(path, f"{type(error).__name__}: {error}"[:200]) from None


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


class StateFileRunner:
    """A :class:`smimig.Runner` over a simulated node kept in a JSON file, shared by processes.

    Each call takes an exclusive lock on ``<path>.lock`` for the whole read-change-write and replaces the
    file atomically, so concurrent callers never see or leave a half-written state. The node is created
    (``gpus`` GPUs of ``model``, MIG off) when the file does not exist yet.
    """

    def __init__(self, path: str | os.PathLike[str], model: str = "A30", gpus: int = 4) -> None:
        self.path = Path(path)
        self.model = model
        self.gpus = gpus

    def change(self, edit: Callable[[Node], None]) -> None:
        """Change the node in the file under the lock (add faults or processes, reset a GPU …)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(str(self.path) + ".lock", "a+", encoding="utf-8") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            node = _load_node(self.path) if self.path.exists() else Node.new(self.model, self.gpus)
            edit(node)
            _write_atomically(self.path, node.to_json())

    def __repr__(self) -> str:
        return f"StateFileRunner({str(self.path)!r}, {self.model!r}, gpus={self.gpus})"

    def reset(self) -> None:
        """Start over: a fresh node of the configured model, MIG off."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(str(self.path) + ".lock", "a+", encoding="utf-8") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            _write_atomically(self.path, Node.new(self.model, self.gpus).to_json())

    def run(self, args: Sequence[str]) -> RunResult:
        """Answer nvidia-smi's ``args`` from the node in the file, saving any change."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(str(self.path) + ".lock", "a+", encoding="utf-8") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            node = _load_node(self.path) if self.path.exists() else Node.new(self.model, self.gpus)
            before = node.to_json()
            returncode, stdout, stderr = run(node, list(args))
            after = node.to_json()
            if after != before or not self.path.exists():
                _write_atomically(self.path, after)
        return RunResult(("nvidia-smi", *args), returncode, stdout, stderr)
