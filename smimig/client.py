"""``Smi``: builds nvidia-smi's argument lists, runs them through a runner, hands the text to a parser.

Data flows one way: call -> argv -> :class:`~smimig.runner.Runner` -> text -> parser -> models.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Callable, TypeVar, Union

from smimig import parsers
from smimig.errors import NvidiaSmiError
from smimig.models import (
    ComputeInstance,
    ComputeInstancePlacements,
    ComputeInstanceProfile,
    Gpu,
    GpuInstance,
    GpuInstancePlacements,
    GpuInstanceProfile,
    MigDeviceUsage,
    MigMode,
)
from smimig.runner import DEFAULT_TIMEOUT, Runner, RunResult, SubprocessRunner

__all__ = ["Ids", "Smi", "default_client", "validate_ids"]

Ids = Union[int, Sequence[int], None]
"""A selector: one id, several ids, or None for all."""

T = TypeVar("T")

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
        # ValueError, not TypeError: every bad argument raises the one error the API promises.
        raise ValueError(  # noqa: TRY004
            f"{name} must be an int, a sequence of ints, or None; got {value!r}"
        )
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
    >>> smi = Smi(runner=my_runner)        # anything with ``run(args) -> RunResult``

    Every method mirrors one nvidia-smi command and returns models; the module-level functions of
    :mod:`smimig` call the same methods on a default client.
    """

    def __init__(
        self,
        runner: Runner | None = None,
        *,
        sudo: bool = False,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        if runner is not None and sudo:
            raise ValueError("sudo=True applies to the default runner; configure your runner instead")
        self.runner: Runner = runner if runner is not None else SubprocessRunner(timeout=timeout, sudo=sudo)

    def __repr__(self) -> str:
        return f"Smi(runner={self.runner!r})"

    # -- running ---------------------------------------------------------------------------------

    def run(self, args: Sequence[str]) -> RunResult:
        """Run nvidia-smi with ``args`` and return its result, raising for any failure.

        Raises:
            NvidiaSmiError: non-zero exit code, or a known error message with exit code 0.
        """
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

    def _listing(self, args: list[str], parser: Callable[[str], list[T]]) -> list[T]:
        return parser(self.run(args).stdout)

    # -- listings --------------------------------------------------------------------------------

    def list_gpus(self, gpu: Ids = None) -> list[Gpu]:
        """The GPUs with the MIG devices on each, from ``nvidia-smi -L``.

        ``-L`` does not take ``-i`` (driver 580 refuses it), so a selection is made here, after parsing.

        >>> smimig.list_gpus()
        [Gpu(index=0, name='NVIDIA A30', uuid='GPU-d843…', mig_devices=(MigDevice(…), …)), …]

        Command line equivalent: ``nvidia-smi -L``
        """
        wanted = validate_ids(gpu, "gpu")
        gpus = self._listing(["-L"], parsers.parse_gpu_list)
        return gpus if wanted is None else [item for item in gpus if item.index in wanted]

    def mig_mode(self, gpu: Ids = None) -> list[MigMode]:
        """Each GPU's MIG mode, current and pending.

        >>> smimig.mig_mode(0)
        [MigMode(gpu=0, bus_id='00000000:17:00.0', current=True, pending=True, supported=True)]

        Command line equivalent: ``nvidia-smi [-i N] --query-gpu=index,pci.bus_id,mig.mode.current,
        mig.mode.pending --format=csv,noheader``
        """
        args = [
            *_selector("-i", validate_ids(gpu, "gpu")),
            "--query-gpu=" + ",".join(parsers.MIG_MODE_FIELDS),
            "--format=csv,noheader",
        ]
        return self._listing(args, parsers.parse_mig_mode)

    def list_gi_profiles(self, gpu: Ids = None) -> list[GpuInstanceProfile]:
        """The GPU instance profiles of each GPU, with free/total instance counts.

        >>> smimig.list_gi_profiles(0)[2]
        GpuInstanceProfile(gpu=0, name='MIG 2g.12gb', id=5, free=2, total=2, memory_gib=11.69, …)

        Command line equivalent: ``nvidia-smi mig [-i N] -lgip``
        """
        return self._mig(["-lgip"], gpu, None, parsers.parse_gi_profiles)

    def list_gi_placements(self, gpu: Ids = None) -> list[GpuInstancePlacements]:
        """The possible placements of each GPU instance profile.

        >>> smimig.list_gi_placements(0)[2]
        GpuInstancePlacements(gpu=0, profile_id=5, placements=(Placement(start=0, size=2), …))

        Command line equivalent: ``nvidia-smi mig [-i N] -lgipp``
        """
        return self._mig(["-lgipp"], gpu, None, parsers.parse_gi_placements)

    def list_gis(self, gpu: Ids = None) -> list[GpuInstance]:
        """The GPU instances.

        >>> smimig.list_gis(0)
        [GpuInstance(gpu=0, name='MIG 2g.12gb', profile_id=5, id=1, placement=Placement(0, 2)), …]

        Command line equivalent: ``nvidia-smi mig [-i N] -lgi``
        """
        return self._mig(["-lgi"], gpu, None, parsers.parse_gis)

    def list_ci_profiles(self, gpu: Ids = None, gi: Ids = None) -> list[ComputeInstanceProfile]:
        """The compute instance profiles available in each GPU instance.

        >>> smimig.list_ci_profiles(0, gi=1)[1]
        ComputeInstanceProfile(gpu=0, gi=1, name='MIG 2g.12gb', id=1, is_default=True, …)

        Command line equivalent: ``nvidia-smi mig [-i N] [-gi G] -lcip``
        """
        return self._mig(["-lcip"], gpu, gi, parsers.parse_ci_profiles)

    def list_ci_placements(self, gpu: Ids = None, gi: Ids = None) -> list[ComputeInstancePlacements]:
        """The possible placements of each compute instance profile inside each GPU instance.

        Command line equivalent: ``nvidia-smi mig [-i N] [-gi G] -lcipp``
        """
        return self._mig(["-lcipp"], gpu, gi, parsers.parse_ci_placements)

    def list_cis(self, gpu: Ids = None, gi: Ids = None) -> list[ComputeInstance]:
        """The compute instances.

        >>> smimig.list_cis(0)
        [ComputeInstance(gpu=0, gi=1, name='MIG 1c.2g.12gb', profile_id=0, id=0, …), …]

        Command line equivalent: ``nvidia-smi mig [-i N] [-gi G] -lci``
        """
        return self._mig(["-lci"], gpu, gi, parsers.parse_cis)

    def list_mig_devices(self, gpu: Ids = None) -> list[MigDeviceUsage]:
        """The MIG devices with their memory, BAR1 and engine figures (the "MIG devices:" table).

        >>> smimig.list_mig_devices(0)[0]
        MigDeviceUsage(gpu=0, gi=1, ci=0, index=0, memory_used_mib=25, memory_total_mib=11968, …)

        Command line equivalent: ``nvidia-smi [-i N]``
        """
        args = _selector("-i", validate_ids(gpu, "gpu"))
        return self._listing(args, parsers.parse_mig_devices)

    def _mig(
        self,
        action: list[str],
        gpu: Ids,
        gi: Ids,
        parser: Callable[[str], list[T]],
    ) -> list[T]:
        args = [
            "mig",
            *_selector("-i", validate_ids(gpu, "gpu")),
            *_selector("-gi", validate_ids(gi, "gi")),
            *action,
        ]
        return self._listing(args, parser)


_default: Smi | None = None
_default_lock = threading.Lock()


def default_client() -> Smi:
    """The client behind smimig's module-level functions, made on first use (never at import)."""
    global _default  # noqa: PLW0603  # one lazily made client, shared on purpose
    with _default_lock:
        if _default is None:
            _default = Smi()
        return _default
