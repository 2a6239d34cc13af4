"""plan, apply, export: bring GPUs to a :class:`~smimig.layout.Layout`, explaining what cannot be done.

``plan`` reads the node once (one call per listing, not per GPU), keeps the instances that already match,
places the new ones with a search that finds a packing whenever one exists, and lists the fewest steps.
``apply`` runs them through the normal operations, refusing to destroy an instance a process runs on,
then reads the node again and checks it matches. ``export`` is the node's state as a Layout.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal, get_args

import attrs

from smimig.client import Smi, default_client
from smimig.errors import ApplyError, InstanceBusy, LayoutError, MigOperationError, SmimigError
from smimig.layout import GiSpec, Layout, MigPartedDevice, short_profile_name
from smimig.models import (
    ComputeInstance,
    GpuInstance,
    GpuInstanceProfile,
    GpuProcess,
    MigMode,
    MigModeChange,
)

__all__ = ["ApplyResult", "GpuPlan", "Plan", "Step", "apply", "export", "load_layout", "plan"]


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
class _ProfileInfo:
    profile: GpuInstanceProfile
    starts: tuple[int, ...]
    size: int

    def names(self) -> tuple[str, ...]:
        return (str(self.profile.id), self.profile.name, self.profile.short_name)


@attrs.frozen
class _NodeState:
    modes: dict[int, MigMode]
    gis: list[GpuInstance]
    cis: list[ComputeInstance]
    tables: dict[int, list[_ProfileInfo]]
    reads: int


def _read(smi: Smi) -> _NodeState:
    mode_list, gis, cis, profiles, placements = smi.gather(  # independent reads, issued at once
        smi.mig_mode, smi.list_gis, smi.list_cis, smi.list_gi_profiles, smi.list_gi_placements
    )
    modes = {mode.gpu: mode for mode in mode_list}
    by_key = {(p.gpu, p.profile_id): p.placements for p in placements}
    tables: dict[int, list[_ProfileInfo]] = {}
    for profile in profiles:
        spots = by_key.get((profile.gpu, profile.id), ())
        size = spots[0].size if spots else 0
        tables.setdefault(profile.gpu, []).append(_ProfileInfo(profile, tuple(spot.start for spot in spots), size))
    return _NodeState(modes, list(gis), list(cis), tables, reads=5)


# -- placing ----------------------------------------------------------------------------------------


def _overlaps(start: int, size: int, other: int, other_size: int) -> bool:
    return start < other + other_size and other < start + size


def _ci_slices(name: str, gi_slices: int) -> int:
    match = re.match(r"(?:MIG )?([0-9]+)c\.", name)
    return int(match.group(1)) if match else gi_slices


def _resolve(table: list[_ProfileInfo], spec: GiSpec, gpu: int) -> _ProfileInfo:
    for info in table:
        if spec.profile in info.names():
            return info
    offered = ", ".join(info.profile.short_name for info in table)
    raise LayoutError(f"GPU {gpu}: no GPU instance profile {spec.profile!r}; it offers {offered}")


def _expected_cis(spec: GiSpec, info: _ProfileInfo) -> list[str]:
    if spec.cis is None:
        return [info.profile.short_name]
    return sorted(short_profile_name(ci) for ci in spec.cis)


def _check_cis(spec: GiSpec, info: _ProfileInfo, gpu: int) -> None:
    slices = info.profile.slices or 1
    used = 0
    for ci in spec.cis or ():
        short = short_profile_name(ci)
        match = re.fullmatch(r"([0-9]+)c\.(.+)", short)
        if short != info.profile.short_name and (match is None or match.group(2) != info.profile.short_name):
            raise LayoutError(
                f"GPU {gpu}: compute instance {ci!r} does not belong in a {info.profile.short_name} GPU instance"
            )
        used += _ci_slices(short, slices)
    if used > slices:
        raise LayoutError(
            f"GPU {gpu}: compute instances {', '.join(spec.cis or ())} need {used} compute slices; "
            f"a {info.profile.short_name} GPU instance has {slices}"
        )


def _blocking(table: list[_ProfileInfo], taken: list[tuple[int, int]], start: int, size: int) -> int:
    """How many still-free placements of any profile a GI at ``start`` would block (fewer is better)."""
    return sum(
        1
        for info in table
        for other in info.starts
        if not any(_overlaps(other, info.size, held, held_size) for held, held_size in taken)
        and _overlaps(start, size, other, info.size)
    )


@attrs.define
class _Search:
    table: list[_ProfileInfo]
    deepest: int = 0
    blocked_by: str = ""

    def place(
        self, pending: list[tuple[GiSpec, _ProfileInfo]], taken: list[tuple[int, int]], depth: int = 0
    ) -> list[int] | None:
        """Starts for ``pending`` (in order) that overlap nothing in ``taken``; None if there are none."""
        if not pending:
            return []
        (spec, info), rest = pending[0], pending[1:]
        starts = [spec.placement] if spec.placement is not None else list(info.starts)
        free = [s for s in starts if not any(_overlaps(s, info.size, h, hs) for h, hs in taken)]
        free.sort(key=lambda s: (_blocking(self.table, taken, s, info.size), s))
        for start in free:
            found = self.place(rest, [*taken, (start, info.size)], depth + 1)
            if found is not None:
                return [start, *found]
        if depth >= self.deepest:
            self.deepest = depth
            held = ", ".join(f"{h}-{h + hs - 1}" for h, hs in sorted(taken)) or "none"
            self.blocked_by = (
                f"{info.profile.short_name} needs slices {', '.join(f'{s}-{s + info.size - 1}' for s in starts)}"
                f" (one of them), but slices {held} are taken"
            )
        return None


def _pack(
    gpu: int,
    table: list[_ProfileInfo],
    keep: list[tuple[GpuInstance, _ProfileInfo]],
    new: list[tuple[GiSpec, _ProfileInfo]],
) -> tuple[list[int] | None, str]:
    taken = [(gi.placement.start, info.size) for gi, info in keep]
    ordered = sorted(range(len(new)), key=lambda i: (new[i][0].placement is None, -new[i][1].size, i))
    search = _Search(table)
    starts = search.place([new[i] for i in ordered], taken)
    if starts is None:
        return None, search.blocked_by
    result = [0] * len(new)
    for position, index in enumerate(ordered):
        result[index] = starts[position]
    return result, ""


def _check_limits(gpu: int, infos: Sequence[_ProfileInfo], slices: int) -> str:
    counts = Counter(info.profile.id for info in infos)
    for info in {info.profile.id: info for info in infos}.values():
        if counts[info.profile.id] > info.profile.total:
            return (
                f"GPU {gpu}: {counts[info.profile.id]} x {info.profile.short_name}, "
                f"but at most {info.profile.total} fit (Total {info.profile.total})"
            )
    media = [info for info in infos if info.profile.ofa > 0]
    if len(media) > 1:
        names = ", ".join(info.profile.short_name for info in media)
        return f"GPU {gpu}: {names} each need the GPU's one optical-flow engine (OFA); only one can have it"
    needed = sum(info.size for info in infos)
    if needed > slices:
        return f"GPU {gpu}: the layout needs {needed} memory slices; the GPU has {slices}"
    return ""


def _feasible(gpu: int, table: list[_ProfileInfo], infos: list[_ProfileInfo], slices: int) -> bool:
    if _check_limits(gpu, infos, slices):
        return False
    starts, _ = _pack(gpu, table, [], [(GiSpec(str(info.profile.id)), info) for info in infos])
    return starts is not None


def _suggest(gpu: int, table: list[_ProfileInfo], infos: list[_ProfileInfo], slices: int) -> list[str]:
    """Close layouts that fit: one GI fewer, or one GI one size smaller."""
    smaller = sorted(table, key=lambda info: (-info.size, -info.profile.memory_gib))
    candidates: list[list[_ProfileInfo]] = []
    for position, info in enumerate(infos):
        candidates.append(infos[:position] + infos[position + 1 :])
        for other in smaller:
            if other.size < info.size and other.profile.ofa <= info.profile.ofa:
                candidates.append([*infos[:position], other, *infos[position + 1 :]])
                break
    seen: set[tuple[str, ...]] = set()
    found = []
    for candidate in sorted(candidates, key=lambda c: -sum(info.size for info in c)):
        names = tuple(sorted((info.profile.short_name for info in candidate), reverse=True))
        if names in seen or not candidate:
            continue
        seen.add(names)
        if _feasible(gpu, table, candidate, slices):
            found.append("[" + ", ".join(names) + "]")
        if len(found) == 3:
            break
    return found


# One story, told in order: mode, resolve, check, keep, place, steps.
def _plan_gpu(gpu: int, desired: tuple[GiSpec, ...] | None, state: _NodeState) -> GpuPlan:  # noqa: PLR0912, PLR0915
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
    resolved = [(spec, _resolve(table, spec, gpu)) for spec in desired]
    for spec, info in resolved:
        if spec.placement is not None and spec.placement not in info.starts:
            allowed = ", ".join(map(str, info.starts))
            raise LayoutError(
                f"GPU {gpu}: {info.profile.short_name} cannot start at slice {spec.placement}; "
                f"allowed starts: {allowed}"
            )
        _check_cis(spec, info, gpu)
    slices = max((start + info.size for info in table for start in info.starts), default=0)
    infos = [info for _, info in resolved]
    problem = _check_limits(gpu, infos, slices)
    if problem:
        raise LayoutError(problem, _suggest(gpu, table, infos, slices))

    # Keep what matches (explicit placements first, so a floating spec cannot take their GI).
    remaining = list(current)
    keep: list[tuple[GpuInstance, _ProfileInfo]] = []
    new: list[tuple[GiSpec, _ProfileInfo]] = []
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
    starts, why = _pack(gpu, table, keep, new)
    if starts is None and keep:  # what is kept may be in the way: start over on this GPU
        remaining, keep, new = list(current), [], list(resolved)
        starts, why = _pack(gpu, table, keep, new)
    if starts is None:
        raise LayoutError(f"GPU {gpu}: no arrangement fits: {why}", _suggest(gpu, table, infos, slices))
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
        for spec, (_, info) in zip(custom, [pair for pair in new if pair[0].cis is not None]):
            if spec.cis:
                slices_of = info.profile.slices or 1
                ordered = sorted(spec.cis, key=lambda ci: -_ci_slices(short_profile_name(ci), slices_of))
                steps.append(Step("create-ci", gpu, profiles=tuple(ordered), gi_start=spec.placement))
    return GpuPlan(gpu, tuple(gi for gi, _ in keep), tuple(remaining), tuple(created), tuple(steps))


def _plan(layout: Layout, state: _NodeState) -> Plan:
    return Plan(layout, tuple(_plan_gpu(gpu, gis, state) for gpu, gis in layout.gpus.items()), state.reads)


def plan(layout: Layout, *, smi: Smi | None = None) -> Plan:
    """The steps that bring the node to ``layout``, checked against each GPU's profiles and placements.

    Raises:
        LayoutError: the layout cannot be realised; it says why and suggests layouts that fit.
    """
    return _plan(layout, _read(smi or default_client()))


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


def _layout_of(state: _NodeState, gpus: Iterable[int]) -> Layout:
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
        LayoutError: the layout cannot be realised (nothing is changed), or the node does not match it
            after the steps ran.
        InstanceBusy: processes run on instances the plan would destroy (unless ``force``).
        ApplyError: nvidia-smi refused a step.
    """
    smi = smi or default_client()
    state = _read(smi)
    first = _plan(layout, state)
    ran: list[Step] = []
    try:
        return _apply(smi, layout, first, ran, dry_run=dry_run, force=force)
    except MigOperationError as failure:
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
    text = Path(path).read_text(encoding="utf-8")
    if "mig-configs" not in text:
        return Layout.loads(text, config=config)
    ids = (smi or default_client()).pci_device_ids()
    devices = [MigPartedDevice(index, device_id) for index, device_id in ids.items()]
    return Layout.loads(text, config=config, devices=devices)
