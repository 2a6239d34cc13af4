"""Parsers for the instance listings: ``nvidia-smi mig -lgi`` and ``-lci``.

One one-line record per instance::

    | GPU   Name             Profile  Instance   Placement  |
    |                          ID       ID       Start:Size |
    |   0  MIG 2g.12gb          5        1          0:2     |

becomes ``GpuInstance(gpu=0, name='MIG 2g.12gb', profile_id=5, id=1, placement=Placement(0, 2))``;
``-lci`` adds the GPU instance column and gives ``ComputeInstance`` (its placement is inside the GPU
instance; early drivers print no Placement column, and ``placement`` is then None). "No GPU instances
found: Not Found", "No compute instances found: Not Found" and "No MIG-enabled devices found." give ``[]``;
anything unrecognised raises ``ParseError``.
"""

from __future__ import annotations

from smimig.errors import ParseError
from smimig.models import ComputeInstance, GpuInstance
from smimig.parsers._common import (
    NO_COMPUTE_INSTANCES,
    NO_GPU_INSTANCES,
    NO_MIG_ENABLED_DEVICES,
    compile_pattern,
    is_empty_message,
    match_line,
)
from smimig.parsers.tables import Box, read_listing_box, read_single_box

__all__ = ["parse_cis", "parse_gis"]

_GIS_TITLE = "GPU instances:"
_GIS_HEADER = "GPU Name Profile Instance Placement ID ID Start:Size".split()
_GI = compile_pattern("{gpu:Int} {name:Name} {profile_id:Int} {id:Int} {placement:Placement}")

_CIS_TITLE = "Compute instances:"
_CIS_HEADER = "GPU GPU Name Profile Instance Placement Instance ID ID Start:Size ID".split()
_CIS_OPTIONAL = {"placement": ("Placement", "Start:Size")}  # early drivers print no Placement column
_CI = compile_pattern("{gpu:Int} {gi:Int} {name:Name} {profile_id:Int} {id:Int} {placement:Placement}")
_CI_NO_PLACEMENT = compile_pattern("{gpu:Int} {gi:Int} {name:Name} {profile_id:Int} {id:Int}")

_GIS_EMPTY = (NO_MIG_ENABLED_DEVICES, NO_GPU_INSTANCES)
_CIS_EMPTY = (NO_MIG_ENABLED_DEVICES, NO_GPU_INSTANCES, NO_COMPUTE_INSTANCES)


def _one_line_records(box: Box, text: str, what: str) -> list[tuple[str, int]]:
    lines = []
    for record in box.records:
        if len(record.lines) != 1:
            raise ParseError(f"a {what} record has one line", text, record.number)
        lines.append((record.lines[0].text, record.number))
    return lines


def parse_gis(text: str) -> list[GpuInstance]:
    """Parse ``nvidia-smi mig -lgi`` into GPU instances, in printed order (not always id order)."""
    if is_empty_message(text, _GIS_EMPTY):
        return []
    box = read_single_box(text, _GIS_TITLE, _GIS_HEADER)
    return [
        GpuInstance(**match_line(_GI, line, text, number, "GPU instance"))
        for line, number in _one_line_records(box, text, "GPU instance")
    ]


def parse_cis(text: str) -> list[ComputeInstance]:
    """Parse ``nvidia-smi mig -lci`` into compute instances, in printed order."""
    if is_empty_message(text, _CIS_EMPTY):
        return []
    box, missing = read_listing_box(text, _CIS_TITLE, _CIS_HEADER, _CIS_OPTIONAL)
    if "placement" in missing:
        return [
            ComputeInstance(**match_line(_CI_NO_PLACEMENT, line, text, number, "compute instance"), placement=None)
            for line, number in _one_line_records(box, text, "compute instance")
        ]
    return [
        ComputeInstance(**match_line(_CI, line, text, number, "compute instance"))
        for line, number in _one_line_records(box, text, "compute instance")
    ]
