"""``Smi``: builds nvidia-smi's argument lists, runs them through a runner, hands the text to a parser.

Data flows one way: call -> argv -> :class:`~smimig.runner.Runner` -> text -> parser -> models. A listing's
argv, parser and "nothing found" answers come from the registry, :mod:`smimig.commands` (see :meth:`Smi.read`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Callable, TypeVar, Union, overload

import attrs

from smimig import commands, parsers
from smimig.errors import MigOperationError, NvidiaSmiError, ParseError, PermissionDenied
from smimig.listing import Listing
from smimig.runner import DEFAULT_TIMEOUT, Runner, RunResult, SubprocessRunner

if TYPE_CHECKING:
    from contextlib import AbstractContextManager
    from pathlib import Path

    from smimig.arguments import CiProfileSpec, GiProfileSpec
    from smimig.diagnostics import DoctorReport
    from smimig.jobs import DeviceRun
    from smimig.layout import Layout
    from smimig.leasing import Lease, ReclaimReport
    from smimig.ledger import LeaseRecord
    from smimig.locking import OnWait
    from smimig.models import (
        ComputeInstance,
        ComputeInstancePlacements,
        ComputeInstanceProfile,
        CreatedComputeInstance,
        CreatedGpuInstance,
        DestroyedComputeInstance,
        DestroyedGpuInstance,
        Gpu,
        GpuInstance,
        GpuInstancePlacements,
        GpuInstanceProfile,
        GpuProcess,
        MigDeviceUsage,
        MigMode,
        MigModeChange,
        OperationOutput,
        PciDeviceId,
    )
    from smimig.node_status import MigDeviceInfo, NodeStatus
    from smimig.planner import ApplyResult, Plan

__all__ = ["Ids", "Smi", "default_client", "use", "validate_ids"]

Ids = Union[int, Sequence[int], None]
"""A selector: one id, several ids, or None for all."""

T = TypeVar("T")
# One type per read of Smi.gather().
A = TypeVar("A")
B = TypeVar("B")
C = TypeVar("C")
D = TypeVar("D")
E = TypeVar("E")
F = TypeVar("F")

# Messages nvidia-smi prints for a failure, sometimes with exit code 0 (e.g. when one GPU of several
# cannot be reached). Matched at the start of a line of stdout or stderr.
_ERROR_STARTS = (
    "Failed to initialize NVML",
    "NVIDIA-SMI has failed",
    "No devices were found",
    "Unable to determine the device handle",
    "Insufficient Permissions",
    "ERROR:",
)


def validate_ids(value: Ids, name: str) -> list[int] | None:
    """Check a selector: a non-negative int, a non-empty sequence of them, or None.

    Raises:
        ValueError: naming the argument, for anything else (bools and strings included).
    """
    if value is None:
        return None
    items = [value] if isinstance(value, int) else value
    if isinstance(items, (str, bytes)) or not isinstance(items, Sequence):
        raise ValueError(f"{name} must be an int, a sequence of ints, or None; got {value!r}")
    if not items:
        raise ValueError(f"{name} must not be an empty sequence")
    for item in items:
        if isinstance(item, bool) or not isinstance(item, int) or item < 0:
            raise ValueError(f"{name} must hold non-negative ints; got {item!r}")
    return list(items)


def _selector(option: str, ids: list[int] | None) -> list[str]:
    return [] if ids is None else [option, ",".join(map(str, ids))]


def _find_error_line(result: RunResult) -> str | None:
    for stream in (result.stderr, result.stdout):
        for line in stream.splitlines():
            if line.strip().startswith(_ERROR_STARTS):
                return line.strip()
    return None


class Smi:
    """The smimig API bound to one runner.

    >>> smi = Smi()                        # the real nvidia-smi on this machine
    >>> smi = Smi(sudo=True)               # ... through ``sudo -n``
    >>> smi = Smi(runner=smimig.sim.SimulatedRunner("A30"))  # anything with ``run(args) -> RunResult``

    Every method mirrors one nvidia-smi command and returns models; the module-level functions of
    :mod:`smimig` call the same methods on a default client.
    """

    def __init__(
        self,
        runner: Runner | None = None,
        *,
        sudo: bool = False,
        timeout: float = DEFAULT_TIMEOUT,
        max_workers: int = 6,
    ) -> None:
        if runner is not None and sudo:
            raise ValueError("sudo=True applies to the default runner; configure your runner instead")
        if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
            raise ValueError(f"max_workers must be a positive int; got {max_workers!r}")
        self.runner: Runner = runner if runner is not None else SubprocessRunner(timeout=timeout, sudo=sudo)
        self.max_workers = max_workers

    def __repr__(self) -> str:
        return f"Smi(runner={self.runner!r})"

    # -- running ---------------------------------------------------------------------------------

    @overload
    def gather(self, a: Callable[[], A], b: Callable[[], B], c: Callable[[], C], /) -> tuple[A, B, C]: ...

    @overload
    def gather(
        self, a: Callable[[], A], b: Callable[[], B], c: Callable[[], C], d: Callable[[], D], e: Callable[[], E], /
    ) -> tuple[A, B, C, D, E]: ...

    @overload
    def gather(
        self,
        a: Callable[[], A],
        b: Callable[[], B],
        c: Callable[[], C],
        d: Callable[[], D],
        e: Callable[[], E],
        f: Callable[[], F],
        /,
    ) -> tuple[A, B, C, D, E, F]: ...

    @overload
    def gather(self, *reads: Callable[[], T]) -> tuple[T, ...]: ...

    def gather(self, *reads: Callable[[], Any]) -> tuple[Any, ...]:
        """Run independent reads at once (up to ``max_workers`` threads); results in the order given.

        Listings are independent, so ``status``, ``plan``, ``export`` and ``doctor`` issue theirs together:
        six nvidia-smi listings took 185 ms one after another on an H100 (driver 580), 65 ms at once.
        Changes never go through here: they stay strictly one after another. The first error (in the
        order given) is raised once all have finished.
        """
        return _read_all(reads, self.max_workers)

    def run(self, args: Sequence[str], *, result: RunResult | None = None) -> RunResult:
        """Run nvidia-smi with ``args`` and return its result, raising for any failure.

        Raises:
            NvidiaSmiError: non-zero exit code, or a known error message with exit code 0.
        """
        if result is None:
            result = self.runner.run(list(args))
        if result.returncode != 0:
            raise NvidiaSmiError(result.args, result.returncode, result.stdout, result.stderr)
        error_line = _find_error_line(result)
        if error_line is not None:
            raise NvidiaSmiError(
                result.args,
                result.returncode,
                result.stdout,
                result.stderr,
                reason=f"error message with exit code 0: {error_line!r}",
            )
        return result

    # -- reading a listing of the registry -------------------------------------------------------

    def read(self, command: commands.Command[T], gpu: Ids = None, gi: Ids = None) -> Listing[T]:
        """Run one listing of the registry (:mod:`smimig.commands`) and parse it: every ``list_*`` method,
        ``mig_mode`` and ``pci_device_ids`` are this call on their entry.

        >>> from smimig import commands
        >>> from smimig.sim import SimulatedRunner
        >>> smi = smimig.Smi(runner=SimulatedRunner("A30", mig=True))
        >>> [profile.name for profile in smi.read(commands.GI_PROFILES, gpu=0)]
        ['MIG 1g.6gb', 'MIG 1g.6gb+me', 'MIG 2g.12gb', 'MIG 2g.12gb+me', 'MIG 4g.24gb']

        Raises:
            ValueError: a bad selector, or one the command does not take (``gi`` for ``-lgi``).
            NvidiaSmiError: nvidia-smi failed (not for the command's "nothing found" answers).
            ParseError: output smimig cannot read; ``.result`` holds nvidia-smi's answer.
        """
        wanted = validate_ids(gpu, "gpu")
        rows = self.parse(command, self.runner.run(command.argv(wanted, validate_ids(gi, "gi"))))
        return rows if wanted is None else Listing(command.select(rows, wanted))

    def read_raw(self, command: commands.Command[Any], gpu: Ids = None, gi: Ids = None) -> RunResult:
        """Run one listing of the registry and return nvidia-smi's answer as it came: exit code not checked,
        nothing parsed (doctor's self-check reads it so, to report and save what it cannot parse).

        Raises:
            ValueError: as :meth:`read`.
            NvidiaSmiNotFound, NvidiaSmiTimeout: from the runner; no other failure raises here.
        """
        return self.runner.run(command.argv(validate_ids(gpu, "gpu"), validate_ids(gi, "gi")))

    def parse(self, command: commands.Command[T], result: RunResult) -> Listing[T]:
        """Check a listing's answer (from :meth:`read_raw`) and parse it, as :meth:`read` does.

        The command's "nothing found" answers are an empty listing whatever the exit code ("No GPU instances
        found: Not Found" may come with exit code 6, NVML's NOT_FOUND).

        Raises:
            NvidiaSmiError: any other non-zero exit code, or an error message with exit code 0.
            ParseError: output the command's parser does not recognise; ``.result`` is ``result``.
        """
        text = result.stdout + result.stderr
        if result.returncode != 0 and command.is_empty(text):
            return Listing(command.parser(text))
        checked = self.run(result.args, result=result)
        try:
            return Listing(command.parser(checked.stdout))
        except ParseError as error:
            error.result = checked
            raise

    # -- listings --------------------------------------------------------------------------------

    def list_gpus(self, gpu: Ids = None) -> Listing[Gpu]:
        """The GPUs with the MIG devices on each, from ``nvidia-smi -L``.

        ``-L`` does not take ``-i`` (driver 580 refuses it), so a selection is made here, after parsing.

        >>> smimig.list_gpus()
        [Gpu(index=0, name='NVIDIA A30', uuid='GPU-d843...', mig_devices=(MigDevice(...), ...)), ...]

        Command line equivalent: ``nvidia-smi -L``
        """
        return self.read(commands.GPUS, gpu)

    def mig_mode(self, gpu: Ids = None) -> Listing[MigMode]:
        """Each GPU's MIG mode, current and pending.

        >>> smimig.mig_mode(0)
        [MigMode(gpu=0, bus_id='00000000:17:00.0', current=True, pending=True, supported=True)]

        Command line equivalent: ``nvidia-smi [-i N] --query-gpu=index,pci.bus_id,mig.mode.current,
        mig.mode.pending --format=csv,noheader``
        """
        return self.read(commands.MIG_MODE, gpu)

    def list_gi_profiles(self, gpu: Ids = None) -> Listing[GpuInstanceProfile]:
        """The GPU instance profiles of each GPU, with free/total instance counts.

        >>> smimig.list_gi_profiles(0)[2]
        GpuInstanceProfile(gpu=0, name='MIG 2g.12gb', id=5, free=0, total=2, memory_gib=11.69, ...)

        Command line equivalent: ``nvidia-smi mig [-i N] -lgip``
        """
        return self.read(commands.GI_PROFILES, gpu)

    def list_gi_placements(self, gpu: Ids = None) -> Listing[GpuInstancePlacements]:
        """The possible placements of each GPU instance profile.

        >>> smimig.list_gi_placements(0)[2]
        GpuInstancePlacements(gpu=0, profile_id=5, placements=(Placement(start=0, size=2), ...))

        Command line equivalent: ``nvidia-smi mig [-i N] -lgipp``
        """
        return self.read(commands.GI_PLACEMENTS, gpu)

    def list_gis(self, gpu: Ids = None) -> Listing[GpuInstance]:
        """The GPU instances.

        >>> smimig.list_gis(0)
        [GpuInstance(gpu=0, name='MIG 2g.12gb', profile_id=5, id=1, placement=Placement(start=0, size=2)), ...]

        Command line equivalent: ``nvidia-smi mig [-i N] -lgi``
        """
        return self.read(commands.GIS, gpu)

    def list_ci_profiles(self, gpu: Ids = None, gi: Ids = None) -> Listing[ComputeInstanceProfile]:
        """The compute instance profiles available in each GPU instance.

        >>> smimig.list_ci_profiles(0, gi=1)[1]
        ComputeInstanceProfile(gpu=0, gi=1, name='MIG 2g.12gb', id=1, is_default=True, ...)

        Command line equivalent: ``nvidia-smi mig [-i N] [-gi G] -lcip``
        """
        return self.read(commands.CI_PROFILES, gpu, gi)

    def list_ci_placements(self, gpu: Ids = None, gi: Ids = None) -> Listing[ComputeInstancePlacements]:
        """The possible placements of each compute instance profile inside each GPU instance.

        Command line equivalent: ``nvidia-smi mig [-i N] [-gi G] -lcipp``
        """
        return self.read(commands.CI_PLACEMENTS, gpu, gi)

    def list_cis(self, gpu: Ids = None, gi: Ids = None) -> Listing[ComputeInstance]:
        """The compute instances.

        >>> smimig.list_cis(0)
        [ComputeInstance(gpu=0, gi=1, name='MIG 1c.2g.12gb', profile_id=0, id=0, ...), ...]

        Command line equivalent: ``nvidia-smi mig [-i N] [-gi G] -lci``
        """
        return self.read(commands.CIS, gpu, gi)

    def list_mig_devices(self, gpu: Ids = None) -> Listing[MigDeviceUsage]:
        """The MIG devices with their memory, BAR1 and engine figures (the "MIG devices:" table).

        >>> smimig.list_mig_devices(0)[0]
        MigDeviceUsage(gpu=0, gi=1, ci=0, index=0, memory_used_mib=25, memory_total_mib=11968, ...)

        Command line equivalent: ``nvidia-smi [-i N]``
        """
        return self.read(commands.MIG_DEVICES, gpu)

    def pci_device_ids(self, gpu: Ids = None) -> dict[int, str]:
        """Each GPU's PCI device id (``0x20B010DE``), what mig-parted's ``device-filter`` selects by.

        Command line equivalent: ``nvidia-smi --query-gpu=index,pci.device_id --format=csv,noheader``
        """
        return {row.gpu: row.device_id for row in self.read(commands.PCI_DEVICE_IDS, gpu)}

    def pci_ids(self, gpu: Ids = None) -> Listing[PciDeviceId]:
        """Each GPU's PCI device id and subsystem id, what mig-parted's ``device-filter`` selects by
        (``0x20B010DE``, or ``0x20B010DE:0x134F10DE`` for one board of it).

        >>> smimig.Smi(runner=smimig.sim.SimulatedRunner("H100-80GB")).pci_ids()
        [PciDeviceId(gpu=0, device_id='0x233010DE', subsystem_id='0x16C110DE')]

        Command line equivalent: ``nvidia-smi --query-gpu=index,pci.device_id,pci.sub_device_id --format=csv,noheader``
        """
        return self.read(commands.PCI_IDS, gpu)

    def list_processes(self, gpu: Ids = None) -> Listing[GpuProcess]:
        """The processes running on the GPUs, with the GPU and compute instance each runs in.

        Command line equivalent: ``nvidia-smi [-i N]`` (its "Processes:" table)
        """
        return self.read(commands.PROCESSES, gpu)

    # -- views -----------------------------------------------------------------------------------

    def devices(self, gpu: Ids = None) -> Listing[MigDeviceInfo]:
        """The MIG devices, each with its GPU, GI and CI ids, profile name and UUID.

        ``-L`` gives each device's UUID by index; the "MIG devices:" table of plain nvidia-smi ties each
        index to its GI and CI. An index shifts when a device before it goes, so the table is read before and
        after ``-L`` and the two must agree (:func:`smimig.leasing.consistent_devices`): a device released
        between the reads cannot hand its neighbour's UUID to another.

        >>> smimig.devices(0)[0]
        MigDeviceInfo(gpu=0, gi=1, ci=0, index=0, uuid='MIG-89b757f7-...', name='MIG 1c.2g.12gb')

        Raises:
            LeaseError: the devices kept changing while they were read (five rounds).

        Command line equivalent: ``nvidia-smi [-i N]``, ``nvidia-smi -L``, ``nvidia-smi [-i N]``
        """
        from smimig.leasing import consistent_devices  # noqa: PLC0415  # loaded on first use

        return consistent_devices(self, gpu)

    def status(self, gpu: Ids = None) -> NodeStatus:
        """Everything at a glance: each GPU's mode, GPU instances, compute instances, device UUIDs and
        the room left per profile, each GPU in MIG mode drawn as a map of its slices (leased and busy
        instances marked). Prints as a tree; shows as SVG maps and tables in Jupyter.

        The plain ``nvidia-smi`` table, the slowest read, is waited for only when a GPU in MIG mode has compute
        instances (only then does it change the answer): a node with MIG off answers as soon as the other reads
        are in.

        Command line equivalent: ``nvidia-smi -L``, ``--query-gpu=…mig.mode…``, ``nvidia-smi mig -lgi``,
        ``-lci``, ``-lgip`` and ``-lgipp``, and ``nvidia-smi``, read side by side
        """
        from smimig.node_status import build_status, read_leases, read_plain_table  # noqa: PLC0415  # only the views need it

        wanted = validate_ids(gpu, "gpu")
        reads = (
            lambda: self.list_gpus(wanted),
            lambda: self.mig_mode(wanted),
            lambda: self.list_gis(wanted),
            lambda: self.list_cis(wanted),
            lambda: (self.list_gi_profiles(wanted), self.list_gi_placements(wanted)),  # one task: five at once
        )
        # The plain nvidia-smi table ties MIG devices to their GI and CI, and lists the processes (busy marks on
        # the maps): with no compute instance on a GPU in MIG mode there is neither, and the status is the same
        # without it. It is the slowest read (~110 ms on an H100, driver 580), so it starts with the others
        # rather than after them, and is waited for only when it is needed; otherwise its answer is left
        # unread, its call left to end on its own. One read at a time (max_workers=1), it is not made at all then.
        table = None if self.max_workers == 1 else _Reads((lambda: read_plain_table(self, wanted),), 1, daemon=True)
        gpus: Listing[Gpu]
        modes: Listing[MigMode]
        gis: Listing[GpuInstance]
        cis: Listing[ComputeInstance]
        profiles: Listing[GpuInstanceProfile]
        placements: Listing[GpuInstancePlacements]
        workers = self.max_workers if table is None else self.max_workers - 1
        gpus, modes, gis, cis, (profiles, placements) = _read_all(reads, workers)
        mig = {mode.gpu for mode in modes if mode.current}
        gis_in_mig = [gi for gi in gis if gi.gpu in mig]
        cis_in_mig = [ci for ci in cis if ci.gpu in mig]
        usage: Sequence[MigDeviceUsage] = ()
        processes: Sequence[GpuProcess] = ()
        if cis_in_mig:
            usage, processes = read_plain_table(self, wanted) if table is None else table.results()[0]
        return build_status(
            gpus=gpus,
            modes=modes,
            gis=gis_in_mig,
            cis=cis_in_mig,
            profiles=[profile for profile in profiles if profile.gpu in mig],
            usage=usage,
            placements=[entry for entry in placements if entry.gpu in mig],
            processes=processes,
            # Leases mark GPU instances on the maps: with none on a GPU in MIG mode, the ledger has nothing to add.
            leases=read_leases(self) if gis_in_mig else [],
        )

    # -- changes ---------------------------------------------------------------------------------

    def enable_mig(self, gpu: int | Sequence[int]) -> Listing[MigModeChange]:
        """Turn MIG mode on, one GPU at a time; return what happened to each.

        A change that waits for a GPU reset, or for processes to leave the GPU, comes back with
        ``pending=True`` and nvidia-smi's reason and advice; it does not raise.

        >>> smimig.enable_mig(0)
        [MigModeChange(gpu=0, bus_id='00000000:17:00.0', enabled=True, pending=False, reason=None, ...)]

        Raises:
            PermissionDenied: not root ("Insufficient Permissions").
            MigOperationError: "Not Supported" or any other failure; ``.completed`` holds the GPUs changed
                before it.

        Command line equivalent: ``nvidia-smi -i 0 -mig 1``
        """
        return self._set_mig_mode(gpu, enabled=True)

    def disable_mig(self, gpu: int | Sequence[int]) -> Listing[MigModeChange]:
        """Turn MIG mode off, one GPU at a time; see :meth:`enable_mig`.

        Command line equivalent: ``nvidia-smi -i 0 -mig 0``
        """
        return self._set_mig_mode(gpu, enabled=False)

    def _set_mig_mode(self, gpu: int | Sequence[int], *, enabled: bool) -> Listing[MigModeChange]:
        gpus = validate_ids(gpu, "gpu")
        if gpus is None:
            raise ValueError("gpu must name the GPUs whose MIG mode changes; None is not allowed here")
        changes: Listing[MigModeChange] = Listing()
        warnings: list[str] = []
        for index in gpus:
            args = ["-i", str(index), "-mig", "1" if enabled else "0"]
            output = self._mutate(args, parsers.parse_set_mig_mode, done_before=changes)
            if len(output) != 1 or output[0].enabled != enabled:
                # One GPU asked, one answer for that mode: anything else is not a result to trust.
                raise MigOperationError(
                    [*args],
                    0,
                    "\n".join(str(change) for change in output),
                    "",
                    completed=changes,
                    reason=f"expected one 'MIG mode {'on' if enabled else 'off'}' result for GPU {index}",
                )
            changes.append(attrs.evolve(output[0], gpu=index))
            warnings.extend(output.warnings)
        return Listing(changes, warnings)

    def create_gi(self, gpu: int, profiles: Sequence[GiProfileSpec], ci: bool = False) -> Listing[CreatedGpuInstance]:
        """Create GPU instances (and, with ``ci=True``, a default compute instance in each).

        ``profiles`` items are ids (``5``, ``"5"``), short names (``"2g.12gb"``), full names
        (``"MIG 2g.12gb"``), each optionally with a placement start (``"9:0"``, ``("9", 0)``,
        ``("3g.40gb", Placement(4, 4))``).

        >>> smimig.create_gi(0, ["5", "5"], ci=True)
        [CreatedGpuInstance(gpu=0, id=1, profile_name='MIG 2g.12gb', profile_id=5,
            compute_instances=(CreatedComputeInstance(gpu=0, gi=1, id=0, ...),)), ...]

        Raises:
            ValueError: a bad argument; no process is started.
            MigOperationError: some or all could not be created; ``.completed`` holds those that were.
            PermissionDenied: not root.

        Command line equivalent: ``nvidia-smi mig -i 0 -cgi 5,5 -C``
        """
        from smimig.arguments import gi_profile_list  # noqa: PLC0415  # loaded by the changes, not at start

        (index,) = _one_gpu(gpu)
        args = ["mig", "-i", str(index), "-cgi", gi_profile_list(profiles)]
        if not isinstance(ci, bool):
            raise ValueError(f"ci must be True or False; got {ci!r}")
        if ci:
            args.append("-C")
        try:
            return self._mutate(args, parsers.parse_create_gi)
        except MigOperationError as error:
            self._advise(error, index, gpu_instances=True)
            raise

    def create_ci(
        self, gpu: int, gi: int, profiles: Sequence[CiProfileSpec] | None = None
    ) -> Listing[CreatedComputeInstance]:
        """Create compute instances in GPU instance ``gi`` (None: one of the default profile).

        >>> smimig.create_ci(0, 1, ["0", "0"])
        [CreatedComputeInstance(gpu=0, gi=1, id=0, profile_name='MIG 1c.2g.12gb', profile_id=0), ...]

        Raises:
            ValueError, MigOperationError, PermissionDenied: as :meth:`create_gi`.

        Command line equivalent: ``nvidia-smi mig -i 0 -gi 1 -cci 0,0``
        """
        from smimig.arguments import ci_profile_list  # noqa: PLC0415  # loaded by the changes, not at start

        (index,) = _one_gpu(gpu)
        (instance,) = _one_gpu(gi, "gi")
        args = ["mig", "-i", str(index), "-gi", str(instance), "-cci"]
        if profiles is not None:
            args.append(ci_profile_list(profiles))
        try:
            return self._mutate(args, parsers.parse_create_ci)
        except MigOperationError as error:
            self._advise(error, index, gpu_instances=False)
            raise

    def destroy_ci(self, gpu: Ids = None, gi: Ids = None, ci: Ids = None) -> Listing[DestroyedComputeInstance]:
        """Destroy compute instances: all of them, or those the selectors name.

        >>> smimig.destroy_ci(0, gi=1)
        [DestroyedComputeInstance(gpu=0, gi=1, id=0), DestroyedComputeInstance(gpu=0, gi=1, id=1)]

        Raises:
            MigOperationError: some could not be destroyed (e.g. "In use by another client"), or there
                was nothing to destroy ("Not Found"); ``.completed`` holds those that were.

        Command line equivalent: ``nvidia-smi mig -i 0 -gi 1 -dci``
        """
        args = [
            "mig",
            *_selector("-i", validate_ids(gpu, "gpu")),
            *_selector("-gi", validate_ids(gi, "gi")),
            *_selector("-ci", validate_ids(ci, "ci")),
            "-dci",
        ]
        return self._mutate(args, parsers.parse_destroy_ci)

    def destroy_gi(self, gpu: Ids = None, gi: Ids = None) -> Listing[DestroyedGpuInstance]:
        """Destroy GPU instances: all of them, or those the selectors name. Their CIs must go first.

        >>> smimig.destroy_gi(0)
        [DestroyedGpuInstance(gpu=0, id=1), DestroyedGpuInstance(gpu=0, id=2)]

        Raises:
            MigOperationError: as :meth:`destroy_ci` (a GI with compute instances is "In use by another
                client").

        Command line equivalent: ``nvidia-smi mig -i 0 -dgi``
        """
        args = [
            "mig",
            *_selector("-i", validate_ids(gpu, "gpu")),
            *_selector("-gi", validate_ids(gi, "gi")),
            "-dgi",
        ]
        return self._mutate(args, parsers.parse_destroy_gi)

    # -- layouts, leases, jobs, the doctor: the rest of the API, on this client -------------------------

    def load_layout(self, path: str | os.PathLike[str], *, config: str | None = None) -> Layout:
        """A layout from a JSON/YAML file, or config ``config`` of a mig-parted file (which asks this node
        for its GPUs' PCI device ids, as mig-parted's ``device-filter`` selects by them)."""
        from smimig.planner import load_layout  # noqa: PLC0415  # layouts load on first use

        return load_layout(os.fspath(path), config=config, smi=self)

    def plan(self, layout: Layout, *, force: bool = False) -> Plan:
        """The steps that would bring this node to ``layout``; changes nothing. Instances live leases hold are
        left alone while the layout fits around them (all are planned away with ``force``, as
        ``apply(force=True)`` plans); see :func:`smimig.planner.plan`.

        Raises:
            LayoutError: the layout cannot be realised here; it says why and suggests layouts that fit.
        """
        from smimig.planner import plan  # noqa: PLC0415  # the planner loads on first use

        return plan(layout, smi=self, force=force)

    def apply(
        self, layout: Layout, *, dry_run: bool = False, force: bool = False, rollback: bool = True
    ) -> ApplyResult:
        """Bring this node to ``layout``; applying it again changes nothing. See :func:`smimig.planner.apply`.

        Raises:
            LayoutError: the layout cannot be realised (nothing ran).
            InstanceBusy: it would destroy instances processes run on (nothing ran; ``force=True`` to do it).
            ApplyError: a step failed part-way: what ran, what the rollback restored, the state now.
        """
        from smimig.planner import apply  # noqa: PLC0415  # the planner loads on first use

        return apply(layout, dry_run=dry_run, force=force, rollback=rollback, smi=self)

    def export(self) -> Layout:
        """This node's MIG state as a Layout with explicit placements: ``apply(export())`` changes nothing."""
        from smimig.planner import export  # noqa: PLC0415  # the planner loads on first use

        return export(smi=self)

    def lease(
        self,
        profile: GiProfileSpec,
        gpu: int | None = None,
        *,
        ci_profile: CiProfileSpec | None = None,
        lock_path: str | os.PathLike[str] | None = None,
        timeout: float | None = None,
        attempts: int = 8,
    ) -> AbstractContextManager[Lease]:
        """A fresh MIG device of ``profile`` for a ``with`` block, destroyed when the block ends; see
        :mod:`smimig.leasing`."""
        from smimig.leasing import lease  # noqa: PLC0415  # leases load the lock only when used

        return lease(
            profile, gpu, ci_profile=ci_profile, smi=self, lock_path=lock_path, timeout=timeout, attempts=attempts
        )

    def run_on_each(self, command: Sequence[str], gpu: Ids = None, *, wait: bool = True) -> list[DeviceRun]:
        """Start ``command`` once per MIG device, each with ``CUDA_VISIBLE_DEVICES`` set to that device;
        see :func:`smimig.jobs.run_on_each`."""
        from smimig.jobs import run_on_each  # noqa: PLC0415  # jobs load on first use

        return run_on_each(command, gpu, wait=wait, smi=self)

    def doctor(self, *, save_dir: str | os.PathLike[str] | None = None) -> DoctorReport:
        """Check this node and say, one finding a line, what needs attention; see :mod:`smimig.diagnostics`."""
        from smimig.diagnostics import doctor  # noqa: PLC0415  # the doctor loads on first use

        return doctor(self, save_dir=save_dir)

    def _advise(self, error: MigOperationError[Any], gpu: int, *, gpu_instances: bool) -> None:
        """Add to ``error`` what to do, where nvidia-smi's own words do not say it."""
        words = f"{error.stdout}\n{error.stderr}"
        advice = ""
        if parsers.NO_MIG_ENABLED_DEVICES in words:
            advice = f"GPU {gpu} is not in MIG mode: turn it on first (smimig mode on -i {gpu})"
        elif gpu_instances and "Invalid Argument" in words:
            try:
                profiles = self.list_gi_profiles(gpu)
                placements = self.list_gi_placements(gpu)
            except Exception:  # the advice is a courtesy: the failure being explained must stand
                return
            starts = {item.profile_id: ",".join(str(p.start) for p in item.placements) for item in placements}
            offered = ", ".join(
                f"{profile.short_name} (id {profile.id}, {profile.free}/{profile.total} free, starts "
                f"{starts.get(profile.id, '?')})"
                for profile in profiles
            )
            advice = f"GPU {gpu} offers: {offered}" if offered else ""
        if advice:
            error.reason = f"{error.reason}; {advice}" if error.reason else advice

    def _mutate(
        self,
        args: list[str],
        parser: Callable[[str], OperationOutput[T]],
        done_before: Sequence[T] = (),
    ) -> Listing[T]:
        """Run a mutating command; raise with everything done so far if any part of it failed."""
        result = self.runner.run(args)
        text = result.stdout + ("\n" + result.stderr if result.stderr.strip() else "")
        try:
            output = parser(text)
        except ParseError as unknown:
            if result.returncode == 0 and not done_before:
                unknown.result = result
                raise
            # Words smimig does not know, after a failure or after earlier GPUs changed: an nvidia-smi
            # failure with all its output, and what was done before it.
            raise MigOperationError(
                result.args,
                result.returncode,
                result.stdout,
                result.stderr,
                completed=done_before,
                reason=f"output not recognised: {unknown.reason}",
            ) from unknown
        if result.returncode == 0 and not output.failures:
            return Listing(output.completed, warnings=(*output.warnings, *output.unrecognised))
        denied = any(failure.reason == "Insufficient Permissions" for failure in output.failures)
        error = PermissionDenied if denied else MigOperationError
        reason = f"lines not recognised: {' | '.join(output.unrecognised)}" if output.unrecognised else ""
        raise error(
            result.args,
            result.returncode,
            result.stdout,
            result.stderr,
            completed=(*done_before, *output.completed),
            failures=output.failures,
            reason=reason,
        )

    # -- the node lock and the lease ledger (see smimig.locking, smimig.ledger, smimig.leasing) -------------

    def node_lock(
        self,
        timeout: float | None = None,
        *,
        lock_path: str | os.PathLike[str] | None = None,
        on_wait: OnWait | None = None,
    ) -> AbstractContextManager[Path]:
        """Hold the node lock, the one lock every change smimig makes holds, for a ``with`` block;
        re-entrant within a thread. See :func:`smimig.locking.node_lock`.

        Raises:
            NodeLockTimeout: still held by someone else after ``timeout`` seconds (None: 120); it names them.
        """
        from smimig.locking import node_lock  # noqa: PLC0415  # the lock loads on first use

        return node_lock(timeout, path=lock_path, smi=self, on_wait=on_wait)

    def leases(self, *, lock_path: str | os.PathLike[str] | None = None) -> Listing[LeaseRecord]:
        """Every lease in the ledger, with whether its holder still runs; see :func:`smimig.leasing.leases`.

        Command line equivalent: ``smimig leases``
        """
        from smimig.leasing import leases  # noqa: PLC0415  # the ledger loads on first use

        return leases(self, lock_path=lock_path)

    def reclaim(
        self, *, lock_path: str | os.PathLike[str] | None = None, timeout: float | None = None
    ) -> ReclaimReport:
        """Destroy the instances of orphaned leases (their holders no longer run), identity checked first;
        see :func:`smimig.leasing.reclaim`.

        Command line equivalent: ``smimig reclaim``
        """
        from smimig.leasing import reclaim  # noqa: PLC0415  # the ledger loads on first use

        return reclaim(self, lock_path=lock_path, timeout=timeout)


def _read_all(reads: Sequence[Callable[[], Any]], workers: int) -> tuple[Any, ...]:
    """Each read's result, in order: one after another in this thread with one worker, else at once."""
    if workers == 1:
        return tuple(read() for read in reads)
    return _Reads(reads, workers).results()


class _Reads:
    """Reads running at once on up to ``workers`` threads of their own, started when this is made.

    Plain threads rather than concurrent.futures: its import (with logging) cost every ``smimig status`` 3 ms.
    Daemon threads (``daemon=True``) do not hold up the interpreter's exit, for reads that may go unread.
    """

    def __init__(self, reads: Sequence[Callable[[], Any]], workers: int, *, daemon: bool = False) -> None:
        self._reads = reads
        self._answers: list[tuple[bool, Any]] = [(False, None)] * len(reads)
        self._next = iter(range(len(reads)))
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._work, daemon=daemon, name=f"smimig-read-{number}")
            for number in range(min(workers, len(reads)))
        ]
        for thread in self._threads:
            thread.start()

    def _work(self) -> None:
        while True:
            with self._lock:
                index = next(self._next, None)
            if index is None:
                return
            try:
                self._answers[index] = (True, self._reads[index]())
            except BaseException as error:  # handed to the caller, who raises it
                self._answers[index] = (False, error)

    def results(self) -> tuple[Any, ...]:
        """Every read's result in the order given, once all have finished; the first error (in that order)
        is raised instead."""
        for thread in self._threads:
            thread.join()
        for done, answer in self._answers:
            if not done:
                raise answer
        return tuple(answer for _, answer in self._answers)


def _one_gpu(value: object, name: str = "gpu") -> tuple[int]:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be one non-negative int; got {value!r}")
    return (value,)


_default: Smi | None = None
_default_lock = threading.Lock()


def default_client() -> Smi:
    """The client behind smimig's module-level functions: the one :func:`use` set, else ``Smi()`` (this
    machine's nvidia-smi), made on first use (never at import)."""
    global _default  # noqa: PLW0603  # one lazily made client, shared on purpose
    with _default_lock:
        if _default is None:
            _default = Smi()
        return _default


def use(smi: Smi | None) -> Smi | None:
    """Make ``smi`` the client behind smimig's module-level functions (None: back to this machine's
    nvidia-smi, made on next use); return the one it replaces.

    >>> from smimig.sim import SimulatedRunner
    >>> previous = smimig.use(smimig.Smi(runner=SimulatedRunner("A30", gpus=4)))
    >>> smimig.list_gpus()[0].name
    'NVIDIA A30'
    >>> _ = smimig.use(previous)
    """
    global _default  # the same shared client default_client() hands out
    if smi is not None and not isinstance(smi, Smi):
        raise ValueError(f"use() takes a smimig.Smi (or None); got {smi!r}")
    with _default_lock:
        previous, _default = _default, smi
    return previous
