"""Slice maps: a GPU drawn as the row of memory slices MIG carves it into, for the terminal and the notebook.

One model, :class:`SliceMap`, and two renderers: :meth:`SliceMap.lines` (plain ASCII, one line per GPU, a
second when compute instances divide a GPU instance) and :meth:`SliceMap.svg` (an inline SVG for Jupyter).
``status``, ``plan`` and :class:`~smimig.LayoutError`'s suggestions all draw through here, and the model is
built from :mod:`smimig.geometry` (placements, profile names, the room left), so a picture cannot disagree
with the planner.

**What is drawn.** The memory slices, in order, as placements count them: a GPU instance is a span of its
placement's size (the H100's ``3g.40gb`` takes 4 of 8 memory slices, its ``7g.80gb`` all 8, though the GPU
has 7 compute slices: the ``g`` of a profile name counts compute slices, a span's width memory slices).
Drivers that print placements on a finer grid (the RTX PRO 6000's newer drivers: ``{0,3,6,9}:3`` on a grid of
12 for 4 slices) are drawn in physical slices: the grid unit is the greatest common divisor of every
placement's start and size. A free slice is drawn as free. Compute instances are sub-spans of their GPU
instance, placed in its compute slices (``-lci``'s placement); where a driver prints none (early drivers), or
a plan has yet to create them, they are drawn one after another in the order they are (to be) created.

>>> from smimig.sim import SimulatedRunner
>>> smi = smimig.Smi(runner=SimulatedRunner("H100-80GB", mig=True))
>>> _ = smi.create_gi(0, ["3g.40gb", "2g.20gb", "1g.10gb"], ci=True)
>>> print(smi.status().gpus[0].slice_map)
GPU 0  NVIDIA H100 80GB HBM3  (8 memory slices, 7 compute slices)
  | 2g.20gb GI 2  |1g GI 3| free  |         3g.40gb GI 1          |
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Protocol, Union

import attrs

from smimig._repr import AttrsRepr
from smimig.geometry import (
    Placement,
    ProfileGeometry,
    ProfileName,
    count_fitting,
    limits_problem,
    pack,
    short_profile_name,
    slice_count,
)

if TYPE_CHECKING:
    from smimig.ledger import LeaseRecord
    from smimig.models import ComputeInstance, GpuInstance, GpuInstancePlacements, GpuInstanceProfile, GpuProcess
    from smimig.node_status import MigDeviceInfo

__all__ = [
    "ComputeSpan",
    "FreeSpan",
    "InstanceSpan",
    "PlannedInstance",
    "Room",
    "SliceMap",
    "build_map",
    "geometries",
    "layout_map",
    "profile_geometry",
]

# -- the model --------------------------------------------------------------------------------------


@attrs.frozen(repr=False)
class ComputeSpan(AttrsRepr):
    """A compute instance: ``size`` compute slices from ``start`` inside its GPU instance."""

    start: int
    size: int
    profile: str
    """The short profile name, e.g. ``"1c.3g.40gb"``."""
    id: int | None
    """None for one a plan would create."""
    uuid: str | None = None
    """The MIG device's UUID, where nvidia-smi lists one."""
    placed: bool = True
    """False where the driver printed no placement, or a plan has yet to make it: drawn in creation order."""
    leased_by: str | None = None
    """Who holds a live lease on it: ``"alice (PID 48213)"``."""
    busy: tuple[str, ...] = ()
    """The processes running on it: ``("PID 4242 python",)``."""

    @property
    def end(self) -> int:
        return self.start + self.size


@attrs.frozen(repr=False)
class InstanceSpan(AttrsRepr):
    """A GPU instance: ``size`` memory slices from slice ``start``, and the compute instances in it."""

    start: int
    size: int
    profile: str
    """The short profile name, e.g. ``"3g.40gb"``."""
    id: int | None
    """None for one a plan would create, or a suggested layout's."""
    placement: Placement
    """As nvidia-smi prints it (on the RTX PRO 6000's grid of 12: ``3:3`` for slice 1)."""
    compute_slices: int
    """The compute slices it holds: ``3`` for ``3g.40gb``, whatever its memory slices."""
    compute: tuple[ComputeSpan, ...] = ()
    leased_by: str | None = None
    """A live lease on the GPU instance itself (one being created or released, before its CI is known)."""

    @property
    def end(self) -> int:
        return self.start + self.size

    @property
    def divided(self) -> bool:
        """Whether its compute instances are anything but the one full-size instance ``-C`` makes."""
        if len(self.compute) != 1:
            return True
        only = self.compute[0]
        return (only.start, only.size) != (0, self.compute_slices)

    @property
    def marked(self) -> bool:
        """Whether a lease holds it or a process runs on it."""
        return self.leased_by is not None or any(ci.leased_by or ci.busy for ci in self.compute)

    def label(self) -> str:
        return f"{self.profile} GI {self.id}" if self.id is not None else f"{self.profile} new"


@attrs.frozen(repr=False)
class FreeSpan(AttrsRepr):
    """A memory slice no GPU instance holds."""

    start: int
    size: int = 1

    @property
    def end(self) -> int:
        return self.start + self.size


Span = Union[InstanceSpan, FreeSpan]


@attrs.frozen(repr=False)
class Room(AttrsRepr):
    """How many more GPU instances of ``profile`` fit now (``-lgip``'s Free), of at most ``total``."""

    profile: str
    fits: int
    total: int


@attrs.frozen(repr=False)
class SliceMap(AttrsRepr):
    """One GPU as a row of memory slices: each span a GPU instance (with its compute instances) or a free slice.

    ``str()`` and :meth:`lines` draw it in ASCII; in Jupyter it shows as an SVG (:meth:`svg`).
    """

    gpu: int
    slices: int
    """Memory slices drawn (physical slices: 4 on the RTX PRO 6000, whatever grid its driver prints)."""
    spans: tuple[Span, ...]
    """In slice order, covering every slice once."""
    room: tuple[Room, ...] = ()
    name: str = ""
    """The GPU's name, e.g. ``"NVIDIA H100 80GB HBM3"``."""
    unit: int = 1
    """Placement units per slice: 3 where the driver prints placements on a grid of 12 for 4 slices."""
    compute_slices: int | None = None
    """The GPU's compute slices (7 on an H100, whose memory has 8 slices); None if no profile name says."""
    title: str = ""
    """What the map shows, when not the GPU now: ``"after"``, ``"suggested"``."""

    @property
    def instances(self) -> tuple[InstanceSpan, ...]:
        """The GPU instances, in slice order."""
        return tuple(span for span in self.spans if isinstance(span, InstanceSpan))

    @property
    def free_slices(self) -> int:
        return sum(span.size for span in self.spans if isinstance(span, FreeSpan))

    @property
    def heading(self) -> str:
        """``GPU 0  NVIDIA H100 80GB HBM3  (8 memory slices, 7 compute slices)``, after ``title:`` if any."""
        name = f"  {self.name}" if self.name else ""
        title = f"{self.title}: " if self.title else ""
        return f"{title}GPU {self.gpu}{name}  ({_slices_text(self)})"

    def marked(self, *, leases: Iterable[LeaseRecord] = (), processes: Iterable[GpuProcess] = ()) -> SliceMap:
        """This map with the live ``leases`` and running ``processes`` of its GPU marked on their instances."""
        leases = [lease for lease in leases if lease.gpu == self.gpu and lease.alive]
        processes = [process for process in processes if process.gpu == self.gpu and process.gi is not None]
        if not leases and not processes:
            return self
        spans = tuple(
            _mark(span, leases, processes) if isinstance(span, InstanceSpan) and span.id is not None else span
            for span in self.spans
        )
        return attrs.evolve(self, spans=spans)

    # -- text --------------------------------------------------------------------------------------

    def lines(self, width: int = 64, *, legend: bool = True) -> list[str]:
        """The map in ASCII, about ``width`` characters wide (64: 8 characters a slice on an 8-slice GPU).

        One line of GPU instances (``|3g.40gb GI 1 |``; ``free`` for a free slice); a second of their compute
        instances (``:`` between them) when any GPU instance holds other than its one full-size compute
        instance, or one is leased or busy (``CI 0*``: leased, ``CI 0!``: busy); then, with ``legend``, a
        line per mark saying who holds it.
        """
        lines = _text_lines(self, width)
        return [*lines, *_mark_lines(self)] if legend else lines

    def __str__(self) -> str:
        return "\n".join([self.heading, *(f"  {line}" for line in self.lines())])

    # -- SVG ---------------------------------------------------------------------------------------

    def svg(self) -> str:
        """The map as a self-contained SVG: no script, no external asset; ``currentColor`` and translucent
        fills, so it reads on a light or a dark notebook. Hovering a span shows its placement, a compute
        instance's its MIG device UUID."""
        return _svg(self)

    def _repr_html_(self) -> str:
        return self.svg()


# -- building ---------------------------------------------------------------------------------------


class PlannedInstance(Protocol):
    """A GPU instance a layout asks for (:class:`smimig.layout.GiSpec` is one): its profile's name, where it
    starts (None: anywhere it fits) and its compute instances (None: one full-size one)."""

    @property
    def profile(self) -> str: ...

    @property
    def placement(self) -> int | None: ...

    @property
    def cis(self) -> tuple[str, ...] | None: ...


@attrs.frozen(repr=False)
class _Planned(AttrsRepr):
    profile: str
    placement: int | None = None
    cis: tuple[str, ...] | None = None


def profile_geometry(profile: GpuInstanceProfile, placements: Sequence[Placement]) -> ProfileGeometry:
    """What the placement rules need of a GPU instance profile (``-lgip``) with its placements (``-lgipp``):
    size 0 and no starts when nvidia-smi lists none."""
    size = placements[0].size if placements else 0
    starts = tuple(placement.start for placement in placements)
    return ProfileGeometry(profile.id, profile.short_name, size, starts, profile.total, profile.ofa > 0)


def geometries(
    profiles: Iterable[GpuInstanceProfile], placements: Iterable[GpuInstancePlacements], gpu: int
) -> list[ProfileGeometry]:
    """GPU ``gpu``'s profiles from ``-lgip`` and ``-lgipp`` listings (of any GPUs), as the rules read them."""
    by_id = {entry.profile_id: entry.placements for entry in placements if entry.gpu == gpu}
    return [profile_geometry(profile, by_id.get(profile.id, ())) for profile in profiles if profile.gpu == gpu]


def build_map(  # the listings a picture of one GPU joins
    gpu: int,
    profiles: Sequence[ProfileGeometry],
    gis: Iterable[GpuInstance] = (),
    cis: Iterable[ComputeInstance] = (),
    *,
    planned: Iterable[PlannedInstance] = (),
    devices: Iterable[MigDeviceInfo] = (),
    processes: Iterable[GpuProcess] = (),
    leases: Iterable[LeaseRecord] = (),
    name: str = "",
    title: str = "",
) -> SliceMap:
    """GPU ``gpu`` as a :class:`SliceMap`: its GPU instances (``-lgi``) with their compute instances (``-lci``)
    and MIG devices, and the ``planned`` ones a layout adds (each with a start), on a GPU offering ``profiles``
    (:func:`profile_geometry`); ``processes`` and live ``leases`` mark what they hold. Rows of other GPUs are
    ignored.

    Raises:
        ValueError: two instances overlap, or a planned one has no start.
    """
    gis = [gi for gi in gis if gi.gpu == gpu]
    cis = [ci for ci in cis if ci.gpu == gpu]
    unit = _unit(profiles, [gi.placement for gi in gis])
    total = slice_count(profiles) or max((gi.placement.end for gi in gis), default=0)
    uuids = {(device.gi, device.ci): device.uuid for device in devices if device.gpu == gpu}
    by_id = {profile.id: profile for profile in profiles}
    by_name = {profile.name: profile for profile in profiles}
    spans: list[InstanceSpan] = []
    held: list[tuple[ProfileGeometry | None, Placement]] = []
    for gi in gis:
        own = sorted((ci for ci in cis if ci.gi == gi.id), key=lambda ci: ci.id)
        spans.append(_instance(gi.short_name, gi.id, gi.placement, unit, _computes(gi.short_name, own, uuids, gi.id)))
        held.append((by_id.get(gi.profile_id), gi.placement))
    for item in planned:
        if item.placement is None:
            raise ValueError(f"a planned {item.profile} GPU instance has no start")
        geometry = by_name.get(short_profile_name(item.profile))
        size = geometry.size if geometry is not None else _compute_slices(item.profile) * unit
        placement = Placement(item.placement, size)
        new_cis = item.cis if item.cis is not None else (item.profile,)
        spans.append(_instance(short_profile_name(item.profile), None, placement, unit, _unplaced(new_cis)))
        held.append((geometry, placement))
    built = SliceMap(
        gpu,
        total // unit,
        _with_free(spans, total // unit),
        _room(profiles, held),
        name,
        unit,
        max((_compute_slices(profile.name) for profile in profiles), default=None),
        title,
    )
    return built.marked(leases=leases, processes=processes)


def layout_map(
    gpu_model: str | Sequence[ProfileGeometry],
    layout: Sequence[str | PlannedInstance],
    *,
    gpu: int = 0,
    name: str = "",
    title: str = "",
) -> SliceMap:
    """How the GPU instances ``layout`` asks for (profile names, or specs with starts and compute instances)
    sit on an empty GPU: placed as ``plan`` places them (:func:`smimig.geometry.pack`). ``gpu_model`` is a
    simulator model (``"A100-40GB"``, ``"H100"``, ``"RTX-PRO-6000"``: ``smimig --simulate list``) or the
    profiles a GPU offers (:func:`profile_geometry`). This is how a :class:`~smimig.LayoutError`'s
    suggestions are drawn.

    >>> print(layout_map("A100-40GB", ["4g.20gb", "2g.10gb", "1g.5gb"]))
    suggested: GPU 0  NVIDIA A100-SXM4-40GB  (8 memory slices, 7 compute slices)
      |          4g.20gb new          |  2g.10gb new  |1g new | free  |

    Raises:
        ValueError: an unknown model or profile, or a layout that does not fit.
    """
    if isinstance(gpu_model, str):
        from smimig.sim.catalog import model_named  # noqa: PLC0415  # the simulator's tables, only for a name

        model = model_named(gpu_model)
        profiles: Sequence[ProfileGeometry] = [profile.geometry for profile in model.gi_profiles]
        name = name or model.name
    else:
        profiles = gpu_model
    items = [_Planned(item) if isinstance(item, str) else item for item in layout]
    by_name = {profile.name: profile for profile in profiles}
    chosen = []
    for item in items:
        profile = by_name.get(short_profile_name(item.profile))
        if profile is None:
            raise ValueError(f"no GPU instance profile {item.profile!r}; the GPU offers {', '.join(by_name)}")
        chosen.append(profile)
    problem = limits_problem(chosen, slice_count(profiles))
    packing = pack(profiles, [], [(profile, item.placement) for profile, item in zip(chosen, items)])
    if problem is not None or packing.starts is None:
        raise ValueError(f"the layout does not fit: {problem or packing.why}")
    placed = [_Planned(item.profile, start, item.cis) for item, start in zip(items, packing.starts)]
    return build_map(gpu, profiles, planned=placed, name=name, title=title or "suggested")


def _compute_slices(profile: str) -> int:
    name = ProfileName.read(profile)
    return name.gi_slices if name is not None else 1


def _ci_slices(profile: str) -> int:
    name = ProfileName.read(profile)
    return name.slices if name is not None else 1


def _unit(profiles: Sequence[ProfileGeometry], placements: Sequence[Placement]) -> int:
    """The placement grid's units per physical slice: the gcd of every start and size (1 on most drivers)."""
    numbers = [profile.size for profile in profiles if profile.size]
    numbers.extend(start for profile in profiles for start in profile.starts)
    numbers.extend(number for placement in placements for number in (placement.start, placement.size))
    return math.gcd(*numbers) or 1


def _instance(
    profile: str, gi: int | None, placement: Placement, unit: int, compute: tuple[ComputeSpan, ...]
) -> InstanceSpan:
    start, size = placement.start // unit, max(1, placement.size // unit)
    return InstanceSpan(start, size, profile, gi, placement, _compute_slices(profile), compute)


def _computes(
    gi_profile: str, cis: Sequence[ComputeInstance], uuids: dict[tuple[int, int], str], gi: int
) -> tuple[ComputeSpan, ...]:
    """``-lci``'s compute instances of one GPU instance; if any has no placement (or one outside the GPU
    instance's compute slices), all are drawn in creation order."""
    slices = _compute_slices(gi_profile)
    placed = [(ci, ci.placement) for ci in cis if ci.placement is not None and ci.placement.end <= slices]
    if len(placed) == len(cis):
        return tuple(
            ComputeSpan(placement.start, placement.size, ci.short_name, ci.id, uuids.get((gi, ci.id)))
            for ci, placement in sorted(placed, key=lambda pair: (pair[1].start, pair[0].id))
        )
    spans, start = [], 0
    for ci in cis:
        size = _ci_slices(ci.short_name)
        spans.append(ComputeSpan(start, size, ci.short_name, ci.id, uuids.get((gi, ci.id)), placed=False))
        start += size
    return tuple(spans)


def _unplaced(profiles: Sequence[str]) -> tuple[ComputeSpan, ...]:
    """Compute instances a plan would create, largest first (the order ``-cci`` gets them)."""
    spans, start = [], 0
    for profile in sorted(profiles, key=lambda profile: -_ci_slices(profile)):
        size = _ci_slices(profile)
        spans.append(ComputeSpan(start, size, short_profile_name(profile), None, placed=False))
        start += size
    return tuple(spans)


def _with_free(instances: Sequence[InstanceSpan], slices: int) -> tuple[Span, ...]:
    ordered = sorted(instances, key=lambda span: span.start)
    for before, after in zip(ordered, ordered[1:]):
        if after.start < before.end:
            raise ValueError(f"{before.label()} and {after.label()} overlap")
    taken = {index for span in ordered for index in range(span.start, span.end)}
    end = max([slices, *(span.end for span in ordered)])
    free = [FreeSpan(index) for index in range(end) if index not in taken]
    return tuple(sorted([*ordered, *free], key=lambda span: span.start))


def _room(
    profiles: Sequence[ProfileGeometry], held: Sequence[tuple[ProfileGeometry | None, Placement]]
) -> tuple[Room, ...]:
    """Per profile, how many more GPU instances fit beside those ``held``: none if one more breaks an
    instance limit or the one-media-instance rule, else the fewer of the instances left and the placements
    still free (the rule ``-lgip``'s Free follows)."""
    chosen = [profile for profile, _ in held if profile is not None]
    taken = [placement for _, placement in held]
    room = []
    for profile in profiles:
        if not profile.starts:
            continue
        if limits_problem([*chosen, profile]) is not None:
            fits = 0
        else:
            left = profile.instances - sum(1 for other in chosen if other.id == profile.id)
            fits = max(0, min(left, count_fitting(profile, taken)))
        room.append(Room(profile.name, fits, profile.instances))
    return tuple(room)


def _mark(span: InstanceSpan, leases: Sequence[LeaseRecord], processes: Sequence[GpuProcess]) -> InstanceSpan:
    def holder(record: LeaseRecord) -> str:
        return f"{record.user} (PID {record.pid})"

    compute = []
    for ci in span.compute:
        lease = next((lease for lease in leases if (lease.gi, lease.ci) == (span.id, ci.id)), None)
        busy = tuple(
            f"PID {process.pid} {process.name}" for process in processes if (process.gi, process.ci) == (span.id, ci.id)
        )
        compute.append(attrs.evolve(ci, leased_by=holder(lease) if lease else ci.leased_by, busy=busy or ci.busy))
    whole = next((lease for lease in leases if lease.gi == span.id and lease.ci is None), None)
    return attrs.evolve(span, compute=tuple(compute), leased_by=holder(whole) if whole is not None else span.leased_by)


def _slices_text(slice_map: SliceMap) -> str:
    text = f"{slice_map.slices} memory slices"
    if slice_map.compute_slices is not None:
        text += f", {slice_map.compute_slices} compute slices"
    if slice_map.unit > 1:
        text += f", placements on a grid of {slice_map.slices * slice_map.unit}"
    return text


# -- text -------------------------------------------------------------------------------------------

_LEASED, _BUSY = "*", "!"


def _fit(candidates: Sequence[str], room: int) -> str:
    for candidate in candidates:
        if len(candidate) <= room:
            return candidate
    return candidates[-1][:room]


def _centre(chars: list[str], left: int, right: int, text: str) -> None:
    """Write ``text`` centred between the borders at ``left`` and ``right`` (exclusive)."""
    room = right - left - 1
    text = text[:room]
    at = left + 1 + (room - len(text)) // 2
    chars[at : at + len(text)] = list(text)


def _gi_labels(span: InstanceSpan) -> list[str]:
    """A GPU instance's labels, longest first: ``3g.40gb GI 1``, ``1g+me GI 3``, ``1g GI 3``, ``1g 3``, ``1g``."""
    name = ProfileName.read(span.profile)
    short = f"{name.gi_slices}g" if name is not None else span.profile
    extended = short + "".join(name.extensions) if name is not None else span.profile
    ident = f"GI {span.id}" if span.id is not None else "new"
    return [
        f"{span.profile} {ident}",
        f"{extended} {ident}",
        f"{short} {ident}",
        short + ("" if span.id is None else f" {span.id}"),
        short,
    ]


def _ci_text(ci: ComputeSpan, *, marks: bool = True) -> list[str]:
    mark = (_LEASED if ci.leased_by else "") + (_BUSY if ci.busy else "") if marks else ""
    if ci.id is None:
        return ["new CI", "new", "+"]
    return [f"CI {ci.id}{mark}", f"{ci.id}{mark}", str(ci.id)]


def _text_lines(slice_map: SliceMap, width: int) -> list[str]:
    cell = max(4, width // max(1, slice_map.slices))
    length = slice_map.slices * cell + 1
    gis = [" "] * length
    cis = [" "] * length
    for span in slice_map.spans:
        left, right = span.start * cell, span.end * cell
        gis[left] = gis[right] = cis[left] = cis[right] = "|"
        if isinstance(span, FreeSpan):
            _centre(gis, left, right, _fit(["free", "."], right - left - 1))
            continue
        label = _fit(_gi_labels(span), right - left - 1)
        _centre(gis, left, right, label + (_LEASED if span.leased_by else ""))
        if not span.compute:
            _centre(cis, left, right, _fit(["no CI", "-"], right - left - 1))
        for ci in span.compute:
            # Compute slice k of a GPU instance of g sits k/g of the way along its span.
            start = left + round(ci.start * (right - left) / span.compute_slices)
            end = left + round(ci.end * (right - left) / span.compute_slices)
            if start > left:
                cis[start] = ":"
            if end < right:
                cis[end] = ":"
            _centre(cis, start, end, _fit(_ci_text(ci), end - start - 1))
    lines = ["".join(gis)]
    if any(span.divided or span.marked for span in slice_map.instances):
        lines.append("".join(cis))
    return lines


def _mark_lines(slice_map: SliceMap) -> list[str]:
    lines = []
    for span in slice_map.instances:
        if span.leased_by:
            lines.append(f"{_LEASED} GI {span.id} leased by {span.leased_by}")
        for ci in span.compute:
            if ci.leased_by:
                lines.append(f"{_LEASED} GI {span.id} CI {ci.id} leased by {ci.leased_by}")
            if ci.busy:
                lines.append(f"{_BUSY} GI {span.id} CI {ci.id} busy: {', '.join(ci.busy)}")
    return lines


# -- SVG --------------------------------------------------------------------------------------------

_PAD = 8
_BAR = 480  # px for all the slices
_TOP = 26  # the bar's top, under the heading
_GI_HEIGHT = 58
_CI_TOP = 24  # the compute instances' band, from the top of a GPU instance's box
_CI_HEIGHT = 26
_ROOM_WIDTH = 210
_LINE = 15
_CHAR = 6.7  # px a character of the 12 px sans-serif takes, near enough to choose a label that fits
# Translucent fills over the page's own background and currentColor for lines and text: as readable in a
# dark notebook as in a light one.
_HUES = ("#4c78a8", "#f58518", "#54a24b", "#b279a2", "#e45756", "#72b7b2", "#eeca3b", "#9d755d")
_BUSY_COLOUR = "#e8590c"
_OUTLINE = {"stroke": "currentColor", "stroke_opacity": "0.7"}


def _escape(text: str) -> str:
    from html import escape  # noqa: PLC0415  # only for SVG (Jupyter): `smimig status` does not load it

    return escape(text)


def _element(tag: str, *children: str, **attributes: object) -> str:
    """``<tag a="1">children</tag>``; an attribute ``stroke_width`` is written ``stroke-width``, a float
    with one decimal, None left out."""

    def value(item: object) -> str:
        return f"{item:.1f}" if isinstance(item, float) else str(item)

    written = "".join(
        f' {key.rstrip("_").replace("_", "-")}="{_escape(value(item))}"'
        for key, item in attributes.items()
        if item is not None
    )
    return f"<{tag}{written}>{''.join(children)}</{tag}>" if children else f"<{tag}{written}/>"


def _text(x: float, y: float, text: str, room: float, **attributes: object) -> str:
    """A label, squeezed into ``room`` px should the estimate say it is wider."""
    if len(text) * _CHAR > room:
        attributes.update(textLength=f"{max(room, 1):.0f}", lengthAdjust="spacingAndGlyphs")
    return _element("text", _escape(text), x=float(x), y=float(y), **attributes)


def _title(text: str) -> str:
    return _element("title", _escape(text))


def _gi_title(span: InstanceSpan) -> str:
    where = f"memory slice {span.start}" if span.size == 1 else f"memory slices {span.start}-{span.end - 1}"
    ident = f"GI {span.id}" if span.id is not None else "a new GPU instance"
    plural = "s" if span.compute_slices != 1 else ""
    compute = f"{span.compute_slices} compute slice{plural}"
    lines = [f"{ident}: MIG {span.profile}, placement {span.placement} ({where}), {compute}"]
    if span.leased_by:
        lines.append(f"leased by {span.leased_by}")
    if not span.compute:
        lines.append("no compute instance: create one to get a MIG device")
    return "\n".join(lines)


def _ci_title(ci: ComputeSpan, span: InstanceSpan) -> str:
    where = f"compute slices {ci.start}-{ci.end - 1}" if ci.size > 1 else f"compute slice {ci.start}"
    if not ci.placed:
        where = f"{ci.size} compute slice{'s' if ci.size != 1 else ''}, placed by the driver"
    if ci.id is None:
        return f"a new compute instance: MIG {ci.profile} ({where})"
    lines = [f"CI {ci.id} in GI {span.id}: MIG {ci.profile} ({where})", ci.uuid or "(no MIG device listed)"]
    if ci.leased_by:
        lines.append(f"leased by {ci.leased_by}")
    lines.extend(f"busy: {process}" for process in ci.busy)
    return "\n".join(lines)


def _svg_label(span: InstanceSpan, room: float) -> str:
    labels = _gi_labels(span)
    return next((label for label in labels if len(label) * _CHAR <= room), labels[-1])


def _svg_instance(span: InstanceSpan, slice_map: SliceMap, hue: str, ids: str) -> list[str]:
    width = _BAR / max(1, slice_map.slices)
    x, w = _PAD + span.start * width, span.size * width
    box = {"x": x, "y": _TOP, "width": w, "height": _GI_HEIGHT, "rx": 4}
    gi_id = "new" if span.id is None else span.id
    parts = [
        _title(_gi_title(span)),
        _element(
            "rect", **box, fill=hue, fill_opacity="0.3", **_OUTLINE, stroke_dasharray="5 3" if span.id is None else None
        ),
    ]
    if span.leased_by:
        parts.append(_element("rect", **box, fill=f"url(#{ids}-leased)"))
    parts.append(_text(x + 6, _TOP + 16, _svg_label(span, w - 12), w - 12, font_weight="bold"))
    drawn = [_element("g", *parts, class_="gi", data_gi=gi_id, data_start=span.start, data_size=span.size)]
    band = _TOP + _CI_TOP
    if not span.compute:
        drawn.append(_text(x + 6, band + 17, "no CI", w - 12, fill_opacity="0.6"))
    for ci in span.compute:
        left = x + 3 + ci.start * (w - 6) / span.compute_slices
        right = x + 3 + ci.end * (w - 6) / span.compute_slices
        cell = {"x": left + 1, "y": band, "width": right - left - 2, "height": _CI_HEIGHT, "rx": 3}
        parts = [
            _title(_ci_title(ci, span)),
            _element(
                "rect",
                **cell,
                fill=hue,
                fill_opacity="0.35",
                stroke="currentColor",
                stroke_opacity="0.45",
                stroke_dasharray=None if ci.placed else "3 2",
            ),
        ]
        if ci.leased_by:
            parts.append(_element("rect", **cell, fill=f"url(#{ids}-leased)"))
        if ci.busy:
            inner = {**cell, "x": left + 2, "y": band + 1, "width": right - left - 4, "height": _CI_HEIGHT - 2}
            parts.append(_element("rect", **inner, fill="none", stroke=_BUSY_COLOUR, stroke_width="2.5"))
        room = right - left - 8
        label = _fit(_ci_text(ci, marks=False), max(1, int(room / _CHAR)))  # the SVG marks by pattern and outline
        parts.append(_text(left + 5, band + 17, label, room))
        drawn.append(_element("g", *parts, class_="ci", data_gi=gi_id, data_ci="new" if ci.id is None else ci.id))
    return drawn


def _svg_free(span: FreeSpan, slice_map: SliceMap) -> str:
    width = _BAR / max(1, slice_map.slices)
    x, w = _PAD + span.start * width, span.size * width
    return _element(
        "g",
        _title(
            f"memory slice {span.start}: free" if span.size == 1 else f"memory slices {span.start}-{span.end - 1}: free"
        ),
        _element(
            "rect",
            x=x + 1,
            y=_TOP + 1,
            width=w - 2,
            height=_GI_HEIGHT - 2,
            rx=4,
            fill="none",
            stroke="currentColor",
            stroke_opacity="0.4",
            stroke_dasharray="4 3",
        ),
        _text(x + w / 2, _TOP + _GI_HEIGHT / 2 + 4, "free", w - 8, text_anchor="middle", fill_opacity="0.55"),
        class_="free",
        data_start=span.start,
        data_size=span.size,
    )


def _legend(slice_map: SliceMap, ids: str, top: float) -> str:
    leased = any(span.leased_by or any(ci.leased_by for ci in span.compute) for span in slice_map.instances)
    busy = any(ci.busy for span in slice_map.instances for ci in span.compute)
    swatch = {"y": top, "width": 22, "height": 12, "rx": 2}
    parts, x = [], _PAD
    if leased:
        parts.append(
            _element("rect", x=x, **swatch, fill=f"url(#{ids}-leased)", stroke="currentColor", stroke_opacity="0.5")
        )
        parts.append(_text(x + 28, top + 10, "leased", 60))
        x += 90
    if busy:
        parts.append(_element("rect", x=x, **swatch, fill="none", stroke=_BUSY_COLOUR, stroke_width="2.5"))
        parts.append(_text(x + 28, top + 10, "busy (a process runs on it)", 170))
    return _element("g", *parts, class_="legend") if parts else ""


def _room_column(slice_map: SliceMap, x: float) -> list[str]:
    parts = [_text(x, 16, "room left (fit now / at most)", _ROOM_WIDTH, font_weight="bold")]
    for row, room in enumerate(slice_map.room):
        y = 16 + _LINE * (row + 1)
        faint = "0.45" if room.fits == 0 else None
        parts.append(
            _element(
                "g",
                _text(x, y, room.profile, 110, fill_opacity=faint),
                _text(x + 118, y, f"{room.fits} / {room.total}", 70, fill_opacity=faint),
                class_="room",
                data_profile=room.profile,
                data_fits=room.fits,
            )
        )
    return parts


def _svg(slice_map: SliceMap) -> str:
    import hashlib  # noqa: PLC0415  # for Jupyter's pictures: smimig status in a terminal need not load it (2 ms)

    # ids unique to the picture, as every SVG of a notebook page shares one id space
    ids = "smimig-" + hashlib.sha1(repr(slice_map).encode(), usedforsecurity=False).hexdigest()[:10]
    slices = max(1, slice_map.slices)
    width = _BAR / slices
    name = f"  {slice_map.name}" if slice_map.name else ""
    title = f"{slice_map.title}: " if slice_map.title else ""
    hatch = _element("rect", width=3, height=7, fill="currentColor", fill_opacity="0.35")
    pattern = _element(
        "pattern",
        hatch,
        id=f"{ids}-leased",
        width=7,
        height=7,
        patternUnits="userSpaceOnUse",
        patternTransform="rotate(45)",
    )
    parts = [_element("defs", pattern), _text(_PAD, 16, f"{title}GPU {slice_map.gpu}{name}", _BAR, font_weight="bold")]
    for index, span in enumerate(slice_map.spans):
        if isinstance(span, FreeSpan):
            parts.append(_svg_free(span, slice_map))
        else:
            parts.extend(_svg_instance(span, slice_map, _HUES[index % len(_HUES)], ids))
    ticks = _TOP + _GI_HEIGHT + 13
    parts.extend(
        _text(_PAD + index * width + 3, ticks, str(index), width, font_size="10", fill_opacity="0.6")
        for index in range(slices)
    )
    parts.append(_text(_PAD, ticks + _LINE, _slices_text(slice_map), _BAR, fill_opacity="0.75"))
    bottom = ticks + _LINE + 8
    legend = _legend(slice_map, ids, bottom)
    if legend:
        parts.append(legend)
        bottom += _LINE + 6
    room_x = _PAD + _BAR + 20
    parts.extend(_room_column(slice_map, room_x))
    height = max(bottom, 16 + _LINE * len(slice_map.room) + 6) + _PAD
    total = room_x + _ROOM_WIDTH
    return _element(
        "svg",
        _title(slice_map.heading),
        *parts,
        xmlns="http://www.w3.org/2000/svg",
        width=total,
        height=height,
        viewBox=f"0 0 {total} {height}",
        role="img",
        font_family="sans-serif",
        font_size="12",
        fill="currentColor",
    )
