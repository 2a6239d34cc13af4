"""Parsers for the device views: ``nvidia-smi -L``, the MIG mode query, and plain ``nvidia-smi``.

``nvidia-smi -L``::

    GPU 0: NVIDIA A30 (UUID: GPU-d8430827-89da-89df-1d70-bde0c9883859)
      MIG 2g.12gb     Device  0: (UUID: MIG-89b757f7-3c4c-5b1c-9476-a11b14aa9308)

becomes ``[Gpu(index=0, name='NVIDIA A30', uuid='GPU-d843…', mig_devices=(MigDevice(gpu=0, index=0,
name='MIG 2g.12gb', uuid='MIG-89b7…'),))]``.

``nvidia-smi --query-gpu=index,pci.bus_id,mig.mode.current,mig.mode.pending --format=csv,noheader``::

    0, 00000000:17:00.0, Enabled, Enabled

becomes ``[MigMode(gpu=0, bus_id='00000000:17:00.0', current=True, pending=True)]``. A first line of field
names (``--format=csv`` without ``noheader``) is read as the header and may name more columns.

``nvidia-smi --query-gpu=index,pci.device_id --format=csv,noheader``: ``0, 0x233010DE`` becomes
``[PciDeviceId(gpu=0, device_id='0x233010DE')]``; with ``pci.sub_device_id`` as a third field, ``0, 0x233010DE,
0x16C110DE`` becomes ``[PciDeviceId(gpu=0, device_id='0x233010DE', subsystem_id='0x16C110DE')]``.

Plain ``nvidia-smi``: its "MIG devices:" box, one two-line record per MIG device, becomes
``MigDeviceUsage`` rows. Its columns are found by their headings, as drivers 470 to 545 print them
("Memory-Usage", "BAR1-Usage") and as driver 580 and later do ("Shared Memory-Usage", "Shared
BAR1-Usage"). When compute instances share a GPU instance, nvidia-smi prints the memory once in a merged
cell; every row of that GPU instance carries those figures. A table with no "MIG devices:" box (MIG
off everywhere) and the box's "No MIG devices found" give ``[]``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from smimig.errors import ParseError
from smimig.models import Gpu, GpuProcess, MigDevice, MigDeviceUsage, MigMode, PciDeviceId
from smimig.parsers._common import NO_MIG_DEVICES, Regex, compile_pattern, match_line
from smimig.parsers.tables import Box, read_boxes

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "MIG_MODE_FIELDS",
    "PCI_DEVICE_ID_FIELDS",
    "PCI_ID_FIELDS",
    "parse_gpu_list",
    "parse_mig_devices",
    "parse_mig_mode",
    "parse_pci_device_ids",
    "parse_pci_ids",
    "parse_processes",
]

_PROCESSES_TITLE = "Processes:"
_PROCESSES_HEADER = "GPU GI CI PID Type Process name GPU Memory ID ID Usage".split()
_NO_PROCESSES = "No running processes found"
_PROCESS = Regex(
    r"^(?P<gpu>[0-9]{1,12}) (?P<gi>[0-9]{1,12}|N/A) (?P<ci>[0-9]{1,12}|N/A) (?P<pid>[0-9]{1,12}) "
    r"(?P<type>\S+) (?P<name>.+?) (?:(?P<memory>[0-9]{1,12})MiB|N/A)$"
)

_GPU_LINE = Regex(r"^GPU (?P<index>[0-9]{1,12}): (?P<name>.+?) \(UUID: (?P<uuid>GPU-[^)\s]+)\)$")
# Driver 470 prints "MIG-GPU-<uuid>/<gi>/<ci>", later drivers "MIG-<uuid>".
_MIG_LINE = Regex(r"^\s+(?P<name>MIG \S+)\s+Device\s+(?P<index>[0-9]{1,12}): \(UUID: (?P<uuid>MIG-[^)\s]+)\)$")

_NUMBER = Regex("[0-9]{1,12}")  # ASCII: str.isdigit() also takes "²", which int() refuses

MIG_MODE_FIELDS = ("index", "pci.bus_id", "mig.mode.current", "mig.mode.pending")
"""The fields smimig asks ``--query-gpu`` for, in order."""

_MODE_VALUES = {"Enabled": True, "Disabled": False}
_NOT_SUPPORTED = ("[N/A]", "N/A", "[Not Supported]")

_MIG_DEVICES_TITLE = "MIG devices:"
# Each column's heading words, top to bottom (driver 580 prefixes the memory ones with "Shared").
_MIG_DEVICES_IDS = ["GPU", "GI", "CI", "MIG", "ID", "ID", "Dev"]
_MIG_DEVICES_MEMORY = ["Memory-Usage", "BAR1-Usage"]
_MIG_DEVICES_SM = ["Vol", "SM", "Unc", "ECC"]
_SHARED_ENGINES = ("CE", "ENC", "DEC", "OFA", "JPG")
_IDS = compile_pattern("{gpu:Int} {gi:Int} {ci:Int} {index:Int}")
_MEMORY = compile_pattern("{used:Int}MiB / {total:Int}MiB")
_SM = compile_pattern("{sm:Int} {ecc}")


def parse_gpu_list(text: str) -> list[Gpu]:
    """Parse ``nvidia-smi -L`` into GPUs, each with the MIG devices listed under it."""
    gpus: list[Gpu] = []
    devices: list[MigDevice] = []

    def close() -> None:
        if gpus:
            gpus[-1] = Gpu(gpus[-1].index, gpus[-1].name, gpus[-1].uuid, tuple(devices))

    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip()
        if not line:
            continue
        gpu = _GPU_LINE.match(line)
        if gpu is not None:
            close()
            devices = []
            gpus.append(Gpu(int(gpu["index"]), gpu["name"], gpu["uuid"]))
            continue
        mig = _MIG_LINE.match(line)
        if mig is not None and gpus:
            devices.append(MigDevice(gpus[-1].index, int(mig["index"]), mig["name"], mig["uuid"]))
            continue
        raise ParseError("unrecognised line in the GPU list", text, number)
    close()
    if not gpus:
        raise ParseError("no GPU in the GPU list", text)
    return gpus


def _mode(value: str, text: str, number: int) -> bool | None:
    if value in _MODE_VALUES:
        return _MODE_VALUES[value]
    if value in _NOT_SUPPORTED:
        return None
    raise ParseError(f"unrecognised MIG mode {value!r}", text, number)


def parse_mig_mode(text: str, fields: Sequence[str] = MIG_MODE_FIELDS) -> list[MigMode]:
    """Parse the CSV of ``--query-gpu=index,pci.bus_id,mig.mode.current,mig.mode.pending``.

    ``fields`` names the queried columns when the CSV has no header line; a header line, when present,
    names them instead. ``index``, ``mig.mode.current`` and ``mig.mode.pending`` must be among them.
    """
    lines = [(number, line) for number, line in enumerate(text.splitlines(), 1) if line.strip()]
    if not lines:
        raise ParseError("empty MIG mode query output", text)
    names = list(fields)
    first_number, first = lines[0]
    header = [value.strip() for value in first.split(",")]
    if "index" in header and "mig.mode.current" in header:
        names = header
        lines = lines[1:]
    missing = {"index", "mig.mode.current", "mig.mode.pending"} - set(names)
    if missing:
        raise ParseError(f"MIG mode query lacks {sorted(missing)}", text, first_number)
    modes = []
    for number, line in lines:
        values = [value.strip() for value in line.split(",")]
        if len(values) != len(names) or not _NUMBER.fullmatch(values[names.index("index")]):
            raise ParseError(f"expected {len(names)} values: {', '.join(names)}", text, number)
        row = dict(zip(names, values))
        current = _mode(row["mig.mode.current"], text, number)
        pending = _mode(row["mig.mode.pending"], text, number)
        supported = current is not None and pending is not None
        modes.append(
            MigMode(
                gpu=int(row["index"]),
                bus_id=row.get("pci.bus_id"),
                current=bool(current),
                pending=bool(pending),
                supported=supported,
            )
        )
    return modes


PCI_DEVICE_ID_FIELDS = ("index", "pci.device_id")
"""The fields of the PCI device id query, in order."""
PCI_ID_FIELDS = ("index", "pci.device_id", "pci.sub_device_id")
"""The fields of the PCI ids query (device and subsystem id, what mig-parted's ``device-filter`` selects by)."""

_PCI_DEVICE_ID = Regex("0x[0-9A-Fa-f]{8}")


def parse_pci_device_ids(text: str) -> list[PciDeviceId]:
    """Parse the CSV of ``--query-gpu=index,pci.device_id --format=csv,noheader`` (``0, 0x233010DE``)."""
    return _parse_pci_rows(text, PCI_DEVICE_ID_FIELDS)


def parse_pci_ids(text: str) -> list[PciDeviceId]:
    """Parse the CSV of ``--query-gpu=index,pci.device_id,pci.sub_device_id --format=csv,noheader``
    (``0, 0x233010DE, 0x16C110DE``: device and subsystem id, each vendor id last, as mig-parted writes them)."""
    return _parse_pci_rows(text, PCI_ID_FIELDS)


def _parse_pci_rows(text: str, fields: tuple[str, ...]) -> list[PciDeviceId]:
    ids = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        cells = [part.strip() for part in line.split(",")]
        if (
            len(cells) != len(fields)
            or not _NUMBER.fullmatch(cells[0])
            or not all(_PCI_DEVICE_ID.fullmatch(cell) for cell in cells[1:])
        ):
            shape = ", ".join(["index", *(["0x…"] * (len(fields) - 1))])
            raise ParseError(f"expected '{shape}' in the PCI id query", text, number)
        ids.append(PciDeviceId(int(cells[0]), cells[1], cells[2] if len(cells) == 3 else None))
    if not ids:
        raise ParseError("empty PCI id query output", text)
    return ids


class _MigDevicesColumns(NamedTuple):  # not an attrs class: cheaper to make at start-up
    """Where the "MIG devices:" box keeps each figure: cell indices, and the engines' order."""

    ids: int
    memory: int
    sm: int
    engines: int
    engine_order: tuple[str, ...]
    width: int  # cells per line


def _mig_devices_columns(box: Box, text: str) -> _MigDevicesColumns:
    """Find each known column by its heading words (renamed headings read as their old names).

    A column with other headings is left unread: its cells are delimited, so skipping it cannot shift
    another column. Each known column must be there exactly once.
    """
    number = box.header[0].number if box.header else box.first_line
    widths = {len(line.cells) for line in box.header}
    if len(widths) != 1:
        raise ParseError("unrecognised header of the 'MIG devices:' table", text, number)
    (width,) = widths
    found: dict[str, list[int]] = {"ids": [], "memory": [], "sm": [], "engines": []}
    order: tuple[str, ...] = ()
    for column in range(width):
        words = box.column_header(column)
        if words == _MIG_DEVICES_IDS:
            found["ids"].append(column)
        elif words == _MIG_DEVICES_MEMORY:
            found["memory"].append(column)
        elif words == _MIG_DEVICES_SM:
            found["sm"].append(column)
        elif words[:1] == ["Shared"] and sorted(words[1:]) == sorted(_SHARED_ENGINES):
            found["engines"].append(column)
            order = tuple(words[1:])
    if any(len(columns) != 1 for columns in found.values()):
        raise ParseError("unrecognised header of the 'MIG devices:' table", text, number)
    return _MigDevicesColumns(
        ids=found["ids"][0],
        memory=found["memory"][0],
        sm=found["sm"][0],
        engines=found["engines"][0],
        engine_order=order,
        width=width,
    )


def _mig_devices_box(box: Box, text: str) -> list[MigDeviceUsage]:
    if not box.records:
        raise ParseError("the 'MIG devices:' table has no rows", text, box.last_line)
    if len(box.records) == 1 and box.records[0].lines[0].text == NO_MIG_DEVICES:
        return []
    columns = _mig_devices_columns(box, text)
    rows: list[MigDeviceUsage] = []
    seen_instances: set[tuple[int, int, int]] = set()  # (GPU, GI, CI): each once
    seen_devices: set[tuple[int, int]] = set()  # (GPU, MIG device index): each once
    for record in box.records:
        first = record.lines[0]
        if len(record.lines) < 2 or any(len(line.cells) != columns.width for line in record.lines):
            raise ParseError(
                f"a MIG device record has two lines of {columns.width} cells, as its header", text, record.number
            )
        second = record.lines[1]
        if any(cell for line in record.lines[2:] for cell in line.cells):
            raise ParseError("unexpected third line in a MIG device record", text, record.number)
        if any(cell for column, cell in enumerate(second.cells) if column != columns.memory):
            # Only the BAR1 figure sits on a record's second line: anything else would be read as nothing.
            raise ParseError("unexpected text on the second line of a MIG device record", text, second.number)
        ids = match_line(_IDS, first.cells[columns.ids], text, first.number, "MIG device ids")
        sm = match_line(_SM, first.cells[columns.sm], text, first.number, "MIG device SM count")
        values = first.cells[columns.engines].split()
        if len(values) != len(columns.engine_order) or not all(_NUMBER.fullmatch(value) for value in values):
            raise ParseError("unrecognised MIG device engine counts", text, first.number)
        shared = {engine.lower(): int(value) for engine, value in zip(columns.engine_order, values)}
        memory_cell, bar1_cell = first.cells[columns.memory], second.cells[columns.memory]
        if memory_cell or bar1_cell:
            memory = match_line(_MEMORY, memory_cell, text, first.number, "memory usage")
            bar1 = match_line(_MEMORY, bar1_cell, text, second.number, "BAR1 usage")
            figures = (memory["used"], memory["total"], bar1["used"], bar1["total"])
        else:
            # A merged cell: this compute instance shares the memory of the GPU instance above, and the
            # border between them is open over the memory column.
            above = rows[-1] if rows else None
            if (
                above is None
                or (above.gpu, above.gi) != (ids["gpu"], ids["gi"])
                or not record.merged_above(columns.memory)
            ):
                raise ParseError("memory cell is empty", text, first.number)
            figures = (
                above.memory_used_mib,
                above.memory_total_mib,
                above.bar1_used_mib,
                above.bar1_total_mib,
            )
        instance, device = (ids["gpu"], ids["gi"], ids["ci"]), (ids["gpu"], ids["index"])
        if instance in seen_instances or device in seen_devices:
            raise ParseError("a MIG device listed twice", text, first.number)
        seen_instances.add(instance)
        seen_devices.add(device)
        rows.append(
            MigDeviceUsage(
                gpu=ids["gpu"],
                gi=ids["gi"],
                ci=ids["ci"],
                index=ids["index"],
                memory_used_mib=figures[0],
                memory_total_mib=figures[1],
                bar1_used_mib=figures[2],
                bar1_total_mib=figures[3],
                sm=sm["sm"],
                **shared,
            )
        )
    return rows


def _the_box(boxes: list[Box], title: str, text: str) -> Box | None:
    """The one box titled ``title``, None if there is none; a second one is output smimig does not know."""
    found = [box for box in boxes if box.title == title]
    if len(found) > 1:
        raise ParseError(f"more than one {title!r} table", text, found[1].first_line)
    return found[0] if found else None


def parse_mig_devices(text: str) -> list[MigDeviceUsage]:
    """Parse the "MIG devices:" table of plain ``nvidia-smi`` into one row per MIG device."""
    boxes, _ = read_boxes(text)
    box = _the_box(boxes, _MIG_DEVICES_TITLE, text)
    if box is not None:
        return _mig_devices_box(box, text)
    gpu_tables = [box for box in boxes if box.title.startswith("NVIDIA-SMI ")]
    if gpu_tables:
        for gpu_table in gpu_tables:
            for record in gpu_table.records:
                for line in record.lines:
                    if line.cells[-1] == "Enabled":
                        raise ParseError("a GPU is in MIG mode but there is no 'MIG devices:' table", text, line.number)
        return []  # the GPU table without a MIG devices box: no GPU is in MIG mode
    raise ParseError("neither an nvidia-smi GPU table nor a 'MIG devices:' table", text)


def parse_processes(text: str) -> list[GpuProcess]:
    """Parse the "Processes:" table of plain ``nvidia-smi``: each process with its GPU, GI and CI."""
    boxes, _ = read_boxes(text)
    box = _the_box(boxes, _PROCESSES_TITLE, text)
    if box is None:
        raise ParseError("no 'Processes:' table", text)
    if box.header_words() != _PROCESSES_HEADER:
        raise ParseError("unrecognised header of the 'Processes:' table", text, box.first_line + 1)
    processes = []
    for record in box.records:
        for line in record.lines:
            if line.text == _NO_PROCESSES:
                continue
            match = _PROCESS.match(line.text)
            if match is None:
                raise ParseError("unrecognised process line", text, line.number)
            processes.append(
                GpuProcess(
                    gpu=int(match["gpu"]),
                    gi=None if match["gi"] == "N/A" else int(match["gi"]),
                    ci=None if match["ci"] == "N/A" else int(match["ci"]),
                    pid=int(match["pid"]),
                    type=match["type"],
                    name=match["name"],
                    memory_mib=int(match["memory"]) if match["memory"] else None,
                )
            )
    return processes
