"""MIG geometry, written once: profile names, slices and placements, and the search that packs GPU instances.

Argument validation, layouts, the planner, leases and the simulator all call this module; none of them writes
a profile-name pattern, an overlap test or a placement search of its own. It imports nothing of smimig's.

**Profile names.** One grammar covers every form NVIDIA ships::

    [MIG ][<c>c.]<g>g.<memory>gb[<extension>...]

``<c>`` and ``<g>`` are slice counts from 1 to 99 (ASCII digits only: ``\\d`` would also take "²" or
fullwidth digits, which nvidia-smi does not), ``<memory>`` is 1 to 4 digits, and each extension is a sign and
dot-separated words: ``+me``, ``+me.all``, ``-me``, ``+gfx``. ``<c>c.`` names a compute instance profile that
takes ``c`` of its GPU instance's ``g`` compute slices; the full-size compute instance has the GPU instance's
own name.

>>> name = ProfileName.parse("MIG 1c.2g.48gb+gfx")
>>> name
ProfileName(compute_slices=1, gi_slices=2, memory='48gb', extensions=('+gfx',))
>>> name.short, name.full, name.gpu_instance.short, name.slices
('1c.2g.48gb+gfx', 'MIG 1c.2g.48gb+gfx', '2g.48gb+gfx', 1)
>>> [ProfileName.parse(text).media_extensions for text in ("1g.10gb+me", "1g.24gb+me.all", "1g.24gb-me")]
[True, True, False]

:data:`PROFILE_NAME_PATTERN` is the grammar as regular-expression text (no groups), to embed in larger patterns.

**Slices and placements.** A GPU's memory is a row of slices (8 on most GPUs, 4 on the A30, 12 on the RTX PRO
6000's newer grid). A GPU instance profile takes ``size`` of them from one of its allowed starts
(``nvidia-smi mig -lgipp``); two instances may not share a slice. A compute instance is placed the same way
inside its GPU instance, counted in compute slices.

>>> Placement(0, 4).overlaps(Placement(2, 2)), Placement(0, 2).overlaps(Placement(2, 2))
(True, False)

**Limits and the search.** Besides the slices, a GPU allows at most ``instances`` GPU instances of a profile
(``-lgip``'s Total) and at most one that owns the media engines (a profile with an optical-flow engine,
OFA). :func:`pack` finds starts for the GPU instances a layout asks for whenever any exist, trying first the
free start that blocks the fewest other placements (:func:`ranked_starts`, the choice the simulator also
makes when ``-cgi`` names no start).

>>> half = ProfileGeometry(9, "3g.40gb", size=4, starts=(0, 4), instances=2)
>>> pack([half], [Placement(4, 4)], [(half, None)]).starts
(0,)
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

import attrs

from smimig._repr import AttrsRepr

__all__ = [
    "PROFILE_NAME_PATTERN",
    "Packing",
    "Placement",
    "ProfileGeometry",
    "ProfileName",
    "blocking",
    "count_fitting",
    "feasible",
    "free_starts",
    "is_profile_name",
    "limits_problem",
    "pack",
    "ranked_starts",
    "short_profile_name",
    "slice_count",
]

# -- profile names ----------------------------------------------------------------------------------

_PREFIX = "MIG "
_SLICES = "[1-9][0-9]?"  # nvidia-smi names no profile of 0 slices; a "0c." one used to divide by zero
_MEMORY = "[0-9]{1,4}gb"
_EXTENSION = r"[+-][a-z0-9]+(?:\.[a-z0-9]+)*"

PROFILE_NAME_PATTERN = rf"(?:{_PREFIX})?(?:{_SLICES}c\.)?{_SLICES}g\.{_MEMORY}(?:{_EXTENSION})*"
"""The profile-name grammar as regular-expression text without groups, e.g. for ``re.fullmatch``."""

_NAME = re.compile(
    rf"(?:{_PREFIX})?(?:(?P<compute>{_SLICES})c\.)?(?P<gi>{_SLICES})g\.(?P<memory>{_MEMORY})"
    rf"(?P<extensions>(?:{_EXTENSION})*)"
)
_EXTENSIONS = re.compile(_EXTENSION)


def short_profile_name(name: str) -> str:
    """The name without nvidia-smi's ``MIG`` prefix, which ``-cgi``/``-cci`` take either way; any other text is
    returned as it is.

    >>> short_profile_name("MIG 2g.12gb"), short_profile_name("2g.12gb")
    ('2g.12gb', '2g.12gb')
    """
    return name[len(_PREFIX) :] if name.startswith(_PREFIX) else name


def is_profile_name(text: str) -> bool:
    """Whether ``text`` is a profile name in any form (``"1g.5gb"``, ``"MIG 1c.2g.12gb"``, ``"1g.24gb+me.all"``).

    >>> is_profile_name("1g.5gb "), is_profile_name("1g.\\uff15gb"), is_profile_name("0c.1g.5gb")
    (False, False, False)
    """
    return _NAME.fullmatch(text) is not None


@attrs.frozen(repr=False)
class ProfileName(AttrsRepr):
    """A GPU or compute instance profile name, read: ``MIG 1c.2g.48gb+gfx`` is 1 of 2 compute slices, 48gb,
    with ``+gfx``. Equal whether it was written with the ``MIG`` prefix or without."""

    compute_slices: int | None
    """The ``c`` of ``<c>c.``; None for a GPU instance profile name (or the full-size compute instance)."""
    gi_slices: int
    """The ``g``: the compute slices of the GPU instance."""
    memory: str
    """As written, e.g. ``"48gb"``."""
    extensions: tuple[str, ...] = ()
    """Each with its sign, e.g. ``("+me.all",)``."""

    @classmethod
    def parse(cls, text: str) -> ProfileName:
        """The name ``text`` (with or without ``MIG``).

        Raises:
            ValueError: ``text`` is not a profile name.
        """
        match = _NAME.fullmatch(text) if isinstance(text, str) else None
        if match is None:
            raise ValueError(f"not a MIG profile name: {text!r}")
        compute = match.group("compute")
        return cls(
            int(compute) if compute is not None else None,
            int(match.group("gi")),
            match.group("memory"),
            tuple(_EXTENSIONS.findall(match.group("extensions"))),
        )

    @classmethod
    def read(cls, text: str) -> ProfileName | None:
        """As :meth:`parse`, but None for text that is not a profile name (e.g. a future driver's form)."""
        try:
            return cls.parse(text)
        except ValueError:
            return None

    @property
    def short(self) -> str:
        """Without the prefix, as ``-cgi`` takes it: ``"1c.2g.48gb+gfx"``."""
        compute = f"{self.compute_slices}c." if self.compute_slices is not None else ""
        return f"{compute}{self.gi_slices}g.{self.memory}{''.join(self.extensions)}"

    @property
    def full(self) -> str:
        """As nvidia-smi prints it: ``"MIG 1c.2g.48gb+gfx"``."""
        return _PREFIX + self.short

    @property
    def slices(self) -> int:
        """The compute slices an instance of this profile takes: ``c``, else ``g``."""
        return self.compute_slices if self.compute_slices is not None else self.gi_slices

    @property
    def media_extensions(self) -> bool:
        """Whether the name carries the media extensions: ``+me`` or ``+me.all`` (not ``-me``, which lacks them)."""
        return any(extension == "+me" or extension.startswith("+me.") for extension in self.extensions)

    @property
    def gpu_instance(self) -> ProfileName:
        """The GPU instance profile this one belongs in: ``2g.48gb+gfx`` for ``1c.2g.48gb+gfx`` (itself for a GPU
        instance profile)."""
        return attrs.evolve(self, compute_slices=None)

    def compute_instance(self, slices: int) -> ProfileName:
        """The compute instance profile of ``slices`` compute slices in a GPU instance of this profile, named as
        nvidia-smi names it: ``1c.2g.48gb+gfx``; the full-size one has the GPU instance's own name.

        Raises:
            ValueError: ``slices`` is not from 1 to the GPU instance's compute slices.
        """
        if isinstance(slices, bool) or not isinstance(slices, int) or not 1 <= slices <= self.gi_slices:
            raise ValueError(f"a {self.gpu_instance.short} GPU instance has 1 to {self.gi_slices} compute slices")
        return attrs.evolve(self, compute_slices=None if slices == self.gi_slices else slices)

    def __str__(self) -> str:
        return self.short


# -- slices and placements --------------------------------------------------------------------------


@attrs.frozen(repr=False)
class Placement(AttrsRepr):
    """Where an instance sits: ``size`` slices from slice ``start`` (nvidia-smi's ``Start:Size``).

    >>> Placement(4, 4), str(Placement(4, 4)), Placement(4, 4).end
    (Placement(start=4, size=4), '4:4', 8)
    """

    start: int
    size: int

    @property
    def end(self) -> int:
        """The first slice after this placement."""
        return self.start + self.size

    def overlaps(self, other: Placement) -> bool:
        """Whether the two placements share a slice."""
        return _overlaps(self.start, self.size, other.start, other.size)

    def __str__(self) -> str:
        return f"{self.start}:{self.size}"


@attrs.frozen(repr=False)
class ProfileGeometry(AttrsRepr):
    """What the placement rules need to know of a profile: ``size`` slices from one of ``starts``, at most
    ``instances`` at once, and whether it owns the GPU's media engines (at most one such instance per GPU).

    For a GPU instance profile the slices are the GPU's memory slices; for a compute instance profile, the
    compute slices of its GPU instance. ``name`` is what messages call it.
    """

    id: int
    name: str
    size: int
    starts: tuple[int, ...]
    instances: int
    media: bool = False

    def at(self, start: int) -> Placement:
        """The placement of this profile from ``start``."""
        return Placement(start, self.size)


def slice_count(profiles: Sequence[ProfileGeometry]) -> int:
    """The slices the profiles' placements span: the GPU's (``8`` on an A100, ``4`` on an A30)."""
    return max((start + profile.size for profile in profiles for start in profile.starts), default=0)


def _overlaps(start: int, size: int, other_start: int, other_size: int) -> bool:
    # The one overlap test (Placement.overlaps and the search's inner loops, which run on plain ints).
    return start < other_start + other_size and other_start < start + size


def _spans(taken: Sequence[Placement]) -> list[tuple[int, int]]:
    return [(held.start, held.size) for held in taken]


def _free(size: int, starts: Sequence[int], held: Sequence[tuple[int, int]]) -> list[int]:
    return [start for start in starts if not any(_overlaps(start, size, other, length) for other, length in held)]


def free_starts(profile: ProfileGeometry, taken: Sequence[Placement], starts: Sequence[int] | None = None) -> list[int]:
    """The allowed starts of ``profile`` (or ``starts``) where it overlaps nothing in ``taken``, in order."""
    return _free(profile.size, profile.starts if starts is None else starts, _spans(taken))


def count_fitting(profile: ProfileGeometry, taken: Sequence[Placement]) -> int:
    """How many more placements of ``profile`` fit beside ``taken``, filled from its lowest free start up
    (the slice rule only; the instance limits are :func:`limits_problem`'s)."""
    held = _spans(taken)
    count = 0
    for start in profile.starts:
        if not any(_overlaps(start, profile.size, other, length) for other, length in held):
            held.append((start, profile.size))
            count += 1
    return count


def _free_placements(offered: Sequence[ProfileGeometry], held: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    return [(start, profile.size) for profile in offered for start in _free(profile.size, profile.starts, held)]


def blocking(offered: Sequence[ProfileGeometry], taken: Sequence[Placement], placement: Placement) -> int:
    """How many still-free placements of any of the ``offered`` profiles ``placement`` would block (fewer is
    better: it fragments the GPU less)."""
    return sum(
        1
        for start, size in _free_placements(offered, _spans(taken))
        if _overlaps(placement.start, placement.size, start, size)
    )


def ranked_starts(
    offered: Sequence[ProfileGeometry],
    taken: Sequence[Placement],
    profile: ProfileGeometry,
    starts: Sequence[int] | None = None,
) -> list[int]:
    """The free starts of ``profile`` (or of ``starts``), the one that blocks the fewest other placements of
    the ``offered`` profiles (:func:`blocking`) first, the lowest start on a tie."""
    held = _spans(taken)
    others = _free_placements(offered, held)

    def score(start: int) -> tuple[int, int]:
        return sum(1 for other, size in others if _overlaps(start, profile.size, other, size)), start

    return sorted(_free(profile.size, profile.starts if starts is None else starts, held), key=score)


def limits_problem(chosen: Sequence[ProfileGeometry], slices: int | None = None) -> str | None:
    """What makes the GPU instances ``chosen`` impossible together whatever their placements, or None: more
    instances of a profile than it allows, two that each own the media engines, or (when the GPU's ``slices``
    are given) more slices than it has.

    >>> media = ProfileGeometry(20, "1g.10gb+me", size=1, starts=(0, 1, 2, 3, 4, 5, 6), instances=1, media=True)
    >>> print(limits_problem([media, media]))
    2 x 1g.10gb+me, but at most 1 fit (Total 1)
    """
    counts = Counter(profile.id for profile in chosen)
    for profile in {profile.id: profile for profile in chosen}.values():
        if counts[profile.id] > profile.instances:
            total = profile.instances
            return f"{counts[profile.id]} x {profile.name}, but at most {total} fit (Total {total})"
    media = [profile for profile in chosen if profile.media]
    if len(media) > 1:
        names = ", ".join(profile.name for profile in media)
        return f"{names} each need the GPU's one optical-flow engine (OFA); only one can have it"
    needed = sum(profile.size for profile in chosen)
    if slices is not None and needed > slices:
        return f"the layout needs {needed} memory slices; the GPU has {slices}"
    return None


@attrs.frozen(repr=False)
class Packing(AttrsRepr):
    """What :func:`pack` found: a start per GPU instance asked for, in the order asked, or None and ``why``."""

    starts: tuple[int, ...] | None
    why: str = ""

    @property
    def fits(self) -> bool:
        return self.starts is not None


def _ranges(placements: Sequence[Placement]) -> str:
    return ", ".join(f"{placement.start}-{placement.end - 1}" for placement in placements)


@attrs.define(repr=False)
class _Search(AttrsRepr):
    """A depth-first search with backtracking. ``deepest``/``why``: the last dead end at the greatest depth.

    A dead end depends only on the depth (which GPU instances are left) and the set of slices taken, so each
    is remembered with the (deepest, why) its subtree gave and replayed when another order of the same
    instances reaches it (eight 1g.5gb on seven starts would otherwise try 7! orders); the result and ``why``
    are exactly those of the search without it.
    """

    offered: Sequence[ProfileGeometry]
    deepest: int = -1
    why: str = ""
    dead_ends: dict[tuple[int, frozenset[tuple[int, int]]], tuple[int, str]] = attrs.Factory(dict)

    def _note(self, depth: int, why: str) -> None:
        if depth >= self.deepest:
            self.deepest, self.why = depth, why

    def place(
        self, pending: Sequence[tuple[ProfileGeometry, int | None]], taken: list[Placement], depth: int = 0
    ) -> list[int] | None:
        """Starts for ``pending`` (in order) that overlap nothing in ``taken``; None if there are none."""
        if not pending:
            return []
        key = (depth, frozenset((held.start, held.size) for held in taken))
        if key in self.dead_ends:
            self._note(*self.dead_ends[key])
            return None
        outer = (self.deepest, self.why)
        self.deepest, self.why = -1, ""  # this subtree's own dead ends, then merged into the outer ones
        (profile, fixed), rest = pending[0], pending[1:]
        starts = [fixed] if fixed is not None else list(profile.starts)
        for start in ranked_starts(self.offered, taken, profile, starts):
            found = self.place(rest, [*taken, profile.at(start)], depth + 1)
            if found is not None:
                return [start, *found]
        held = _ranges(sorted(taken, key=lambda placement: placement.start)) or "none"
        self._note(
            depth,
            f"{profile.name} needs slices {_ranges([profile.at(start) for start in starts])}"
            f" (one of them), but slices {held} are taken",
        )
        self.dead_ends[key] = (self.deepest, self.why)
        inner = (self.deepest, self.why)
        self.deepest, self.why = outer
        self._note(*inner)
        return None


def pack(
    offered: Sequence[ProfileGeometry],
    taken: Sequence[Placement],
    wanted: Sequence[tuple[ProfileGeometry, int | None]],
) -> Packing:
    """Starts for the GPU instances ``wanted`` (a profile and a fixed start, or None for any allowed one)
    beside those ``taken``, found whenever any exist; the slice rule only (see :func:`limits_problem`).

    Fixed starts are placed first, then the largest; each tries the start that blocks the fewest placements
    of the ``offered`` profiles (the GPU's whole table) first, and backtracks. When nothing fits, ``why``
    says where the search got stuck deepest.

    >>> quarter = ProfileGeometry(14, "2g.10gb", size=2, starts=(0, 2, 4), instances=3)
    >>> half = ProfileGeometry(9, "3g.20gb", size=4, starts=(0, 4), instances=2)
    >>> pack([quarter, half], [], [(quarter, None), (half, None)]).starts  # the 3g.20gb at 4 blocks least
    (0, 4)
    >>> print(pack([quarter, half], [Placement(0, 4)], [(half, 0)]).why)
    3g.20gb needs slices 0-3 (one of them), but slices 0-3 are taken
    """
    order = sorted(range(len(wanted)), key=lambda i: (wanted[i][1] is None, -wanted[i][0].size, i))
    search = _Search(offered)
    starts = search.place([wanted[i] for i in order], list(taken))
    if starts is None:
        return Packing(None, search.why)
    result = [0] * len(wanted)
    for position, index in enumerate(order):
        result[index] = starts[position]
    return Packing(tuple(result))


def feasible(offered: Sequence[ProfileGeometry], chosen: Sequence[ProfileGeometry], slices: int) -> bool:
    """Whether the GPU instances ``chosen`` fit together on an empty GPU of ``slices`` slices."""
    return limits_problem(chosen, slices) is None and pack(offered, [], [(profile, None) for profile in chosen]).fits
