"""nvidia-smi's command line, answered from a simulated :class:`~smimig.sim.state.Node`.

``run(node, args)`` takes nvidia-smi's arguments and returns ``(exit code, stdout, stderr)`` as the real
binary would. Messages and exit codes seen in recordings are used as recorded (``No devices were found``,
exit 6; ``Option "-x" is not recognized.``, exit 2; ``No MIG-enabled devices found.``, exit 0; the pending
``-mig`` warning and, on a GPU in persistence mode off, the persistence-mode warning after a mode change, both
recorded on driver 515); the failure lines of create/destroy follow the synthetic fixtures
(``fixtures/synthetic``), exit codes per nvidia-smi(1).
"""

from __future__ import annotations

from collections.abc import Sequence

from smimig.sim import render
from smimig.sim.state import GiState, Node, SimFailure

__all__ = ["run"]

Answer = tuple[int, str, str]

_EXIT = {
    "Invalid Argument": 2,
    "Not Supported": 3,
    "Insufficient Permissions": 4,
    "Not Found": 6,
}
_OTHER_ERROR = 255
_NO_DEVICES: Answer = (6, "No devices were found\n", "")
_NO_MIG_ENABLED: Answer = (0, "No MIG-enabled devices found.\n", "")
_NO_GIS: Answer = (6, "No GPU instances found: Not Found\n", "")
_NO_CIS: Answer = (6, "No compute instances found: Not Found\n", "")

_MIG_ACTIONS = ("-lgip", "-lgipp", "-lgi", "-lcip", "-lcipp", "-lci", "-cgi", "-cci", "-dci", "-dgi")
_LONG = {
    "--id": "-i",
    "--gpu-instance-id": "-gi",
    "--compute-instance-id": "-ci",
    "--list-gpu-instance-profiles": "-lgip",
    "--list-gpu-instance-possible-placements": "-lgipp",
    "--list-gpu-instances": "-lgi",
    "--list-compute-instance-profiles": "-lcip",
    "--list-compute-instance-possible-placements": "-lcipp",
    "--list-compute-instances": "-lci",
    "--create-gpu-instance": "-cgi",
    "--create-compute-instance": "-cci",
    "--destroy-gpu-instance": "-dgi",
    "--destroy-compute-instance": "-dci",
    "--default-compute-instance": "-C",
}
_PERSISTENCE_WARNING = (
    "Warning: persistence mode is disabled on device {bus}. See the Known Issues section of the nvidia-smi(1) "
    "man page for more information. Run with [--help | -h] switch to get more information on how to enable "
    "persistence mode."
)
_QUERY_FIELDS = (
    "index",
    "name",
    "uuid",
    "pci.bus_id",
    "pci.device_id",
    "pci.sub_device_id",
    "mig.mode.current",
    "mig.mode.pending",
)


class _Usage(Exception):  # an answer, not an error of the simulator
    def __init__(self, answer: Answer) -> None:
        super().__init__(answer)
        self.answer = answer


def _unrecognised(option: str) -> _Usage:
    return _Usage((2, f'Option "{option}" is not recognized.\n', ""))


def _ids(text: str, option: str) -> list[int]:
    parts = text.split(",")
    if not all(part.isdigit() and part.isascii() for part in parts):
        raise _Usage((2, f'Invalid value "{text}" for option "{option}".\n', ""))
    return [int(part) for part in parts]


def run(node: Node, args: Sequence[str]) -> Answer:
    """Answer nvidia-smi's ``args`` from ``node``, changing it as the real command would."""
    try:
        if args and args[0] == "mig":
            return _mig(node, list(args[1:]))
        return _top(node, list(args))
    except _Usage as usage:
        return usage.answer


def _selected(node: Node, ids: list[int] | None) -> list[int]:
    if ids is None:
        return [state.index for state in node.gpus]
    if any(index >= len(node.gpus) for index in ids):
        raise _Usage(_NO_DEVICES)
    return ids


# -- nvidia-smi [-L | -i N -mig 0|1 | --query-gpu=… | --version] ---------------------------------------


def _top(node: Node, args: list[str]) -> Answer:
    gpus: list[int] | None = None
    action: str | None = None
    mig_value = ""
    query: list[str] | None = None
    csv_format: list[str] | None = None
    position = 0
    while position < len(args):
        option = args[position]
        if option in ("-i", "--id") and position + 1 < len(args):
            gpus = _ids(args[position + 1], "-i")
            position += 2
            continue
        if option in ("-mig", "--multi-instance-gpu") and position + 1 < len(args):
            action, mig_value = "mig", args[position + 1]
            position += 2
            continue
        if option in ("-L", "--list-gpus", "--version"):
            action = option
        elif option.startswith("--query-gpu="):
            query = option.split("=", 1)[1].split(",")
        elif option.startswith("--format="):
            csv_format = option.split("=", 1)[1].split(",")
        else:
            raise _unrecognised(option)
        position += 1
    if action in ("-L", "--list-gpus"):
        if gpus is not None:  # driver 580: "-L -i 9" (recorded)
            message = "ERROR: Option -i is not valid for this command. Please run 'nvidia-smi -h' for help.\n\n"
            return 2, message, ""
        return 0, render.render_gpu_list(node), ""
    if action == "--version":
        return 0, _version(node), ""
    selected = _selected(node, gpus)
    if action == "mig":
        return _set_mig(node, selected, mig_value)
    if query is not None:
        return _query(node, selected, query, csv_format or [])
    return 0, render.render_table(node, selected), ""


def _version(node: Node) -> str:
    driver, cuda = node.model.driver, node.model.cuda
    nvml = driver.rsplit(".", 1)[0]
    return (
        f"NVIDIA-SMI version  : {driver}\nNVML version        : {nvml}\n"
        f"DRIVER version      : {driver}\nCUDA Version        : {cuda}\n"
    )


def _set_mig(node: Node, gpus: list[int], value: str) -> Answer:
    if value not in ("0", "1", "DISABLED", "ENABLED"):
        return 2, f'Invalid value "{value}" for option "-mig".\n', ""
    enabled = value in ("1", "ENABLED")
    verb = "enable" if enabled else "disable"
    lines = []
    fault = node.fault_for("-mig")
    for gpu in gpus:
        bus = node.bus_id(gpu)
        try:
            if fault is not None:
                raise SimFailure(fault)
            in_effect = node.set_mig(gpu, enabled)
        except SimFailure as failure:
            lines += [f"Unable to {verb} MIG Mode for GPU {bus}: {failure.reason}"]
            lines += ["Terminating early due to previous errors."]
            return _EXIT.get(failure.reason, _OTHER_ERROR), "\n".join(lines) + "\n", ""
        if not in_effect:  # the recorded driver 515 form (realdata/a100-80gb-pcie-driver515)
            lines.append(f"Warning: MIG mode is in pending {verb} state for GPU {bus}:In use by another client")
            lines.append(
                f"{bus} is currently being used by one or more other processes (e.g. CUDA application or a "
                "monitoring application such as another instance of nvidia-smi). Please first kill all processes "
                "using the device and retry the command or reboot the system to make MIG mode effective."
            )
            continue
        lines.append(f"{'Enabled' if enabled else 'Disabled'} MIG Mode for GPU {bus}")
        if not node.model.persistence:  # recorded on the A100 80GB (driver 515) after -mig 0
            lines += ["", _PERSISTENCE_WARNING.format(bus=bus)]
    lines.append("All done.")
    return 0, "\n".join(lines) + "\n", ""


def _query(node: Node, gpus: list[int], fields: list[str], csv_format: list[str]) -> Answer:
    if "csv" not in csv_format:
        return 2, 'Option "--format" requires "csv".\n', ""
    unknown = [field for field in fields if field not in _QUERY_FIELDS]
    if unknown:
        return 2, f'Field "{unknown[0]}" is not a valid field to query.\n', ""
    rows = [", ".join(fields)] if "noheader" not in csv_format else []
    for gpu in gpus:
        state = node.gpus[gpu]
        values = {
            "index": str(gpu),
            "name": node.model.name,
            "uuid": node.gpu_uuid(gpu),
            "pci.bus_id": node.bus_id(gpu),
            "pci.device_id": node.model.pci_device_id,
            "pci.sub_device_id": node.model.pci_subsystem_id,
            "mig.mode.current": "Enabled" if state.mig_current else "Disabled",
            "mig.mode.pending": "Enabled" if state.mig_pending else "Disabled",
        }
        rows.append(", ".join(values[field] for field in fields))
    return 0, "\n".join(rows) + "\n", ""


# -- nvidia-smi mig … ---------------------------------------------------------------------------------


def _mig(node: Node, args: list[str]) -> Answer:
    selectors: dict[str, list[int]] = {}
    action: str | None = None
    items: list[str] | None = None
    default_ci = False
    position = 0
    while position < len(args):
        option = _LONG.get(args[position], args[position])
        following = args[position + 1] if position + 1 < len(args) else None
        if option in ("-i", "-gi", "-ci"):
            if following is None:
                raise _Usage((2, f'Option "{option}" requires a value.\n', ""))
            selectors[option] = _ids(following, option)
            position += 2
            continue
        if option == "-C":
            default_ci = True
        elif option in _MIG_ACTIONS:
            if action is not None:
                return 2, "ERROR: Only one of the mig options can be used at a time.\n", ""
            action = option
            takes_list = option in ("-cgi", "-cci")
            if takes_list and following is not None and not following.startswith("-"):
                items = following.split(",")
                position += 1
        else:
            raise _unrecognised(args[position])
        position += 1
    if action is None:
        return 2, "ERROR: A mig option is required. Please run 'nvidia-smi mig -h' for help.\n", ""
    gpus = _selected(node, selectors.get("-i"))
    gi_ids = selectors.get("-gi")
    mig_gpus = [gpu for gpu in gpus if node.gpus[gpu].mig_current]
    if action in ("-lgip", "-lgipp"):
        # Driver 580 lists the profiles of a GPU in MIG mode off too (recorded on the H100); the seed's
        # driver 545 shows only GPU 0, the one in MIG mode, on a node of four.
        listed = gpus if node.model.style == "580" else mig_gpus
        if not listed:
            return _NO_MIG_ENABLED
        if action == "-lgip":
            return 0, render.render_gi_profiles(node, listed), ""
        return 0, render.render_gi_placements(node, listed), ""
    if action == "-cgi":
        return _create_gis(node, gpus, items or [], default_ci)
    if not mig_gpus:
        return _NO_MIG_ENABLED
    gis = [(gpu, gi) for gpu in mig_gpus for gi in node.gpus[gpu].gis if gi_ids is None or gi.id in gi_ids]
    if action == "-lgi":
        return (0, render.render_gis(node, gis), "") if gis else _NO_GIS
    if action in ("-lcip", "-lcipp") and not gis:
        return _NO_GIS
    if action == "-lcip":
        return 0, render.render_ci_profiles(node, gis), ""
    if action == "-lcipp":
        return 0, render.render_ci_placements(node, gis), ""
    if action == "-lci":
        has_cis = any(ci.gi == gi.id for gpu, gi in gis for ci in node.gpus[gpu].cis)
        return (0, render.render_cis(node, gis), "") if has_cis else _NO_CIS
    if action == "-cci":
        return _create_cis(node, gis, items, gi_ids)
    if action == "-dci":
        return _destroy_cis(node, gis, selectors.get("-ci"))
    return _destroy_gis(node, mig_gpus, gi_ids)


def _fail(lines: list[str], line: str, summary: str, reason: str) -> Answer:
    lines += [f"{line}: {reason}", f"{summary}: {reason}"]
    return _EXIT.get(reason, _OTHER_ERROR), "\n".join(lines) + "\n", ""


def _done(lines: list[str]) -> Answer:
    return 0, "\n".join(lines) + "\n", ""


def _create_gis(node: Node, gpus: list[int], items: list[str], default_ci: bool) -> Answer:
    targets = [gpu for gpu in gpus if node.gpus[gpu].mig_current]
    if not targets:
        return _NO_MIG_ENABLED
    lines: list[str] = []
    fault = node.fault_for("-cgi")
    for gpu in targets:
        for item in items:
            where = f"Unable to create a GPU instance on GPU {gpu:>2} using profile {item}"
            if fault is not None:
                return _fail(lines, where, "Failed to create GPU instances", fault)
            ref, _, start_text = item.partition(":")
            profile = node.find_gi_profile(ref)
            if profile is None or (start_text and not start_text.isdigit()):
                return _fail(lines, where, "Failed to create GPU instances", "Invalid Argument")
            try:
                gi = node.create_gi(gpu, profile, int(start_text) if start_text else None)
            except SimFailure as failure:
                return _fail(lines, where, "Failed to create GPU instances", failure.reason)
            lines.append(
                f"Successfully created GPU instance ID {gi.id:>2} on GPU {gpu:>2} "
                f"using profile {profile.name} (ID {profile.id:>2})"
            )
            if default_ci:
                ci_profile = node.find_ci_profile(gi, None)
                assert ci_profile is not None  # every GI has a default CI profile
                ci = node.create_ci(gpu, gi, ci_profile)
                lines.append(_created_ci(gpu, gi, ci.id, ci_profile.name, ci_profile.id))
    return _done(lines)


def _created_ci(gpu: int, gi: GiState, ci_id: int, name: str, profile_id: int) -> str:
    return (
        f"Successfully created compute instance ID {ci_id:>2} on GPU {gpu:>2} GPU instance ID {gi.id:>2} "
        f"using profile {name} (ID {profile_id:>2})"
    )


def _create_cis(
    node: Node, gis: list[tuple[int, GiState]], items: list[str] | None, gi_ids: list[int] | None
) -> Answer:
    if not gis:
        gpu = 0
        missing = gi_ids[0] if gi_ids else 0
        line = f"Unable to create a compute instance on GPU {gpu:>2} GPU instance ID {missing:>2} using profile"
        return _fail([], f"{line} {(items or ['default'])[0]}", "Failed to create compute instances", "Not Found")
    lines: list[str] = []
    fault = node.fault_for("-cci")
    for gpu, gi in gis:
        for item in items if items is not None else [None]:
            where = (
                f"Unable to create a compute instance on GPU {gpu:>2} GPU instance ID {gi.id:>2} "
                f"using profile {item if item is not None else 'default'}"
            )
            if fault is not None:
                return _fail(lines, where, "Failed to create compute instances", fault)
            profile = node.find_ci_profile(gi, item)
            if profile is None:
                return _fail(lines, where, "Failed to create compute instances", "Invalid Argument")
            try:
                ci = node.create_ci(gpu, gi, profile)
            except SimFailure as failure:
                return _fail(lines, where, "Failed to create compute instances", failure.reason)
            lines.append(_created_ci(gpu, gi, ci.id, profile.name, profile.id))
    return _done(lines)


def _destroy_cis(node: Node, gis: list[tuple[int, GiState]], ci_ids: list[int] | None) -> Answer:
    targets = [
        (gpu, ci)
        for gpu, gi in gis
        for ci in list(node.gpus[gpu].cis)
        if ci.gi == gi.id and (ci_ids is None or ci.id in ci_ids)
    ]
    if not targets:
        return _NO_CIS
    lines: list[str] = []
    fault = node.fault_for("-dci")
    for gpu, ci in targets:
        try:
            if fault is not None:
                raise SimFailure(fault)
            node.destroy_ci(gpu, ci.gi, ci.id)
        except SimFailure as failure:
            where = f"Unable to destroy compute instance ID {ci.id:>2} from GPU {gpu:>2} GPU instance ID {ci.gi:>2}"
            return _fail(lines, where, "Failed to destroy compute instances", failure.reason)
        lines.append(
            f"Successfully destroyed compute instance ID {ci.id:>2} from GPU {gpu:>2} GPU instance ID {ci.gi:>2}"
        )
    return _done(lines)


def _destroy_gis(node: Node, gpus: list[int], gi_ids: list[int] | None) -> Answer:
    targets = [(gpu, gi) for gpu in gpus for gi in list(node.gpus[gpu].gis) if gi_ids is None or gi.id in gi_ids]
    if not targets:
        return _NO_GIS
    lines: list[str] = []
    fault = node.fault_for("-dgi")
    for gpu, gi in targets:
        try:
            if fault is not None:
                raise SimFailure(fault)
            node.destroy_gi(gpu, gi.id)
        except SimFailure as failure:
            where = f"Unable to destroy GPU instance ID {gi.id:>2} from GPU {gpu:>2}"
            return _fail(lines, where, "Failed to destroy GPU instances", failure.reason)
        lines.append(f"Successfully destroyed GPU instance ID {gi.id:>2} from GPU {gpu:>2}")
    return _done(lines)
