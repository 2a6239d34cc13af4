"""nvidia-smi's text, rendered from the simulated state.

Column widths are those of the recordings: the ``"545"`` style matches the seed byte for byte (A30, driver
545) and the driver 515 A100 80GB and driver 550 GH200 listings, the ``"580"`` style the H100 and H200
driver 580 captures (``-lgip`` and the GPU table are 2 columns wider) and the RTX PRO 6000 tables (the
"MIG devices:" box headed "Shared Memory-Usage", "Shared BAR1-Usage", "Shared"; GPU names cut to 24
characters and "..."). Where no recording of a table exists for a style (``-lgi``, ``-lci``, ``-lcip`` on
driver 580; the Processes box on 545) the layout is inferred, and so are Name columns widened for names
longer than 16 characters (``MIG 1c.2g.48gb+me.all``) where recordings show only shorter ones.
"""

from __future__ import annotations

from smimig.sim.state import CiState, GiState, Node

__all__ = [
    "render_ci_placements",
    "render_ci_profiles",
    "render_cis",
    "render_gi_placements",
    "render_gi_profiles",
    "render_gis",
    "render_gpu_list",
    "render_table",
]


def _border(width: int) -> str:
    return "+" + "-" * (width - 2) + "+"


def _title(text: str, width: int) -> str:
    return "| " + text.ljust(width - 3) + "|"


def _rule(width: int) -> str:
    return "|" + "=" * (width - 2) + "|"


def _box(title: str, header: list[str], records: list[list[str]], width: int) -> str:
    lines = [_border(width), _title(title, width), *header, _rule(width)]
    for record in records:
        lines.extend(record)
        lines.append(_border(width))
    return "\n".join(lines) + "\n"


def render_gpu_list(node: Node) -> str:
    lines = []
    for state in node.gpus:
        lines.append(f"GPU {state.index}: {node.model.name} (UUID: {node.gpu_uuid(state.index)})")
        for device, (gi, ci) in enumerate(_devices(node, state.index)):
            name = node.ci_profile_of(gi, ci).name
            uuid = node.mig_uuid(state.index, gi.id, ci.id)
            lines.append(f"  {name:<15} Device {device:>2}: (UUID: {uuid})")
    return "\n".join(lines) + "\n"


def _devices(node: Node, gpu: int) -> list[tuple[GiState, CiState]]:
    """The MIG devices of a GPU, in nvidia-smi's order (GI id, then CI id), as (GI, CI) pairs."""
    state = node.gpus[gpu]
    return [(gi, ci) for gi in state.gis for ci in state.cis if ci.gi == gi.id]


def render_gi_profiles(node: Node, gpus: list[int]) -> str:
    wide = node.model.style == "580"
    name_width = 18 if wide else 16
    width = 81 if wide else 79
    pad = " " * (name_width - 16)
    header = [
        f"| GPU   Name             {pad}ID    Instances   Memory     P2P    SM    DEC   ENC  |",
        f"|                              {pad}Free/Total   GiB              CE    JPEG  OFA  |",
    ]
    records = []
    for gpu in gpus:
        for profile in node.model.gi_profiles:
            free = node.gi_free_count(gpu, profile)
            counts = f"{free}/{profile.instances}"
            first = (
                f"|{gpu:>4}  {profile.name:<{name_width}}{profile.id:>4}{counts:>8}        "
                f"{profile.memory_gib:<11.2f}{'No':<7}{profile.sm:<7}{profile.dec:<6}{profile.enc:<4}|"
            )
            second = f"|{'':{61 + name_width - 16}}{profile.ce:<6}{profile.jpeg:<6}{profile.ofa:<4}|"
            records.append([first, second])
    return _box("GPU instance profiles:", header, records, width)


def _placement_line(prefix: str, starts: tuple[int, ...], size: int) -> str:
    label = "Placement :" if len(starts) == 1 else "Placements:"
    return f"{prefix} {label} {{{','.join(map(str, starts))}}}:{size}"


def render_gi_placements(node: Node, gpus: list[int]) -> str:
    lines = [
        _placement_line(f"GPU {gpu:>2} Profile ID {profile.id:>2}", profile.starts, profile.size)
        for gpu in gpus
        for profile in node.model.gi_profiles
    ]
    return "\n".join(lines) + "\n"


def _name_width(names: list[str]) -> int:
    """The Name column: 16 wide as recorded, wider when a longer name is printed (inferred: ``+me.all`` forms)."""
    return max([16, *map(len, names)])


def render_gis(node: Node, gis: list[tuple[int, GiState]]) -> str:
    name_width = _name_width([node.gi_profile_of(gi).name for _, gi in gis])
    pad = " " * (name_width - 16)
    header = [
        f"| GPU   Name             {pad}Profile  Instance   Placement  |",
        f"|                          {pad}ID       ID       Start:Size |",
    ]
    records = []
    for gpu, gi in gis:
        profile = node.gi_profile_of(gi)
        placement = f"{gi.start}:{profile.size}"
        records.append([f"|{gpu:>4}  {profile.name:<{name_width}}{profile.id:>6}{gi.id:>9}{placement:>13}     |"])
    return _box("GPU instances:", header, records, 57 + len(pad))


def render_ci_profiles(node: Node, gis: list[tuple[int, GiState]]) -> str:
    name_width = _name_width([profile.name for _, gi in gis for profile in node.ci_profiles(gi)])
    pad = " " * (name_width - 16)
    header = [
        f"| GPU     GPU       Name             {pad}Profile  Instances   Exclusive       Shared       |",
        f"|       Instance                       {pad}ID     Free/Total     SM       DEC   ENC   OFA  |",
        f"|         ID                           {pad}                               CE    JPEG       |",
    ]
    records = []
    for gpu, gi in gis:
        engines = node.gi_profile_of(gi)
        for profile in node.ci_profiles(gi):
            counts = f"{node.ci_free_count(gpu, gi, profile)}/{profile.instances}"
            star = "*" if profile.is_default else " "
            first = (
                f"|{gpu:>4}{gi.id:>7}       {profile.name:<{name_width}}{profile.id:>6}{star}{counts:>8}"
                f"{profile.sm:>13}{engines.dec:>9}{engines.enc:>6}{engines.ofa:>6}   |"
            )
            second = f"|{'':{62 + len(pad)}}{engines.ce:>9}{engines.jpeg:>6}{'':9}|"
            records.append([first, second])
    return _box("Compute instance profiles:", header, records, 88 + len(pad))


def render_ci_placements(node: Node, gis: list[tuple[int, GiState]]) -> str:
    lines = [
        _placement_line(f"GPU {gpu:>2} GI {gi.id:>2} Profile ID {profile.id:>2}", profile.starts, profile.slices)
        for gpu, gi in gis
        for profile in node.ci_profiles(gi)
    ]
    return "\n".join(lines) + "\n"


def render_cis(node: Node, gis: list[tuple[int, GiState]]) -> str:
    shown = [(gpu, gi, ci) for gpu, gi in gis for ci in node.gpus[gpu].cis if ci.gi == gi.id]
    name_width = _name_width([node.ci_profile_of(gi, ci).name for _, gi, ci in shown])
    pad = " " * (name_width - 16)
    header = [
        f"| GPU     GPU       Name             {pad}Profile   Instance   Placement  |",
        f"|       Instance                       {pad}ID        ID       Start:Size |",
        f"|         ID                           {pad}                              |",
    ]
    records = []
    for gpu, gi, ci in shown:
        profile = node.ci_profile_of(gi, ci)
        placement = f"{ci.start}:{profile.slices}"
        records.append(
            [f"|{gpu:>4}{gi.id:>7}       {profile.name:<{name_width}}{profile.id:>6}{ci.id:>10}{placement:>13}     |"]
        )
    return _box("Compute instances:", header, records, 70 + len(pad))


# -- plain nvidia-smi ---------------------------------------------------------------------------------

_GPU_HEADER_545 = [
    "|-----------------------------------------+----------------------+----------------------+",
    "| GPU  Name                 Persistence-M | Bus-Id        Disp.A | Volatile Uncorr. ECC |",
    "| Fan  Temp   Perf          Pwr:Usage/Cap |         Memory-Usage | GPU-Util  Compute M. |",
    "|                                         |                      |               MIG M. |",
    "|=========================================+======================+======================|",
]
_GPU_HEADER_580 = [
    "+-----------------------------------------+------------------------+----------------------+",
    "| GPU  Name                 Persistence-M | Bus-Id          Disp.A | Volatile Uncorr. ECC |",
    "| Fan  Temp   Perf          Pwr:Usage/Cap |           Memory-Usage | GPU-Util  Compute M. |",
    "|                                         |                        |               MIG M. |",
    "|=========================================+========================+======================|",
]
_MIG_HEADER_545 = [
    "+------------------+--------------------------------+-----------+-----------------------+",
    "| GPU  GI  CI  MIG |                   Memory-Usage |        Vol|      Shared           |",
    "|      ID  ID  Dev |                     BAR1-Usage | SM     Unc| CE ENC DEC OFA JPG    |",
    "|                  |                                |        ECC|                       |",
    "|==================+================================+===========+=======================|",
]
_MIG_HEADER_580 = [  # driver 580 and later (recorded on the RTX PRO 6000): "Shared" memory, BAR1 and engines
    "+------------------+----------------------------------+-----------+-----------------------+",
    "| GPU  GI  CI  MIG |              Shared Memory-Usage |        Vol|        Shared         |",
    "|      ID  ID  Dev |                Shared BAR1-Usage | SM     Unc| CE ENC  DEC  OFA  JPG |",
    "|                  |                                  |        ECC|                       |",
    "|==================+==================================+===========+=======================|",
]
_PROCESSES_545 = [
    "| Processes:                                                                            |",
    "|  GPU   GI   CI        PID   Type   Process name                            GPU Memory |",
    "|        ID   ID                                                             Usage      |",
    "|=======================================================================================|",
]
_PROCESSES_580 = [
    "| Processes:                                                                              |",
    "|  GPU   GI   CI              PID   Type   Process name                        GPU Memory |",
    "|        ID   ID                                                               Usage      |",
    "|=========================================================================================|",
]
# The table's GPU name: a longer one is cut to 24 characters and "..." (recorded on the RTX PRO 6000; that
# names of up to 27 characters are printed whole is inferred from the width the cut name takes).
_NAME_WIDTH = 27


def _table_name(name: str) -> str:
    return name if len(name) <= _NAME_WIDTH else name[: _NAME_WIDTH - 3] + "..."


def _gpu_rows(node: Node, gpu: int, wide: bool) -> list[str]:
    model = node.model
    state = node.gpus[gpu]
    mig = state.mig_current
    used = model.gi_memory_used_mib * len(state.gis) if mig else model.idle_memory_used_mib
    total = model.memory_mib
    cap = model.power_cap_w
    temp, power = 28 + gpu % 3, 30 + gpu
    if wide:
        bus = f"{node.bus_id(gpu):>19} {'Off':>3} "
        # Driver 580 prints N/A once the GPU has MIG devices (recorded on the RTX PRO 6000, one GI).
        memory = f"{'N/A':>21}   " if mig and state.gis else f"{f'{used}MiB':>11} / {f'{total}MiB':>9} "
        power_text = f"{power}W / {cap:>4}W"
    else:
        bus = f" {node.bus_id(gpu)} {'Off':>3} "
        memory = f"{f'{used}MiB / {total}MiB':>21} "
        power_text = f"{power}W / {cap}W"
    ecc = ("On" if mig else "0") if model.ecc else "Off"
    util = "N/A" if mig else "0%"
    persistence = "On" if model.persistence else "Off"
    blank_middle = " " * len(bus)
    return [
        f"|{gpu:>4}  {_table_name(model.name):<30}{persistence:>3}  |{bus}|{ecc:>21} |",
        f"| {model.fan:<3}{f'{temp}C':>6}    {model.perf:<2}{power_text:>24} |{memory}|{util:>8}{'Default':>13} |",
        f"|{'':41}|{blank_middle}|{'Enabled' if mig else 'Disabled':>21} |",
    ]


def _usage(used: int, total: int, width: int) -> str:
    """A MIG device's memory or BAR1 cell: "used / total", aligned on the slash as recorded (545 and 580)."""
    return f"{f'{used}MiB':>19} / {f'{total}MiB':>8}".ljust(width)


def _mig_devices_box(node: Node, gpus: list[int], wide: bool) -> list[str]:
    memory_width = 34 if wide else 32
    width = 91 if wide else 89
    lines = [_border(width), _title("MIG devices:", width), *(_MIG_HEADER_580 if wide else _MIG_HEADER_545)]
    column_border = "+------------------+" + "-" * memory_width + "+-----------+-----------------------+"
    merged_border = "+------------------+" + " " * memory_width + "+-----------+-----------------------+"
    rows = [(gpu, gi, ci) for gpu in gpus for gi, ci in _devices(node, gpu)]
    if not rows:
        return [*lines, _title(" No MIG devices found", width), _border(width)]
    ecc = "0" if node.model.ecc else "N/A"
    device_index: dict[int, int] = {}
    previous: tuple[int, int] | None = None
    for position, (gpu, gi, ci) in enumerate(rows):
        index = device_index.get(gpu, 0)
        device_index[gpu] = index + 1
        profile = node.gi_profile_of(gi)
        ci_profile = node.ci_profile_of(gi, ci)
        shares = previous == (gpu, gi.id)
        if position:
            lines.append(merged_border if shares else column_border)
        if shares:
            memory = bar1 = " " * memory_width
        else:
            memory = _usage(node.model.gi_memory_used_mib, profile.memory_mib, memory_width)
            bar1 = _usage(0, node.model.bar1_mib, memory_width)
        ids = f"{gpu:>3}{gi.id:>5}{ci.id:>4}{index:>4}  "
        sm = f" {ci_profile.sm:<3}{ecc:>6} "
        engines = f"{profile.ce:>3}{profile.enc:>4}{profile.dec:>5}{profile.ofa:>5}{profile.jpeg:>5} "
        lines.append(f"|{ids}|{memory}|{sm}|{engines}|")
        lines.append(f"|{'':18}|{bar1}|{'':11}|{'':23}|")
        previous = (gpu, gi.id)
    lines.append(column_border)
    return lines


def render_table(node: Node, gpus: list[int], timestamp: str | None = None) -> str:
    """Plain ``nvidia-smi``: the GPU table, the "MIG devices:" box when a GPU is in MIG mode, Processes."""
    wide = node.model.style == "580"
    width = 91 if wide else 89
    version = f"NVIDIA-SMI {node.model.driver}"
    if wide:
        top = f"| {version:<34}Driver Version: {node.model.driver:<15}CUDA Version: {node.model.cuda:<9}|"
    else:
        top = f"| {version:<34}Driver Version: {node.model.driver:<13}CUDA Version: {node.model.cuda:<9}|"
    lines = [timestamp] if timestamp else []
    lines += [_border(width), top, *(_GPU_HEADER_580 if wide else _GPU_HEADER_545)]
    separator = (_GPU_HEADER_580 if wide else _GPU_HEADER_545)[0].replace("|", "+", 1)
    separator = "+" + separator[1:-1] + "+"
    for position, gpu in enumerate(gpus):
        if position:
            lines.append(separator)
        lines.extend(_gpu_rows(node, gpu, wide))
    lines.append(separator)
    if any(node.gpus[gpu].mig_current for gpu in gpus):
        lines.append("")
        lines.extend(_mig_devices_box(node, gpus, wide))
    lines.append("")
    lines += [_border(width), *(_PROCESSES_580 if wide else _PROCESSES_545)]
    processes = [process for process in node.processes if process.gpu in gpus]
    if not processes:
        lines.append(_title(" No running processes found", width))
    for process in processes:
        gi = "N/A" if process.gi is None else str(process.gi)
        ci = "N/A" if process.ci is None else str(process.ci)
        memory = f"{process.memory_mib}MiB"
        name_width = width - 55
        lines.append(
            f"|{process.gpu:>5}{gi:>5}{ci:>5}{process.pid:>11}{'C':>7}   {process.name[:name_width]:<{name_width}}{memory:>16} |"
        )
    lines.append(_border(width))
    return "\n".join(lines) + "\n"
