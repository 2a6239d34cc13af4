"""plan, apply, export: bring GPUs to a :class:`~smimig.layout.Layout`, explaining what cannot be done.

``plan`` reads the node once (one call per listing, not per GPU), keeps the instances that already match,
places the new ones with a search that finds a packing whenever one exists, and lists the fewest steps.
``apply`` runs them through the normal operations, refusing to destroy an instance a process runs on,
then reads the node again and checks it matches. ``export`` is the node's state as a Layout.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Literal, get_args

import attrs

from smimig.client import Smi, default_client
from smimig.errors import ApplyError, InstanceBusy, LayoutError, MigOperationError, SmimigError
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
from smimig.models import (
    ComputeInstance,
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


@attrs.frozen
class Step:
    """One mutating nvidia-smi call of a plan."""

    action: StepAction = attrs.field(validator=attrs.validators.in_(STEP_ACTIONS))
    gpu: int
    gis: tuple[int, ...] = ()  # destroy-ci/destroy-gi: the GPU instance ids
    profiles: tuple[str, ...] = ()  # create-gi: "profile:start" items; create-ci: CI profiles
    default_ci: bool = False  # create-gi with -C
    gi_start: int | None = None  # create-ci: the new GPU instance, by its placement start

    def __str__(self) -> str:
        selected = ",".join(map(str, self.gis))
        if self.action == "destroy-ci":
            return f"nvidia-smi mig -i {self.gpu} -gi {selected} -dci"
        if self.action == "destroy-gi":
            return f"nvidia-smi mig -i {self.gpu} -gi {selected} -dgi"
        if self.action in ("enable-mig", "disable-mig"):
            return f"nvidia-smi -i {self.gpu} -mig {1 if self.action == 'enable-mig' else 0}"
        if self.action == "create-gi":
            return f"nvidia-smi mig -i {self.gpu} -cgi {','.join(self.profiles)}" + (" -C" if self.default_ci else "")
        return f"nvidia-smi mig -i {self.gpu} -gi <the GI at slice {self.gi_start}> -cci {','.join(self.profiles)}"


@attrs.frozen
class GpuPlan:
    """What happens to one GPU: instances kept, destroyed and created, and the steps."""

    gpu: int
    keep: tuple[GpuInstance, ...]
    destroy: tuple[GpuInstance, ...]
    create: tuple[GiSpec, ...]  # with explicit placements
    steps: tuple[Step, ...]
    deferred: bool = False  # MIG is off and its profiles are unknown until it is on: planned at apply


@attrs.frozen
class Plan:
    """The steps that bring the node to ``layout``; empty when it is there already."""

    layout: Layout
    gpus: tuple[GpuPlan, ...]
    reads: int  # nvidia-smi calls made to plan

    @property
    def steps(self) -> tuple[Step, ...]:
        return tuple(step for gpu in self.gpus for step in gpu.steps)

    @property
    def is_noop(self) -> bool:
        return not self.steps and not any(gpu.deferred for gpu in self.gpus)

    def __str__(self) -> str:
        if self.is_noop:
            return "nothing to do: the GPUs already match the layout"
        lines = []
        for gpu in self.gpus:
            if not gpu.steps and not gpu.deferred:
                continue
            lines.append(
                f"GPU {gpu.gpu}: keep {len(gpu.keep)}, destroy {len(gpu.destroy)}, create {len(gpu.create)}"
                + (" (the rest is planned once MIG is on)" if gpu.deferred else "")
            )
            lines.extend(f"  {step}" for step in gpu.steps)
        return "\n".join(lines)


@attrs.frozen
class ApplyResult:
    """What ``apply`` did: the plan, the steps that ran, MIG mode changes left pending, the state now."""

    plan: Plan
    ran: tuple[Step, ...]
    pending: tuple[MigModeChange, ...]
    state: Layout | None
    dry_run: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.ran)

    def __str__(self) -> str:
        if self.dry_run:
            return f"dry run, nothing changed:\n{self.plan}"
        lines = [f"ran {len(self.ran)} step(s)" if self.ran else "nothing to do: already as the layout says"]
        lines.extend(f"  {step}" for step in self.ran)
        for change in self.pending:
            lines.append(
                f"GPU {change.gpu}: MIG {'enable' if change.enabled else 'disable'} is pending"
                f" ({change.reason or 'needs a GPU reset'}): its instances wait until it takes effect"
            )
        return "\n".join(lines)


# -- reading the node -------------------------------------------------------------------------------


@attrs.frozen
class OfferedProfile:
    """A GPU instance profile one GPU offers: as ``-lgip`` lists it, with its geometry (``-lgipp``'s starts)."""

    profile: GpuInstanceProfile
    geometry: ProfileGeometry

    @classmethod
    def of(cls, profile: GpuInstanceProfile, placements: Sequence[Placement]) -> OfferedProfile:
        """``profile`` with its possible ``placements``; size 0 and no starts when nvidia-smi lists none."""
        size = placements[0].size if placements else 0
        starts = tuple(placement.start for placement in placements)
        return cls(
            profile, ProfileGeometry(profile.id, profile.short_name, size, starts, profile.total, profile.ofa > 0)
        )

    def names(self) -> tuple[str, ...]:
        """What a layout may call it: its id, full name or short name."""
        return (str(self.profile.id), self.profile.name, self.profile.short_name)


@attrs.frozen
class NodeState:
    """The node as one read sees it: MIG modes, instances, and the profiles each GPU offers (``tables``)."""

    modes: Mapping[int, MigMode]
    gis: tuple[GpuInstance, ...]
    cis: tuple[ComputeInstance, ...]
    tables: Mapping[int, tuple[OfferedProfile, ...]]
    reads: int  # nvidia-smi calls made


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


def _suggest(table: Sequence[OfferedProfile], infos: list[OfferedProfile], slices: int) -> list[str]:
    """Close layouts that fit: one GI fewer, or one GI one size smaller."""
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
            found.append("[" + ", ".join(names) + "]")
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
    current = [gi for gi in state.gis if gi.gpu == gpu]
    cis_of = {gi.id: [ci for ci in state.cis if ci.gpu == gpu and ci.gi == gi.id] for gi in current}
    steps: list[Step] = []

    def destroy(gis: Sequence[GpuInstance]) -> None:
        with_cis = tuple(gi.id for gi in gis if cis_of.get(gi.id))
        if with_cis:
            steps.append(Step("destroy-ci", gpu, gis=with_cis))
        if gis:
            steps.append(Step("destroy-gi", gpu, gis=tuple(gi.id for gi in gis)))

    if desired is None:
        destroy(current)
        if mode.current or mode.pending:
            steps.append(Step("disable-mig", gpu))
        return GpuPlan(gpu, (), tuple(current), (), tuple(steps))
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
        raise LayoutError(f"GPU {gpu}: {problem}", _suggest(table, infos, slices))

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
                if gi.profile_id == info.profile.id
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
    packing = _pack(table, keep, new)
    if packing.starts is None and keep:  # what is kept may be in the way: start over on this GPU
        remaining, keep, new = list(current), [], list(resolved)
        packing = _pack(table, keep, new)
    starts = packing.starts
    if starts is None:
        raise LayoutError(f"GPU {gpu}: no arrangement fits: {packing.why}", _suggest(table, infos, slices))
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
    return GpuPlan(gpu, tuple(gi for gi, _ in keep), tuple(remaining), tuple(created), tuple(steps))


def _plan(layout: Layout, state: NodeState) -> Plan:
    return Plan(layout, tuple(_plan_gpu(gpu, gis, state) for gpu, gis in layout.gpus.items()), state.reads)


def plan(layout: Layout, *, smi: Smi | None = None) -> Plan:
    """The steps that bring the node to ``layout``, checked against each GPU's profiles and placements.

    Raises:
        LayoutError: the layout cannot be realised; it says why and suggests layouts that fit.
    """
    return _plan(layout, read_node(smi or default_client()))


# -- applying ---------------------------------------------------------------------------------------


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


def _run_steps(smi: Smi, steps: Iterable[Step], ran: list[Step], pending: list[MigModeChange]) -> None:
    skip: set[int] = set()
    new_gi_ids: dict[tuple[int, int], int] = {}
    for step in steps:
        if step.gpu in skip:
            continue
        if step.action == "destroy-ci":
            smi.destroy_ci(step.gpu, gi=list(step.gis))
        elif step.action == "destroy-gi":
            smi.destroy_gi(step.gpu, gi=list(step.gis))
        elif step.action in ("enable-mig", "disable-mig"):
            changes = smi.enable_mig(step.gpu) if step.action == "enable-mig" else smi.disable_mig(step.gpu)
            late = [change for change in changes if change.pending]
            if late:
                pending.extend(late)
                skip.add(step.gpu)
        elif step.action == "create-gi":
            items = [(item.rpartition(":")[0], int(item.rpartition(":")[2])) for item in step.profiles]
            created = smi.create_gi(step.gpu, items, ci=step.default_ci)
            for (_, start), gi in zip(items, created):
                new_gi_ids[(step.gpu, start)] = gi.id
        else:  # "create-ci": Step's validator admits nothing else
            gi_id = new_gi_ids[(step.gpu, step.gi_start or 0)]
            smi.create_ci(step.gpu, gi_id, list(step.profiles))
        ran.append(step)


def _layout_of(state: NodeState, gpus: Iterable[int]) -> Layout:
    """The state read for a plan, as a Layout of ``gpus`` (explicit placements and CIs): what rollback restores."""
    specs: dict[int, tuple[GiSpec, ...] | None] = {}
    for gpu in gpus:
        mode = state.modes.get(gpu)
        if mode is None or not mode.supported:
            continue
        specs[gpu] = None if not mode.current else _gpu_specs(gpu, state.gis, state.cis)
    return Layout(specs)


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

    When nvidia-smi refuses a step part-way, the starting layout is restored as far as it can be (same
    profiles at the same placements; ids may differ) unless ``rollback=False``, and :class:`ApplyError`
    says what failed, what ran, what the rollback restored and what the node looks like now.

    Raises:
        LayoutError: the layout cannot be realised (nothing is changed).
        InstanceBusy: processes run on instances the plan would destroy (unless ``force``; nothing is changed).
        ApplyError: nvidia-smi refused a step, or anything failed once a step had run (a GPU that turned
            out not to fit the layout once MIG was on, the node not matching it afterwards, ssh dropping):
            ``ran`` and ``restored`` say what changed.
    """
    smi = smi or default_client()
    state = read_node(smi)
    first = _plan(layout, state)
    ran: list[Step] = []
    try:
        return _apply(smi, layout, first, ran, dry_run=dry_run, force=force)
    except SmimigError as failure:
        if not ran and not isinstance(failure, MigOperationError):
            raise  # refused before any step ran: nothing to restore, and the caller can tell
        restored: list[Step] = []
        rollback_failure: SmimigError | None = None
        if rollback:
            try:
                _run_steps(smi, plan(_layout_of(state, layout.gpus), smi=smi).steps, restored, [])
            except SmimigError as error:
                rollback_failure = error
        try:
            now: Layout | None = export(smi=smi)
        except SmimigError:
            now = None
        raise ApplyError(failure, ran, restored, rollback_failure, now, rolled_back=rollback) from failure


def _apply(smi: Smi, layout: Layout, first: Plan, ran: list[Step], *, dry_run: bool, force: bool) -> ApplyResult:
    if dry_run:
        return ApplyResult(first, (), (), None, dry_run=True)
    if first.is_noop:
        return ApplyResult(first, (), (), layout)
    busy = _busy(smi, first)
    if busy and not force:
        raise InstanceBusy(busy)
    pending: list[MigModeChange] = []
    _run_steps(smi, first.steps, ran, pending)
    waiting = {change.gpu for change in pending}
    if any(gpu.deferred for gpu in first.gpus if gpu.gpu not in waiting):
        # MIG just came on: the profiles can be read now, so plan the rest of those GPUs.
        rest = Layout({gpu: gis for gpu, gis in layout.gpus.items() if gpu not in waiting})
        _run_steps(smi, plan(rest, smi=smi).steps, ran, pending)
        waiting = {change.gpu for change in pending}
    settled = Layout({gpu: gis for gpu, gis in layout.gpus.items() if gpu not in waiting})
    check = plan(settled, smi=smi)
    if not check.is_noop:
        raise LayoutError(f"after applying, the GPUs still differ from the layout:\n{check}")
    return ApplyResult(first, tuple(ran), tuple(pending), export(smi=smi))


def export(*, smi: Smi | None = None) -> Layout:
    """The node's MIG state as a Layout, with explicit placements: ``apply(export())`` changes nothing."""
    smi = smi or default_client()
    modes, gis, cis = smi.gather(smi.mig_mode, smi.list_gis, smi.list_cis)
    return Layout(
        {mode.gpu: (_gpu_specs(mode.gpu, gis, cis) if mode.current else None) for mode in modes if mode.supported}
    )


def load_layout(path: str | Path, *, config: str | None = None, smi: Smi | None = None) -> Layout:
    """A layout from a JSON/YAML file, or from a mig-parted config file and the name of one of its configs.

    A mig-parted config selects GPUs by index and PCI device id, so resolving one asks the node for them
    (``--query-gpu=index,pci.device_id``).
    """
    text = read_file(path)
    if "mig-configs" not in text:
        return Layout.loads(text, config=config)
    ids = (smi or default_client()).pci_device_ids()
    devices = [MigPartedDevice(index, device_id) for index, device_id in ids.items()]
    return Layout.loads(text, config=config, devices=devices)
