"""plan, apply, export: bring GPUs to a :class:`~smimig.layout.Layout`, explaining what cannot be done.

``plan`` reads the node once (one call per listing, not per GPU), keeps the instances that already match,
places the new ones with a search that finds a packing whenever one exists, and lists the fewest steps.
``apply`` runs them through the normal operations, refusing to destroy an instance a process runs on,
then reads the node again and checks it matches. ``export`` is the node's state as a Layout.
"""

from __future__ import annotations

import html
import os
import signal
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal, get_args

import attrs

from smimig import interrupts
from smimig._repr import AttrsRepr
from smimig.client import Smi, default_client
from smimig.errors import (
    ApplyError,
    InstanceBusy,
    LayoutError,
    MigOperationError,
    ParseError,
    SmimigError,
    Terminated,
)
from smimig.geometry import (
    Packing,
    Placement,
    ProfileGeometry,
    ProfileName,
    feasible,
    limits_problem,
    pack,
    short_profile_name,
    slice_count,
)
from smimig.layout import GiSpec, Layout, MigPartedDevice, read_file
from smimig.slice_map import SliceMap, build_map, layout_map, profile_geometry

if TYPE_CHECKING:
    from smimig.ledger import LeaseRecord
from smimig.models import (
    ComputeInstance,
    CreatedComputeInstance,
    CreatedGpuInstance,
    DestroyedComputeInstance,
    DestroyedGpuInstance,
    GpuInstance,
    GpuInstanceProfile,
    GpuProcess,
    MigMode,
    MigModeChange,
)

__all__ = [
    "ApplyResult",
    "GpuPlan",
    "NodeState",
    "OfferedProfile",
    "Plan",
    "Step",
    "apply",
    "export",
    "load_layout",
    "plan",
    "read_node",
    "resolve_profile",
]


StepAction = Literal["destroy-ci", "destroy-gi", "enable-mig", "disable-mig", "create-gi", "create-ci"]
"""What a plan's step does: one mutating nvidia-smi call each."""

STEP_ACTIONS: tuple[StepAction, ...] = get_args(StepAction)


@attrs.frozen(repr=False)
class Step(AttrsRepr):
    """One mutating nvidia-smi call of a plan (or of a rollback)."""

    action: StepAction = attrs.field(validator=attrs.validators.in_(STEP_ACTIONS))
    gpu: int
    gis: tuple[int, ...] = ()  # destroy-ci/destroy-gi: the GPU instance ids; create-ci: the one it goes in, if known
    profiles: tuple[str, ...] = ()  # create-gi: "profile:start" items; create-ci: CI profiles
    default_ci: bool = False  # create-gi with -C
    gi_start: int | None = None  # create-ci: the new GPU instance, by its placement start
    cis: tuple[int, ...] = ()  # destroy-ci: only these compute instance ids (a rollback's: exactly its own)

    def __str__(self) -> str:
        selected = ",".join(map(str, self.gis))
        if self.action == "destroy-ci":
            only = f" -ci {','.join(map(str, self.cis))}" if self.cis else ""
            return f"nvidia-smi mig -i {self.gpu} -gi {selected}{only} -dci"
        if self.action == "destroy-gi":
            return f"nvidia-smi mig -i {self.gpu} -gi {selected} -dgi"
        if self.action in ("enable-mig", "disable-mig"):
            return f"nvidia-smi -i {self.gpu} -mig {1 if self.action == 'enable-mig' else 0}"
        if self.action == "create-gi":
            return f"nvidia-smi mig -i {self.gpu} -cgi {','.join(self.profiles)}" + (" -C" if self.default_ci else "")
        target = selected or f"<the GI at slice {self.gi_start}>"
        return f"nvidia-smi mig -i {self.gpu} -gi {target} -cci {','.join(self.profiles)}"


@attrs.frozen(repr=False)
class GpuPlan(AttrsRepr):
    """What happens to one GPU: instances kept, destroyed and created, and the steps."""

    gpu: int
    keep: tuple[GpuInstance, ...]
    destroy: tuple[GpuInstance, ...]
    create: tuple[GiSpec, ...]  # with explicit placements
    steps: tuple[Step, ...]
    deferred: bool = False  # MIG is off and the driver lists no profiles until it is on: checked and planned then
    left: tuple[GpuInstance, ...] = ()  # instances live leases hold, left alone: not the layout's, not in its way
    # Views of the plan, drawn (None: MIG off, or not known yet); private, so --json leaves them out.
    _before: SliceMap | None = attrs.field(default=None, alias="before", repr=False)
    _after: SliceMap | None = attrs.field(default=None, alias="after", repr=False)

    @property
    def before(self) -> SliceMap | None:
        """The GPU as it is, drawn as a slice map; None with MIG off (or a plan that waits for MIG mode)."""
        return self._before

    @property
    def after(self) -> SliceMap | None:
        """The GPU as the plan leaves it: kept instances as they are, new ones where the plan puts them."""
        return self._after

    @property
    def summary(self) -> str:
        """``GPU 0: keep 1, destroy 1, create 2``, or what a plan that waits for MIG mode does."""
        if self.deferred:
            return (
                f"GPU {self.gpu}: checked and planned once MIG is on (with MIG off this driver lists no "
                "profiles); apply turns MIG off again if the layout does not fit"
            )
        left = f", leave {len(self.left)} leased" if self.left else ""
        return f"GPU {self.gpu}: keep {len(self.keep)}, destroy {len(self.destroy)}, create {len(self.create)}{left}"

    def map_lines(self, leased: Sequence[LeaseRecord] = ()) -> list[str]:
        """``before`` and ``after`` drawn in ASCII, one above the other (the ``leased`` instances marked)."""
        if self.deferred:
            return []
        lines = []
        for label, drawn in (("before", self.before), ("after", self.after)):
            if drawn is None:
                lines.append(f"{label:<7}(MIG off)")
                continue
            rows = drawn.marked(leases=leased).lines(legend=False)
            lines.extend(f"{label if row == 0 else '':<7}{text}" for row, text in enumerate(rows))
        return lines


@attrs.frozen(repr=False)
class Plan(AttrsRepr):
    """The steps that bring the node to ``layout``; empty when it is there already."""

    layout: Layout
    gpus: tuple[GpuPlan, ...]
    reads: int  # nvidia-smi calls made to plan
    leased: tuple[LeaseRecord, ...] = ()  # live leases on instances (or GPUs) the plan would change

    @property
    def steps(self) -> tuple[Step, ...]:
        return tuple(step for gpu in self.gpus for step in gpu.steps)

    @property
    def is_noop(self) -> bool:
        return not self.steps and not any(gpu.deferred for gpu in self.gpus)

    def __str__(self) -> str:
        if self.is_noop:
            return "nothing to do: the GPUs already match the layout" + self._left_alone()
        lines = []
        for gpu in self.gpus:
            if not gpu.steps and not gpu.deferred:
                continue
            lines.append(gpu.summary)
            lines.extend(f"  {line}" for line in gpu.map_lines(self.leased))
            lines.extend(f"  {step}" for step in gpu.steps)
        for record in self.leased:
            lines.append(f"  ! {record}: apply refuses to destroy it without --force (force=True)")
        return "\n".join(lines) + self._left_alone()

    def _left_alone(self) -> str:
        left = [f"GPU {gpu.gpu} GI {gi.id} ({gi.name} at {gi.placement})" for gpu in self.gpus for gi in gpu.left]
        return f"\nleft alone, held by leases (not the layout's): {', '.join(left)}" if left else ""

    def _repr_html_(self) -> str:
        if self.is_noop:
            return "<p>nothing to do: the GPUs already match the layout</p>"
        parts = []
        for gpu in self.gpus:
            if not gpu.steps and not gpu.deferred:
                continue
            parts.append(f"<h4>{html.escape(gpu.summary)}</h4>")
            for label, drawn in (("before", gpu.before), ("after", gpu.after)):
                if drawn is not None:
                    parts.append(f"<div>{drawn.marked(leases=self.leased).svg()}</div>")
                elif not gpu.deferred:
                    parts.append(f"<p>{label}: MIG off</p>")
            steps = "\n".join(html.escape(str(step)) for step in gpu.steps)
            parts.append(f"<pre>{steps}</pre>")
        leases = "".join(
            f"<li>{html.escape(str(record))}: apply refuses to destroy it without --force (force=True)</li>"
            for record in self.leased
        )
        if leases:
            parts.append(f"<ul>{leases}</ul>")
        return "".join(parts)


@attrs.frozen(repr=False)
class ApplyResult(AttrsRepr):
    """What ``apply`` did: the plan, the steps that ran, MIG mode changes left pending, the state now."""

    plan: Plan
    ran: tuple[Step, ...]
    pending: tuple[MigModeChange, ...]
    state: Layout | None
    dry_run: bool = False
    refusal: str | None = None  # a dry run: why the real apply would be refused (busy or leased instances)

    @property
    def changed(self) -> bool:
        return bool(self.ran)

    def __str__(self) -> str:
        if self.dry_run:
            warning = f"\nthe apply would be refused: {self.refusal}" if self.refusal else ""
            return f"dry run, nothing changed:\n{self.plan}{warning}"
        lines = [f"ran {len(self.ran)} step(s)" if self.ran else "nothing to do: already as the layout says"]
        lines.extend(f"  {step}" for step in self.ran)
        for change in self.pending:
            lines.append(
                f"GPU {change.gpu}: MIG {'enable' if change.enabled else 'disable'} is pending"
                f" ({change.reason or 'needs a GPU reset'}): its instances wait until it takes effect"
            )
        return "\n".join(lines)


# -- reading the node -------------------------------------------------------------------------------


@attrs.frozen(repr=False)
class OfferedProfile(AttrsRepr):
    """A GPU instance profile one GPU offers: as ``-lgip`` lists it, with its geometry (``-lgipp``'s starts)."""

    profile: GpuInstanceProfile
    geometry: ProfileGeometry

    @classmethod
    def of(cls, profile: GpuInstanceProfile, placements: Sequence[Placement]) -> OfferedProfile:
        """``profile`` with its possible ``placements``; size 0 and no starts when nvidia-smi lists none."""
        return cls(profile, profile_geometry(profile, placements))

    def names(self) -> tuple[str, ...]:
        """What a layout may call it: its id, full name or short name."""
        return (str(self.profile.id), self.profile.name, self.profile.short_name)


@attrs.frozen(repr=False)
class NodeState(AttrsRepr):
    """The node as one read sees it: MIG modes, instances, and the profiles each GPU offers (``tables``)."""

    modes: Mapping[int, MigMode]
    gis: tuple[GpuInstance, ...]
    cis: tuple[ComputeInstance, ...]
    tables: Mapping[int, tuple[OfferedProfile, ...]]
    reads: int  # nvidia-smi calls made
    # From the lease ledger (empty unless read), each as (gpu, gi, placement, profile name): the GPU instances
    # leases hold (live or orphaned: not the layout's either way), either left alone unless the layout cannot
    # fit around them (``leased``), or, for a forced apply, never taken for the layout's (``unmatched``).
    leased: frozenset[tuple[int, int, Placement, str]] = frozenset()
    unmatched: frozenset[tuple[int, int, Placement, str]] = frozenset()

    def claimed(self, gi: GpuInstance, claims: frozenset[tuple[int, int, Placement, str]]) -> bool:
        """Whether ``gi`` is the very instance one of ``claims`` names: same id, placement and profile (an
        instance made later at that id is not the lease's)."""
        return (gi.gpu, gi.id, gi.placement, gi.name) in claims


def read_node(smi: Smi) -> NodeState:
    """The node's MIG state, read once with five listings issued at once (``mig_mode``, ``list_gis``,
    ``list_cis``, ``list_gi_profiles``, ``list_gi_placements``)."""
    mode_list, gis, cis, profiles, placements = smi.gather(  # independent reads, issued at once
        smi.mig_mode, smi.list_gis, smi.list_cis, smi.list_gi_profiles, smi.list_gi_placements
    )
    by_key = {(p.gpu, p.profile_id): p.placements for p in placements}
    tables: dict[int, list[OfferedProfile]] = {}
    for profile in profiles:
        tables.setdefault(profile.gpu, []).append(OfferedProfile.of(profile, by_key.get((profile.gpu, profile.id), ())))
    return NodeState(
        {mode.gpu: mode for mode in mode_list},
        tuple(gis),
        tuple(cis),
        {gpu: tuple(table) for gpu, table in tables.items()},
        reads=5,
    )


def resolve_profile(table: Sequence[OfferedProfile], profile: str, gpu: int) -> OfferedProfile:
    """The profile of GPU ``gpu``'s ``table`` that ``profile`` names (an id, a full or a short name).

    Raises:
        LayoutError: the GPU offers no such profile; it lists those it offers.
    """
    for offered in table:
        if profile in offered.names():
            return offered
    names = ", ".join(offered.profile.short_name for offered in table)
    raise LayoutError(f"GPU {gpu}: no GPU instance profile {profile!r}; it offers {names}")


# -- placing ----------------------------------------------------------------------------------------


def _ci_slices(ci: str) -> int:
    """The compute slices a compute instance profile of a layout takes (its name passed GiSpec's check)."""
    return ProfileName.parse(ci).slices


def _expected_cis(spec: GiSpec, info: OfferedProfile) -> list[str]:
    if spec.cis is None:
        return [info.profile.short_name]
    return sorted(short_profile_name(ci) for ci in spec.cis)


def _check_cis(spec: GiSpec, info: OfferedProfile, gpu: int) -> None:
    slices = info.profile.slices or 1
    used = 0
    for ci in spec.cis or ():
        name = ProfileName.read(ci)
        if name is None or name.gpu_instance.short != info.profile.short_name:
            raise LayoutError(
                f"GPU {gpu}: compute instance {ci!r} does not belong in a {info.profile.short_name} GPU instance"
            )
        used += name.slices
    if used > slices:
        raise LayoutError(
            f"GPU {gpu}: compute instances {', '.join(spec.cis or ())} need {used} compute slices; "
            f"a {info.profile.short_name} GPU instance has {slices}"
        )


def _geometries(infos: Iterable[OfferedProfile]) -> list[ProfileGeometry]:
    return [info.geometry for info in infos]


def _pack(
    table: Sequence[OfferedProfile],
    keep: Sequence[tuple[GpuInstance, OfferedProfile]],
    new: Sequence[tuple[GiSpec, OfferedProfile]],
) -> Packing:
    taken = [info.geometry.at(gi.placement.start) for gi, info in keep]
    return pack(_geometries(table), taken, [(info.geometry, spec.placement) for spec, info in new])


def _impossible(
    reason: str, gpu: int, table: Sequence[OfferedProfile], infos: list[OfferedProfile], slices: int
) -> LayoutError:
    """A LayoutError for ``reason``, with the close layouts that fit, each drawn on the GPU."""
    suggested = _suggest(table, infos, slices)
    maps = [layout_map(_geometries(table), list(names), gpu=gpu) for names in suggested]
    return LayoutError(reason, ["[" + ", ".join(names) + "]" for names in suggested], maps=maps)


def _suggest(table: Sequence[OfferedProfile], infos: list[OfferedProfile], slices: int) -> list[tuple[str, ...]]:
    """Close layouts that fit: one GI fewer, or one GI one size smaller (each its profiles' names)."""
    smaller = sorted(table, key=lambda info: (-info.geometry.size, -info.profile.memory_gib))
    candidates: list[list[OfferedProfile]] = []
    for position, info in enumerate(infos):
        candidates.append(infos[:position] + infos[position + 1 :])
        for other in smaller:
            if other.geometry.size < info.geometry.size and other.profile.ofa <= info.profile.ofa:
                candidates.append([*infos[:position], other, *infos[position + 1 :]])
                break
    seen: set[tuple[str, ...]] = set()
    found = []
    for candidate in sorted(candidates, key=lambda c: -sum(info.geometry.size for info in c)):
        names = tuple(sorted((info.profile.short_name for info in candidate), reverse=True))
        if names in seen or not candidate:
            continue
        seen.add(names)
        if feasible(_geometries(table), _geometries(candidate), slices):
            found.append(names)
        if len(found) == 3:
            break
    return found


# One story, told in order: mode, resolve, check, keep, place, steps.
def _plan_gpu(gpu: int, desired: tuple[GiSpec, ...] | None, state: NodeState) -> GpuPlan:  # noqa: PLR0912, PLR0915
    mode = state.modes.get(gpu)
    if mode is None:
        raise LayoutError(f"the layout names GPU {gpu}, which this node does not have")
    if not mode.supported:
        raise LayoutError(f"GPU {gpu} does not support MIG")
    every = [gi for gi in state.gis if gi.gpu == gpu]
    cis_of = {gi.id: [ci for ci in state.cis if ci.gpu == gpu and ci.gi == gi.id] for gi in every}
    # Live leases' instances are left alone while the layout fits around them; the rest is the plan's.
    left = [gi for gi in every if state.claimed(gi, state.leased)]
    current = [gi for gi in every if not state.claimed(gi, state.leased)]
    steps: list[Step] = []

    def destroy(gis: Sequence[GpuInstance]) -> None:
        with_cis = tuple(gi.id for gi in gis if cis_of.get(gi.id))
        if with_cis:
            steps.append(Step("destroy-ci", gpu, gis=with_cis))
        if gis:
            steps.append(Step("destroy-gi", gpu, gis=tuple(gi.id for gi in gis)))

    if desired is None:  # MIG off: every instance goes, leased or not (apply refuses a leased one)
        destroy(every)
        if mode.current or mode.pending:
            steps.append(Step("disable-mig", gpu))
        before = _drawn(gpu, state, every, "before") if mode.current else None
        return GpuPlan(gpu, (), tuple(every), (), tuple(steps), before=before)
    if not mode.current and not mode.pending:
        steps.append(Step("enable-mig", gpu))
    table = state.tables.get(gpu)
    if not table:
        if not mode.current:  # the driver lists no profiles for a GPU in MIG mode off (driver 545)
            return GpuPlan(gpu, (), (), (), tuple(steps), deferred=True)
        raise LayoutError(f"GPU {gpu}: nvidia-smi lists no GPU instance profiles for it")
    resolved = [(spec, resolve_profile(table, spec.profile, gpu)) for spec in desired]
    for spec, info in resolved:
        if spec.placement is not None and spec.placement not in info.geometry.starts:
            allowed = ", ".join(map(str, info.geometry.starts))
            raise LayoutError(
                f"GPU {gpu}: {info.profile.short_name} cannot start at slice {spec.placement}; "
                f"allowed starts: {allowed}"
            )
        _check_cis(spec, info, gpu)
    slices = slice_count(_geometries(table))
    infos = [info for _, info in resolved]
    problem = limits_problem(_geometries(infos), slices)
    if problem is not None:
        raise _impossible(f"GPU {gpu}: {problem}", gpu, table, infos, slices)

    # Keep what matches (explicit placements first, so a floating spec cannot take their GI).
    remaining = list(current)
    keep: list[tuple[GpuInstance, OfferedProfile]] = []
    new: list[tuple[GiSpec, OfferedProfile]] = []
    for spec, info in sorted(resolved, key=lambda pair: pair[0].placement is None):
        expected = _expected_cis(spec, info)
        match = next(
            (
                gi
                for gi in remaining
                if not state.claimed(gi, state.unmatched)  # a lease's, planned away by a forced apply
                and gi.profile_id == info.profile.id
                and (spec.placement is None or gi.placement.start == spec.placement)
                and sorted(ci.short_name for ci in cis_of.get(gi.id, [])) == expected
            ),
            None,
        )
        if match is None:
            new.append((spec, info))
        else:
            remaining.remove(match)
            keep.append((match, info))
    around = [(gi, info) for gi in left for info in table if info.profile.id == gi.profile_id]
    matched = (list(remaining), list(keep), list(new))
    packing = _pack(table, [*keep, *around], new)
    if packing.starts is None and keep:  # what is kept may be in the way: start over on this GPU
        remaining, keep, new = list(current), [], list(resolved)
        packing = _pack(table, around, new)
    if packing.starts is None and left:  # leased instances in the way: they go (apply refuses, unless forced),
        remaining, keep, new = matched  # and what matches the layout stays if it can
        remaining, left = [*remaining, *left], []
        packing = _pack(table, keep, new)
        if packing.starts is None and keep:
            remaining, keep, new = list(every), [], list(resolved)
            packing = _pack(table, [], new)
    starts = packing.starts
    if starts is None:
        raise _impossible(f"GPU {gpu}: no arrangement fits: {packing.why}", gpu, table, infos, slices)
    destroy(remaining)
    created = [attrs.evolve(spec, placement=start) for (spec, _), start in zip(new, starts)]
    with_default = [gi for gi in created if gi.cis is None]
    custom = [gi for gi in created if gi.cis is not None]
    if with_default:
        steps.append(
            Step(
                "create-gi",
                gpu,
                profiles=tuple(f"{gi.profile}:{gi.placement}" for gi in with_default),
                default_ci=True,
            )
        )
    if custom:
        steps.append(Step("create-gi", gpu, profiles=tuple(f"{gi.profile}:{gi.placement}" for gi in custom)))
        for spec in custom:
            if spec.cis:
                ordered = sorted(spec.cis, key=lambda ci: -_ci_slices(ci))
                steps.append(Step("create-ci", gpu, profiles=tuple(ordered), gi_start=spec.placement))
    kept = tuple(gi for gi, _ in keep)
    return GpuPlan(
        gpu,
        kept,
        tuple(remaining),
        tuple(created),
        tuple(steps),
        left=tuple(left),
        before=_drawn(gpu, state, every, "before") if mode.current else None,
        after=_drawn(gpu, state, (*kept, *left), "after", created),
    )


def _drawn(
    gpu: int, state: NodeState, gis: Sequence[GpuInstance], title: str, planned: Sequence[GiSpec] = ()
) -> SliceMap | None:
    """GPU ``gpu`` with the GPU instances ``gis`` (as read, with their compute instances) and the ``planned``
    ones (placed), drawn on its profile table; None if the driver listed none."""
    table = state.tables.get(gpu)
    if not table:
        return None
    held = {gi.id for gi in gis}
    cis = [ci for ci in state.cis if ci.gpu == gpu and ci.gi in held]
    return build_map(gpu, _geometries(table), gis, cis, planned=planned, title=title)


def _plan(layout: Layout, state: NodeState) -> Plan:
    return Plan(layout, tuple(_plan_gpu(gpu, gis, state) for gpu, gis in layout.gpus.items()), state.reads)


def plan(layout: Layout, *, smi: Smi | None = None, force: bool = False) -> Plan:
    """The steps that bring the node to ``layout``, checked against each GPU's profiles and placements.

    A GPU instance a lease holds (live, or orphaned and not yet reclaimed) is not the layout's: it is left
    alone (``GpuPlan.left``) while the layout fits around it, and destroyed only when it is in the way (which
    apply refuses for a live lease's without ``force``). With ``force``, as ``apply(force=True)`` plans, every
    leased instance is planned away: never taken for the layout's, even of the profile it asks for.

    Raises:
        LayoutError: the layout cannot be realised; it says why and suggests layouts that fit.
        LedgerError: the lease ledger cannot be trusted.
    """
    smi = smi or default_client()
    planned = _plan(layout, _with_claims(smi, read_node(smi), force=force))
    return attrs.evolve(planned, leased=tuple(_leased(smi, planned)))


_Claims = frozenset[tuple[int, int, Placement, str]]


def _with_claims(
    smi: Smi, state: NodeState, *, force: bool, made: frozenset[tuple[int, int]] = frozenset()
) -> NodeState:
    """``state`` with the GPU instances leases hold (live or orphaned), as the ledger says: left alone, or,
    with ``force``, never taken for the layout's. A claim on an instance in ``made`` (``(gpu, gi)`` an apply
    created) is stale: its lease's instance went, and this one took its id. No GPU instance, or no ledger:
    ``state`` as it is."""
    if not state.gis:
        return state
    claims = frozenset(claim for claim in _claimed_instances(smi) if claim[:2] not in made)
    return attrs.evolve(state, unmatched=claims) if force else attrs.evolve(state, leased=claims)


def _claimed_instances(smi: Smi) -> _Claims:
    """The GPU instances the lease ledger's entries hold, live or orphaned (not settled), as (gpu, gi,
    placement, profile name). Empty where there is no ledger."""
    from smimig.lock_paths import ledger_directory, lock_file_for  # noqa: PLC0415  # os.path alone

    if not os.path.isdir(ledger_directory(lock_file_for(smi))):
        return frozenset()
    from smimig.ledger import Ledger  # noqa: PLC0415  # the ledger is read only when there is one

    return frozenset(
        (record.gpu, record.gi, record.placement, record.profile)
        for record in Ledger(lock_file_for(smi)).read().records
        if record.gi is not None and not record.settled
    )


# -- applying ---------------------------------------------------------------------------------------


def _reclaim_orphans(smi: Smi) -> None:
    """Reclaim orphaned leases under the node lock apply holds (re-entrant), as a lease does before it
    chooses; a reclaim that fails costs a warning, not the apply (doctor names what is left)."""
    import warnings  # noqa: PLC0415

    from smimig.lock_paths import ledger_directory, lock_file_for  # noqa: PLC0415  # os.path alone

    if not os.path.isdir(ledger_directory(lock_file_for(smi))):
        return
    from smimig.leasing import LeaseWarning, reclaim_first  # noqa: PLC0415  # only where a ledger exists
    from smimig.ledger import Ledger  # noqa: PLC0415

    for message in reclaim_first(smi, Ledger(lock_file_for(smi))):
        warnings.warn(LeaseWarning(message), stacklevel=4)


def _leased(smi: Smi, plan_: Plan) -> list[LeaseRecord]:
    """Live leases on instances ``plan_`` destroys, or on GPUs whose MIG mode it changes (from the ledger)."""
    destroyed = {(gpu.gpu, gi.id) for gpu in plan_.gpus for gi in gpu.destroy}
    mode_changes = {step.gpu for step in plan_.steps if step.action in ("enable-mig", "disable-mig")}
    if not destroyed and not mode_changes:
        return []
    from smimig.ledger import live_leases  # noqa: PLC0415  # the ledger is read only when something would go

    return [record for record in live_leases(smi) if (record.gpu, record.gi) in destroyed or record.gpu in mode_changes]


def _busy(smi: Smi, plan_: Plan) -> list[GpuProcess]:
    destroyed = {(gpu.gpu, gi.id) for gpu in plan_.gpus for gi in gpu.destroy}
    mode_changes = {step.gpu for step in plan_.steps if step.action in ("enable-mig", "disable-mig")}
    if not destroyed and not mode_changes:
        return []
    return [
        process
        for process in smi.list_processes()
        if (process.gpu, process.gi) in destroyed or process.gpu in mode_changes
    ]


@attrs.frozen(repr=False)
class _Gi(AttrsRepr):
    """A GPU instance as apply's undo log knows it: enough to tell it from another with its id, and to make it
    again (``-cgi name:start``)."""

    gpu: int
    id: int
    profile_id: int
    name: str  # the short profile name, e.g. "3g.20gb"
    start: int

    @property
    def key(self) -> tuple[int, int]:
        return (self.gpu, self.id)


@attrs.frozen(repr=False)
class _Ci(AttrsRepr):
    """A compute instance as the undo log knows it, with the GPU instance it sits in."""

    gi: _Gi
    id: int
    profile_id: int
    name: str  # the short profile name; "" for one this apply never saw listed (it cannot be made again)

    @property
    def key(self) -> tuple[int, int, int]:
        return (self.gi.gpu, self.gi.id, self.id)


@attrs.define(repr=False)
class _View(AttrsRepr):
    """The node as apply believes it is: what it last read, changed by what its own steps reported."""

    gis: dict[tuple[int, int], _Gi]
    cis: dict[tuple[int, int, int], _Ci]
    modes: dict[int, bool]  # the MIG mode each GPU is set to (in effect or pending)

    @classmethod
    def of(cls, modes: Iterable[MigMode], gis: Iterable[GpuInstance], cis: Iterable[ComputeInstance]) -> _View:
        known = {(gi.gpu, gi.id): _Gi(gi.gpu, gi.id, gi.profile_id, gi.short_name, gi.placement.start) for gi in gis}
        return cls(
            known,
            {
                (ci.gpu, ci.gi, ci.id): _Ci(known[(ci.gpu, ci.gi)], ci.id, ci.profile_id, ci.short_name)
                for ci in cis
                if (ci.gpu, ci.gi) in known
            },
            {mode.gpu: mode.pending for mode in modes},
        )

    @classmethod
    def read(cls, smi: Smi) -> _View:
        """The node now (three listings issued at once)."""
        return cls.of(*smi.gather(smi.mig_mode, smi.list_gis, smi.list_cis))

    def holds(self, instance: _Gi | _Ci) -> bool:
        """Whether ``instance`` is still there: the same id, profile and (for a GPU instance) placement, in the
        same GPU instance (for a compute instance). Names are not compared: listings and the messages of
        ``-cgi``/``-cci`` need not spell a profile alike."""
        if isinstance(instance, _Ci):
            ci = self.cis.get(instance.key)
            return ci is not None and ci.profile_id == instance.profile_id and self.holds(instance.gi)
        gi = self.gis.get(instance.key)
        return gi is not None and (gi.profile_id, gi.start) == (instance.profile_id, instance.start)

    def cis_in(self, gi: _Gi) -> list[_Ci]:
        return [ci for ci in self.cis.values() if ci.gi.key == gi.key]


@attrs.frozen(repr=False)
class _Undo(AttrsRepr):
    """What one step changed, for the rollback: the instances it created or destroyed, or the mode it set."""

    created: tuple[_Gi, ...] = ()
    created_cis: tuple[_Ci, ...] = ()  # -cci's, and those -cgi … -C made in the GPU instances it created
    destroyed: tuple[_Gi, ...] = ()
    destroyed_cis: tuple[_Ci, ...] = ()
    mode: tuple[int, bool] | None = None  # (GPU, the mode the step set)


def _item(text: str) -> tuple[str, int]:
    name, _, start = text.rpartition(":")
    return name, int(start)


class _Changes:
    """One apply's steps as they run: those that ran, the undo log (:class:`_Undo` per step, kept as each step
    reports what it did), MIG mode changes left pending, and the step in flight when something stopped it.

    The log holds what the steps' own output said they did (``-cgi``'s ids, ``-dci``'s ids, a partial
    ``MigOperationError``'s ``completed``), and what was there before each destroy (from the node as read
    for the plan, kept up to date with the steps' results). A step whose outcome is unknown (a timeout,
    output smimig could not read, an interruption while nvidia-smi ran) is worked out by :meth:`reconcile`
    from the node as it is then.
    """

    def __init__(self, smi: Smi, state: NodeState) -> None:
        self.smi = smi
        self.ran: list[Step] = []
        self.log: list[_Undo] = []
        self.pending: list[MigModeChange] = []
        self.in_flight: Step | None = None
        self.reported: tuple[object, ...] | None = None  # what the failed step in flight said it did
        self.started = False
        self._new_gis: dict[tuple[int, int], int] = {}  # (GPU, start) -> the id of the GI created there
        self.reread(state)

    def reread(self, state: NodeState) -> None:
        """Take ``state`` as the node now (after MIG came on, the rest is planned from a new read)."""
        self.state = state
        self.view = _View.of(state.modes.values(), state.gis, state.cis)

    def run(self, steps: Iterable[Step]) -> None:
        skip: set[int] = set()
        for step in steps:
            if step.gpu in skip:
                continue
            self.in_flight, self.reported, self.started = step, None, True
            try:
                results = self._call(step)
            except MigOperationError as error:
                if not error.reason:  # all of nvidia-smi's output understood: .completed is what it did
                    self.reported = tuple(error.completed)
                raise
            self._record(step, results)
            if step.action in ("enable-mig", "disable-mig"):
                late = [change for change in results if isinstance(change, MigModeChange) and change.pending]
                if late:
                    self.pending.extend(late)
                    skip.add(step.gpu)
            self.ran.append(step)
            self.in_flight = None

    def _call(self, step: Step) -> Sequence[object]:
        smi, gpu = self.smi, step.gpu
        if step.action == "destroy-ci":
            return smi.destroy_ci(gpu, gi=list(step.gis))
        if step.action == "destroy-gi":
            return smi.destroy_gi(gpu, gi=list(step.gis))
        if step.action == "enable-mig":
            return smi.enable_mig(gpu)
        if step.action == "disable-mig":
            return smi.disable_mig(gpu)
        if step.action == "create-gi":
            items = [_item(text) for text in step.profiles]
            created = smi.create_gi(gpu, items, ci=step.default_ci)
            if len(created) != len(items):  # nvidia-smi answers one line per item: this is not an answer
                raise ParseError(f"{len(items)} GPU instance(s) asked for, {len(created)} reported", str(created))
            return created
        return smi.create_ci(gpu, self._new_gis[(gpu, step.gi_start or 0)], list(step.profiles))

    def _record(self, step: Step, results: Sequence[object]) -> None:
        """Log what ``step`` did (its results), then update the view; in that order, so that an interruption
        between the two makes the rollback see the change twice (harmless), never not at all."""
        gpu = step.gpu
        if step.action == "create-gi":
            gis: list[_Gi] = []
            cis: list[_Ci] = []
            for (_, start), made in zip((_item(text) for text in step.profiles), results):
                assert isinstance(made, CreatedGpuInstance)  # noqa: S101  # what create_gi returns
                gi = _Gi(gpu, made.id, made.profile_id, short_profile_name(made.profile_name), start)
                gis.append(gi)
                cis.extend(
                    _Ci(gi, ci.id, ci.profile_id, short_profile_name(ci.profile_name)) for ci in made.compute_instances
                )
            self._log(_Undo(created=tuple(gis), created_cis=tuple(cis)))
        elif step.action == "create-ci":
            gi = self.view.gis[(gpu, self._new_gis[(gpu, step.gi_start or 0)])]
            made_cis = [result for result in results if isinstance(result, CreatedComputeInstance)]
            self._log(
                _Undo(
                    created_cis=tuple(
                        _Ci(gi, ci.id, ci.profile_id, short_profile_name(ci.profile_name)) for ci in made_cis
                    )
                )
            )
        elif step.action == "destroy-ci":
            gone = [result for result in results if isinstance(result, DestroyedComputeInstance)]
            self._log(_Undo(destroyed_cis=tuple(self._ci_before(ci.gpu, ci.gi, ci.id) for ci in gone)))
        elif step.action == "destroy-gi":
            gone_gis = [result for result in results if isinstance(result, DestroyedGpuInstance)]
            self._log(_Undo(destroyed=tuple(self._gi_before(gi.gpu, gi.id) for gi in gone_gis)))
        elif results:  # a mode change that failed changed nothing
            self._log(_Undo(mode=(gpu, step.action == "enable-mig")))

    def _gi_before(self, gpu: int, gi: int) -> _Gi:
        # One the read for the plan did not list (created since): its profile is unknown, it cannot be made again.
        return self.view.gis.get((gpu, gi)) or _Gi(gpu, gi, -1, "", -1)

    def _ci_before(self, gpu: int, gi: int, ci: int) -> _Ci:
        return self.view.cis.get((gpu, gi, ci)) or _Ci(self._gi_before(gpu, gi), ci, -1, "")

    def _log(self, undo: _Undo) -> None:
        self.log.append(undo)
        for gi in undo.created:
            self.view.gis[gi.key] = gi
            self._new_gis[(gi.gpu, gi.start)] = gi.id
        for ci in undo.created_cis:
            self.view.cis[ci.key] = ci
        for ci in undo.destroyed_cis:
            self.view.cis.pop(ci.key, None)
        for gi in undo.destroyed:
            self.view.gis.pop(gi.key, None)
        if undo.mode is not None:
            self.view.modes[undo.mode[0]] = undo.mode[1]

    def reconcile(self, now: _View) -> None:
        """Log what the step in flight did, when it did not say (or said only part): from ``now``, the node
        as read after it stopped, against what was there before it.

        A ``-cgi`` whose answer is missing made the GPU instances now at the placements it asked for, with the
        profiles it asked for, that were not there before (with an explicit placement, no one else's ``-cgi``
        could have taken the spot once ours had, and had another taken it first, ours would have failed), and
        the default compute instance ``-C`` puts in each; a ``-cci`` made those new in its GPU instance with
        the profiles it asked for; a destroy destroyed those of its GPU instances now gone.
        """
        step = self.in_flight
        if step is None:
            return
        self.in_flight = None
        if self.reported is not None and step.action != "create-gi":
            self._record(step, self.reported)  # a MigOperationError's .completed says all it did
        elif step.action == "create-gi":
            self._log(self._found_gis(step, now))
        elif step.action == "create-ci":
            self._log(_Undo(created_cis=self._found_cis(step, now)))
        elif step.action == "destroy-ci":
            self._log(
                _Undo(
                    destroyed_cis=tuple(
                        ci
                        for ci in self.view.cis.values()
                        if ci.gi.gpu == step.gpu and ci.gi.id in step.gis and ci.key not in now.cis
                    )
                )
            )
        elif step.action == "destroy-gi":
            self._log(
                _Undo(
                    destroyed=tuple(
                        gi
                        for gi in self.view.gis.values()
                        if gi.gpu == step.gpu and gi.id in step.gis and gi.key not in now.gis
                    )
                )
            )
        elif now.modes.get(step.gpu) != self.view.modes.get(step.gpu):
            self._log(_Undo(mode=(step.gpu, step.action == "enable-mig")))

    def _logged(self) -> set[_Gi | _Ci]:
        logged: set[_Gi | _Ci] = set()
        for undo in self.log:
            logged.update(undo.created)
            logged.update(undo.created_cis)
        return logged

    def _found_gis(self, step: Step, now: _View) -> _Undo:
        """What a ``-cgi`` made, from the node now: those it reported if it reported any, else those new at
        the placements and with the profiles it asked for."""
        reported = {made.id: made for made in self.reported or () if isinstance(made, CreatedGpuInstance)}
        asked = {start: self._profile_id(step.gpu, name) for name, start in map(_item, step.profiles)}
        logged = self._logged()

        def made(gi: _Gi) -> bool:
            if gi.gpu != step.gpu or gi.key in self.view.gis or gi in logged:
                return False
            if self.reported is not None:
                return gi.id in reported
            return gi.start in asked and asked[gi.start] in (None, gi.profile_id)

        gis = tuple(gi for gi in now.gis.values() if made(gi))
        cis = []
        for gi in gis:
            for ci in now.cis_in(gi):
                if gi.id in reported:
                    ours = ci.id in {made_ci.id for made_ci in reported[gi.id].compute_instances}
                else:  # the compute instance -C makes is the full-size one: it has the GI's own name
                    ours = step.default_ci and ci.name == gi.name
                if ours:
                    cis.append(ci)
        return _Undo(created=gis, created_cis=tuple(cis))

    def _found_cis(self, step: Step, now: _View) -> tuple[_Ci, ...]:
        """What a ``-cci`` made in its GPU instance, from the node now: new ones of the profiles it asked for."""
        target = self.view.gis.get((step.gpu, self._new_gis.get((step.gpu, step.gi_start or 0), -1)))
        if target is None:
            return ()
        wanted = [short_profile_name(name) for name in step.profiles]
        logged = self._logged()
        found = []
        for ci in sorted(now.cis_in(target), key=lambda ci: ci.id):
            if ci.key not in self.view.cis and ci not in logged and ci.name in wanted:
                wanted.remove(ci.name)
                found.append(ci)
        return tuple(found)

    def _profile_id(self, gpu: int, name: str) -> int | None:
        try:
            return resolve_profile(self.state.tables.get(gpu, ()), name, gpu).profile.id
        except LayoutError:
            return None


class _Rollback:
    """Undo a log of :class:`_Undo`, last step first, against ``now`` (the node read when the rollback began,
    kept up to date with the rollback's own results).

    It destroys only what apply created, and only while it is still what apply created (same id, profile and
    placement, holding no compute instance of someone else); it makes again what apply destroyed, at the same
    placement with the same compute instances; it sets MIG mode back. What it must leave is said in ``left``.
    The first error stops it (the caller keeps it as ``rollback_failure``).
    """

    def __init__(self, smi: Smi, now: _View, log: Sequence[_Undo]) -> None:
        self.smi, self.now, self.log = smi, now, log
        self.restored: list[Step] = []
        self.left: list[str] = []
        self._remade: dict[tuple[int, int], _Gi] = {}  # a destroyed GI's key -> the GI made again in its place
        self._remade_cis: set[tuple[int, int, int]] = set()

    def run(self) -> None:
        for undo in reversed(self.log):
            if undo.created or undo.created_cis:
                self._destroy(undo.created, undo.created_cis)
            if undo.destroyed:
                self._remake(undo.destroyed)
            if undo.destroyed_cis:
                self._remake_cis(undo.destroyed_cis)
            if undo.mode is not None:
                self._set_mode(*undo.mode)

    def _destroy(self, gis: Sequence[_Gi], cis: Sequence[_Ci]) -> None:
        replaced: list[_Gi | _Ci] = [ci for ci in cis if ci.key in self.now.cis and not self.now.holds(ci)]
        replaced.extend(gi for gi in gis if gi.key in self.now.gis and not self.now.holds(gi))
        self.left.extend(
            f"{_describe(instance)}: apply created it, but what has its id now is another" for instance in replaced
        )
        ours = [ci for ci in cis if self.now.holds(ci)]
        by_ids: dict[tuple[int, tuple[int, ...]], list[int]] = {}
        for gi_key in dict.fromkeys(ci.gi.key for ci in ours):
            ids = tuple(sorted(ci.id for ci in ours if ci.gi.key == gi_key))
            by_ids.setdefault((gi_key[0], ids), []).append(gi_key[1])
        for (gpu, ids), gi_ids in by_ids.items():  # GIs holding the same CI ids: one exact -gi … -ci … -dci
            step = Step("destroy-ci", gpu, gis=tuple(gi_ids), cis=ids)
            self._ran(step, self.smi.destroy_ci(gpu, gi=gi_ids, ci=list(ids)))
        empty = []
        for gi in gis:
            if not self.now.holds(gi):
                continue
            others = self.now.cis_in(gi)
            if others:
                held = ", ".join(str(ci.id) for ci in others)
                self.left.append(
                    f"{_describe(gi)}: apply created it, but it holds compute instance(s) {held} of someone else"
                )
            else:
                empty.append(gi)
        for gpu in dict.fromkeys(gi.gpu for gi in empty):
            ids = tuple(gi.id for gi in empty if gi.gpu == gpu)
            self._ran(Step("destroy-gi", gpu, gis=ids), self.smi.destroy_gi(gpu, gi=list(ids)))

    def _cis_of(self, gi: _Gi) -> list[_Ci]:
        """The compute instances apply destroyed in ``gi`` and has not made again."""
        return [ci for undo in self.log for ci in undo.destroyed_cis if ci.gi == gi and ci.key not in self._remade_cis]

    def _remake(self, gis: Sequence[_Gi]) -> None:
        known = [gi for gi in gis if gi.name]
        self.left.extend(
            f"{_describe(gi)}: apply destroyed it without having seen its profile" for gi in gis if not gi.name
        )
        for gpu in dict.fromkeys(gi.gpu for gi in known):
            on_gpu = sorted((gi for gi in known if gi.gpu == gpu), key=lambda gi: gi.start)
            default = [gi for gi in on_gpu if [ci.name for ci in self._cis_of(gi)] == [gi.name]]
            custom = [gi for gi in on_gpu if gi not in default]
            for group, with_default in ((default, True), (custom, False)):
                if not group:
                    continue
                items = tuple(f"{gi.name}:{gi.start}" for gi in group)
                step = Step("create-gi", gpu, profiles=items, default_ci=with_default)
                made = self._ran(step, self.smi.create_gi(gpu, [_item(item) for item in items], ci=with_default))
                for gi, result in zip(group, made):
                    assert isinstance(result, CreatedGpuInstance)  # noqa: S101  # what create_gi returns
                    self._remade[gi.key] = attrs.evolve(gi, id=result.id)
                    if with_default:
                        self._remade_cis.update(ci.key for ci in self._cis_of(gi))
            for gi in custom:
                if gi.key in self._remade:
                    self._make_cis(self._remade[gi.key], self._cis_of(gi))

    def _remake_cis(self, cis: Sequence[_Ci]) -> None:
        for gi in dict.fromkeys(ci.gi for ci in cis):
            waiting = [ci for ci in cis if ci.gi == gi and ci.key not in self._remade_cis]
            if not waiting:
                continue
            if not self.now.holds(gi):
                names = ", ".join(ci.name or str(ci.id) for ci in waiting)
                self.left.append(f"{_describe(gi)}: gone, so its compute instances {names} cannot be made again")
                continue
            self._make_cis(gi, waiting)

    def _make_cis(self, gi: _Gi, cis: Sequence[_Ci]) -> None:
        unknown = [ci for ci in cis if not ci.name]
        self.left.extend(f"{_describe(ci)}: apply destroyed it without having seen its profile" for ci in unknown)
        names = sorted((ci.name for ci in cis if ci.name), key=lambda name: -_ci_slices(name))  # as plan does
        if names:
            step = Step("create-ci", gi.gpu, gis=(gi.id,), profiles=tuple(names))
            self._ran(step, self.smi.create_ci(gi.gpu, gi.id, names))
        self._remade_cis.update(ci.key for ci in cis)

    def _set_mode(self, gpu: int, enabled: bool) -> None:
        step = Step("disable-mig" if enabled else "enable-mig", gpu)
        self._ran(step, self.smi.disable_mig(gpu) if enabled else self.smi.enable_mig(gpu))

    def _ran(self, step: Step, results: Sequence[object]) -> Sequence[object]:
        """Record a step of the rollback and keep ``now`` up to date with what it did."""
        self.restored.append(step)
        starts = [_item(item)[1] for item in step.profiles] if step.action == "create-gi" else []
        for position, result in enumerate(results):
            if isinstance(result, DestroyedComputeInstance):
                self.now.cis.pop((result.gpu, result.gi, result.id), None)
            elif isinstance(result, DestroyedGpuInstance):
                self.now.gis.pop((result.gpu, result.id), None)
            elif isinstance(result, CreatedGpuInstance) and position < len(starts):
                name = short_profile_name(result.profile_name)
                gi = _Gi(step.gpu, result.id, result.profile_id, name, starts[position])
                self.now.gis[gi.key] = gi
                for ci in result.compute_instances:
                    made = _Ci(gi, ci.id, ci.profile_id, short_profile_name(ci.profile_name))
                    self.now.cis[made.key] = made
            elif isinstance(result, CreatedComputeInstance) and (step.gpu, result.gi) in self.now.gis:
                made = _Ci(
                    self.now.gis[(step.gpu, result.gi)],
                    result.id,
                    result.profile_id,
                    short_profile_name(result.profile_name),
                )
                self.now.cis[made.key] = made
        return results


def _describe(instance: _Gi | _Ci) -> str:
    if isinstance(instance, _Ci):
        return f"GPU {instance.gi.gpu}: compute instance {instance.id} in GPU instance {instance.gi.id}"
    return f"GPU {instance.gpu}: GPU instance {instance.id}" + (
        f" ({instance.name} at {instance.start})" if instance.name else ""
    )


def _gpu_specs(gpu: int, gis: Sequence[GpuInstance], cis: Sequence[ComputeInstance]) -> tuple[GiSpec, ...]:
    """One GPU's instances as GiSpecs at their placements; a lone full-size CI is the default (None)."""
    specs = []
    for gi in sorted((gi for gi in gis if gi.gpu == gpu), key=lambda gi: gi.placement.start):
        # Early drivers print no CI placement: creation order (the CI id) is then the best order there is.
        own = sorted(
            (ci for ci in cis if ci.gpu == gpu and ci.gi == gi.id),
            key=lambda ci: (ci.placement.start, ci.id) if ci.placement is not None else (ci.id, ci.id),
        )
        names = tuple(ci.short_name for ci in own)
        specs.append(GiSpec(gi.short_name, gi.placement.start, None if names == (gi.short_name,) else names))
    return tuple(specs)


def apply(
    layout: Layout,
    *,
    dry_run: bool = False,
    force: bool = False,
    rollback: bool = True,
    smi: Smi | None = None,
) -> ApplyResult:
    """Bring the node to ``layout``; a second call with the same layout changes nothing.

    Whatever stops it once a step has run — nvidia-smi refusing, a timeout, output smimig cannot read, any
    other :class:`~smimig.SmimigError`, Ctrl-C (``KeyboardInterrupt``) or SIGTERM — the rollback undoes
    exactly the steps this apply ran, last first (unless ``rollback=False``): it destroys what apply created
    (by the ids nvidia-smi reported, checked against the node first), makes again what it destroyed at the
    same placement with the same compute instances, and sets MIG mode back. It never destroys anything apply
    did not create, such as an instance someone else created meanwhile. Then :class:`ApplyError` says what
    stopped it (``failure``), what ran, what the rollback restored, what it left and why, and the state now.

    Signals (in the main thread only, where Python runs handlers): for the duration of apply, SIGTERM raises
    :class:`~smimig.Terminated` (the previous handler is put back afterwards), so that a polite kill rolls
    back as Ctrl-C does; the rollback itself runs with SIGINT, SIGTERM and SIGHUP held back, so a second
    Ctrl-C (or a closed terminal) cannot cut it short: one that arrives is raised once the rollback is done,
    chained to the ApplyError.

    The whole apply, rollback included, holds the node lock (:mod:`smimig.locking`): leases and other applies
    wait for it. Like a lease, apply first reclaims orphaned leases (each said as a
    :class:`~smimig.leasing.LeaseWarning`). An instance a lease still holds (:mod:`smimig.ledger`) is not the
    layout's: it is left alone while the layout fits around it, and a live lease's is treated as a busy one
    when it is in the way; with ``force`` every leased instance is planned away (see :func:`plan`).

    Raises:
        LayoutError: the layout cannot be realised (nothing is changed).
        InstanceBusy: processes run on, or live leases hold, instances the plan would destroy (unless
            ``force``; nothing is changed). A dry run says so in its ``refusal`` instead.
        ApplyError: something stopped it once a step had run (a GPU that turned out not to fit the layout
            once MIG was on, the node not matching it afterwards, ssh dropping, Ctrl-C): ``ran`` and
            ``restored`` say what changed.
    """
    smi = smi or default_client()
    from smimig.locking import node_lock  # noqa: PLC0415  # the lock is taken only by what changes the node

    # The node lock for the whole apply, rollback included: leases and other applies wait, reads do not.
    with node_lock(smi=smi), interrupts.raising(signal.SIGTERM):
        if not dry_run:
            _reclaim_orphans(smi)
        state = _with_claims(smi, read_node(smi), force=force)
        first = _plan(layout, state)
        if first.is_noop:
            return ApplyResult(first, (), (), layout, dry_run=dry_run)
        leased = _leased(smi, first)
        first = attrs.evolve(first, leased=tuple(leased))
        busy = _busy(smi, first)
        refused = InstanceBusy(busy, leased) if (busy or leased) and not force else None
        if dry_run:
            return ApplyResult(first, (), (), None, dry_run=True, refusal=str(refused) if refused else None)
        if refused is not None:
            raise refused
        changes = _Changes(smi, state)
        try:
            return _apply(changes, layout, first, force=force)
        except (SmimigError, KeyboardInterrupt, Terminated) as failure:
            if not changes.started:
                raise  # stopped before any step: nothing to undo, and the caller can tell
            report = _roll_back(changes, failure, rollback)
            if isinstance(report, ApplyError):
                raise report from failure
            raise report from report.__cause__  # an interruption held back during the rollback, after it


def _roll_back(changes: _Changes, failure: BaseException, rollback: bool) -> BaseException:
    """Undo ``changes`` (unless not ``rollback``) and read the state; the error to raise: an ApplyError, or an
    interruption held back meanwhile, chained to it."""
    smi = changes.smi
    restored: list[Step] = []
    left: list[str] = []
    rollback_failure: SmimigError | None = None
    # SIGHUP too: the smimig command raises it as it does SIGTERM (a closed terminal must not cut a rollback short)
    with interrupts.deferring(signal.SIGINT, signal.SIGTERM, signal.SIGHUP) as deferred:
        if rollback:
            undo: _Rollback | None = None
            try:
                now = _View.read(smi)
                changes.reconcile(now)
                undo = _Rollback(smi, now, changes.log)
                undo.run()
            except SmimigError as error:
                rollback_failure = error
            if undo is not None:
                restored, left = undo.restored, undo.left
        try:
            state: Layout | None = export(smi=smi)
        except SmimigError:
            state = None
    report = ApplyError(failure, changes.ran, restored, rollback_failure, state, rolled_back=rollback, left=left)
    held_back = deferred.exception()
    if held_back is not None and not report.interrupted:
        held_back.__cause__ = report
        return held_back
    return report


def _made(changes: _Changes) -> frozenset[tuple[int, int]]:
    """The GPU instances (gpu, gi) this apply has created so far: a lease's claim on one is stale."""
    return frozenset((gi.gpu, gi.id) for undo in changes.log for gi in undo.created)


def _apply(changes: _Changes, layout: Layout, first: Plan, *, force: bool) -> ApplyResult:
    smi = changes.smi
    changes.run(first.steps)
    waiting = {change.gpu for change in changes.pending}
    deferred = {gpu.gpu for gpu in first.gpus if gpu.deferred and gpu.gpu not in waiting}
    if deferred:
        # MIG just came on: the profiles can be read now, so check and plan those GPUs (only those: the others
        # are done), with the leases and processes seen and refused as the first plan's were.
        rest = Layout({gpu: gis for gpu, gis in layout.gpus.items() if gpu in deferred})
        state = _with_claims(smi, read_node(smi), force=force, made=_made(changes))
        changes.reread(state)
        try:
            rest_plan = _plan(rest, state)
        except LayoutError as error:
            raise LayoutError(
                f"{error.reason} (found once MIG was on: with MIG off this driver lists no profiles)",
                error.suggestions,
                maps=error.suggestion_maps,
            ) from error
        leased, busy = _leased(smi, rest_plan), _busy(smi, rest_plan)
        if (busy or leased) and not force:
            raise InstanceBusy(busy, leased)
        changes.run(rest_plan.steps)
        waiting = {change.gpu for change in changes.pending}
    settled = Layout({gpu: gis for gpu, gis in layout.gpus.items() if gpu not in waiting})
    # The layout holds if its own instances are all there: leases' instances left alone (a forced apply's are
    # gone; a lease orphaned meanwhile is still a lease's), claims on instances this apply made set aside.
    check = _plan(settled, _with_claims(smi, read_node(smi), force=False, made=_made(changes)))
    if not check.is_noop:
        raise LayoutError(f"after applying, the GPUs still differ from the layout:\n{check}")
    return ApplyResult(first, tuple(changes.ran), tuple(changes.pending), export(smi=smi))


def export(*, smi: Smi | None = None) -> Layout:
    """The node's MIG state as a Layout, with explicit placements: ``apply(export())`` changes nothing.

    Instances leases hold (live or orphaned) are not part of it: they are not the node's layout, and go when
    their leases end (apply leaves the live ones alone and reclaims the orphans).
    """
    smi = smi or default_client()
    modes, listed, cis = smi.gather(smi.mig_mode, smi.list_gis, smi.list_cis)
    gis: Sequence[GpuInstance] = listed
    if gis:
        claimed = _claimed_instances(smi)
        gis = [gi for gi in gis if (gi.gpu, gi.id, gi.placement, gi.name) not in claimed]
    return Layout(
        {mode.gpu: (_gpu_specs(mode.gpu, gis, cis) if mode.current else None) for mode in modes if mode.supported}
    )


def load_layout(path: str | Path, *, config: str | None = None, smi: Smi | None = None) -> Layout:
    """A layout from a JSON/YAML file, or from a mig-parted config file and the name of one of its configs.

    A mig-parted config selects GPUs by index and PCI device id, so resolving one asks the node for them
    (``--query-gpu=index,pci.device_id,pci.sub_device_id``).
    """
    text = read_file(path)
    if "mig-configs" not in text:
        return Layout.loads(text, config=config)
    ids = (smi or default_client()).pci_ids()
    devices = [MigPartedDevice(row.gpu, row.device_id, row.subsystem_id) for row in ids]
    return Layout.loads(text, config=config, devices=devices)
