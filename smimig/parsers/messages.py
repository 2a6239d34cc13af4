"""Parsers for what the mutating commands print: ``-mig``, ``-cgi``, ``-cci``, ``-dci``, ``-dgi``.

Each reads the output line by line into an :class:`~smimig.models.OperationOutput`: what was done
(``completed``), what failed with nvidia-smi's reason (``failures``) and what it warned (``warnings``). A
line it does not recognise raises ``ParseError``: nothing is dropped. The parsers do not raise for failures;
the client turns them into ``MigOperationError`` with everything the output said.

Success forms (recorded: seed on driver 545, A100 on driver 515)::

    Successfully created GPU instance ID  1 on GPU  0 using profile MIG 2g.12gb (ID  5)
    Successfully created compute instance ID  0 on GPU  0 GPU instance ID  1 using profile MIG 2g.12gb (ID  1)
    Enabled MIG Mode for GPU 00000000:17:00.0
    Warning: MIG mode is in pending enable state for GPU 00000001:00:00.0:In use by another client
    All done.

Failure forms start with "Unable to …" or "Failed to …" and end with ": <reason>"; their ids (GPU, GPU
instance, compute instance, profile) are read where the line names them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Callable, TypeVar

import attrs

from smimig.errors import ParseError
from smimig.models import (
    CreatedComputeInstance,
    CreatedGpuInstance,
    DestroyedComputeInstance,
    DestroyedGpuInstance,
    MigModeChange,
    OperationFailure,
    OperationOutput,
)
from smimig.parsers._common import (
    NO_COMPUTE_INSTANCES,
    NO_GPU_INSTANCES,
    NO_MIG_ENABLED_DEVICES,
    Pattern,
    Regex,
    compile_pattern,
)

__all__ = [
    "parse_create_ci",
    "parse_create_gi",
    "parse_destroy_ci",
    "parse_destroy_gi",
    "parse_set_mig_mode",
]

T = TypeVar("T")

_CREATED_GI = compile_pattern(
    "Successfully created GPU instance ID {id:Int} on GPU {gpu:Int} using profile {profile_name:Name} "
    "(ID {profile_id:Int})"
)
_CREATED_CI = compile_pattern(
    "Successfully created compute instance ID {id:Int} on GPU {gpu:Int} GPU instance ID {gi:Int} "
    "using profile {profile_name:Name} (ID {profile_id:Int})"
)
_DESTROYED_CI = compile_pattern(
    "Successfully destroyed compute instance ID {id:Int} from GPU {gpu:Int} GPU instance ID {gi:Int}"
)
_DESTROYED_GI = compile_pattern("Successfully destroyed GPU instance ID {id:Int} from GPU {gpu:Int}")

_BUS_ID = r"(?P<bus_id>[0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-9A-Fa-f])"
_MODE_SET = Regex(rf"^(?P<mode>Enabled|Disabled) MIG Mode for GPU {_BUS_ID}$")
_MODE_PENDING = Regex(
    rf"^Warning: MIG mode is in pending (?P<mode>enable|disable) state for GPU {_BUS_ID}:\s*(?P<reason>.*)$"
)
_MODE_UNABLE = Regex(rf"^Unable to (?P<mode>enable|disable) MIG Mode for GPU {_BUS_ID}: (?P<reason>.+)$")
# Advice nvidia-smi prints after a pending change, naming the GPU by bus id.
_MODE_ADVICE = Regex(rf"^(?:{_BUS_ID} is currently being used|Reboot the system or try nvidia-smi).*$")
_ADVICE_BUS_ID = Regex(_BUS_ID)

_FAILURE = Regex(r"^(?:Unable to|Failed to) .*?: (?P<reason>[^:]+)$")
_FAILURE_IDS = {
    "gpu": Regex(r"\bGPU +([0-9]{1,12})(?![0-9])"),
    "gi": Regex(r"\bGPU instance ID +([0-9]{1,12})(?![0-9])"),
    "ci": Regex(r"\bcompute instance ID +([0-9]{1,12})(?![0-9])"),
}
_FAILURE_PROFILE = Regex(r"\busing profile (.+?)(?: \(ID +[0-9]{1,12}\))?:")
# Whole-line answers that mean there was nothing to act on, with the reason they amount to.
_NOTHING_THERE = {
    NO_GPU_INSTANCES: "Not Found",
    NO_COMPUTE_INSTANCES: "Not Found",
    NO_MIG_ENABLED_DEVICES: "MIG mode is disabled",
}
_DONE = "All done."
# Printed after "Unable to … MIG Mode …": "Not Supported" moves on, a permissions failure stops.
_ENDINGS = ("Treating as warning and moving on.", "Terminating early due to previous errors.")


def _lines(text: str) -> Iterator[tuple[int, str, str]]:
    """Each non-blank line: its number, its words joined by single spaces (to match), and as printed."""
    for number, raw in enumerate(text.splitlines(), start=1):
        line = " ".join(raw.split())
        if line:
            yield number, line, raw.strip()


def _failure(line: str, printed: str) -> OperationFailure | None:
    if line in _NOTHING_THERE:
        return OperationFailure(message=printed, reason=_NOTHING_THERE[line])
    match = _FAILURE.match(line)
    if match is None:
        return None
    ids: dict[str, int | None] = {}
    for key, pattern in _FAILURE_IDS.items():
        found = pattern.search(line)
        ids[key] = int(found.group(1)) if found else None
    profile = _FAILURE_PROFILE.search(line)
    return OperationFailure(
        message=printed,
        reason=match.group("reason").strip(),
        gpu=ids["gpu"],
        gi=ids["gi"],
        ci=ids["ci"],
        profile=profile.group(1) if profile else None,
    )


def _read(
    text: str,
    success: Callable[[str], T | None],
    what: str,
) -> OperationOutput[T]:
    completed: list[T] = []
    failures: list[OperationFailure] = []
    warnings: list[str] = []
    unrecognised: list[str] = []
    first_unknown = 0
    for number, line, printed in _lines(text):
        done = success(line)
        if done is not None:
            completed.append(done)
            continue
        failure = _failure(line, printed)
        if failure is not None:
            failures.append(failure)
        elif line.startswith("Warning:"):
            warnings.append(printed)
        else:
            unrecognised.append(printed)  # kept on the result: the caller decides, nothing is dropped
            first_unknown = first_unknown or number
    if not completed and not failures:
        raise ParseError(f"no result in {what} output", text, first_unknown)
    return OperationOutput(tuple(completed), tuple(failures), tuple(warnings), tuple(unrecognised))


def _matcher(pattern: Pattern, model: Callable[..., T]) -> Callable[[str], T | None]:
    def success(line: str) -> T | None:
        fields = pattern.match(line)
        return None if fields is None else model(**fields)

    return success


def parse_create_gi(text: str) -> OperationOutput[CreatedGpuInstance]:
    """Parse ``nvidia-smi mig -cgi … [-C]``: the GPU instances created, with the CIs ``-C`` made in each."""
    created_ci = _matcher(_CREATED_CI, CreatedComputeInstance)
    created_gi = _matcher(_CREATED_GI, CreatedGpuInstance)

    def success(line: str) -> CreatedGpuInstance | CreatedComputeInstance | None:
        return created_gi(line) or created_ci(line)

    output: OperationOutput[CreatedGpuInstance | CreatedComputeInstance] = _read(text, success, "create GPU instance")
    instances: list[CreatedGpuInstance] = []
    for item in output.completed:
        if isinstance(item, CreatedGpuInstance):
            instances.append(item)
            continue
        # -C prints each CI right after its GI: attach it to that GI.
        for position in range(len(instances) - 1, -1, -1):
            parent = instances[position]
            if (parent.gpu, parent.id) == (item.gpu, item.gi):
                instances[position] = attrs.evolve(parent, compute_instances=(*parent.compute_instances, item))
                break
        else:
            raise ParseError(
                f"compute instance {item.id} names GPU instance {item.gi}, which this output did not create",
                text,
            )
    return OperationOutput(tuple(instances), output.failures, output.warnings, output.unrecognised)


def parse_create_ci(text: str) -> OperationOutput[CreatedComputeInstance]:
    """Parse ``nvidia-smi mig -cci …``: the compute instances created."""
    return _read(text, _matcher(_CREATED_CI, CreatedComputeInstance), "create compute instance")


def parse_destroy_ci(text: str) -> OperationOutput[DestroyedComputeInstance]:
    """Parse ``nvidia-smi mig -dci``: the compute instances destroyed."""
    return _read(text, _matcher(_DESTROYED_CI, DestroyedComputeInstance), "destroy compute instance")


def parse_destroy_gi(text: str) -> OperationOutput[DestroyedGpuInstance]:
    """Parse ``nvidia-smi mig -dgi``: the GPU instances destroyed."""
    return _read(text, _matcher(_DESTROYED_GI, DestroyedGpuInstance), "destroy GPU instance")


def parse_set_mig_mode(text: str) -> OperationOutput[MigModeChange]:
    """Parse ``nvidia-smi -i N -mig 1|0``: one change per GPU, pending or in effect, with its warnings.

    A warning that names a GPU's bus id (persistence mode, "is currently being used", "Reboot the system
    …") is kept on that GPU's change; other warnings on the output.
    """
    changes: list[MigModeChange] = []
    failures: list[OperationFailure] = []
    warnings: list[str] = []
    done = False
    for number, line, printed in _lines(text):
        if line == _DONE:
            done = True
            continue
        if line in _ENDINGS:
            continue
        set_match = _MODE_SET.match(line)
        pending_match = _MODE_PENDING.match(line)
        unable_match = _MODE_UNABLE.match(line)
        if set_match:
            changes.append(MigModeChange(None, set_match["bus_id"], set_match["mode"] == "Enabled"))
        elif pending_match:
            changes.append(
                MigModeChange(
                    None,
                    pending_match["bus_id"],
                    pending_match["mode"] == "enable",
                    pending=True,
                    reason=pending_match["reason"].strip() or None,
                )
            )
        elif unable_match:
            failures.append(
                OperationFailure(message=printed, reason=unable_match["reason"].strip(), bus_id=unable_match["bus_id"])
            )
        elif _MODE_ADVICE.match(line) or line.startswith("Warning:"):
            bus = _ADVICE_BUS_ID.search(line)
            owners = [i for i, change in enumerate(changes) if bus and change.bus_id == bus["bus_id"]]
            if owners:
                change = changes[owners[-1]]
                changes[owners[-1]] = attrs.evolve(change, warnings=(*change.warnings, printed))
            else:
                warnings.append(printed)
        else:
            raise ParseError("unrecognised line in MIG mode output", text, number)
    if not changes and not failures:
        raise ParseError("no result in MIG mode output", text)
    if not done and not failures:
        raise ParseError("MIG mode output does not end with 'All done.'", text)
    return OperationOutput(tuple(changes), tuple(failures), tuple(warnings))
