"""Leases: a MIG device for exactly as long as you need it, safe when others share the node.

>>> import subprocess
>>> with smimig.lease("1g.10gb") as device:
...     subprocess.run(["python", "train.py"], env=device.env)
CompletedProcess(args=['python', 'train.py'], returncode=0)

``lease`` finds room for the profile (on any GPU in MIG mode unless ``gpu`` says which), creates the GPU
instance at the placement that fragments the GPU least and its compute instance, and on exit (normal,
exception or Ctrl-C) destroys exactly those two, nothing else. When someone outside smimig takes a slot
first ("Insufficient Resources", "In use by another client"), the next placement is tried.

Safe on a shared node:

- **One lock.** Acquire and release each hold the node lock (:mod:`smimig.locking`), as every other change
  smimig makes does, so nothing of smimig's changes the node between a lease's reads and its changes.
- **A ledger.** Before ``-cgi`` runs, the lease is recorded in the ledger beside the lock
  (:mod:`smimig.ledger`) as being created, by this process; then with its GPU instance, its compute
  instance, and its device. ``smimig leases`` lists them. An interrupted acquire destroys what it made (or,
  when it cannot, leaves the entry for :func:`reclaim`).
- **Its own device.** The UUID comes from reads taken under the lock after the create, matched by GI and CI
  ids in one consistent view (:func:`consistent_devices`), never by position between two listings.
- **Identity before destroying.** A release destroys its instances only if they are still the ones it made:
  the same GPU instance id at the same placement with the same profile, the same compute instance, the same
  MIG device UUID. A device that is gone or was replaced is left alone, with a :class:`LeaseWarning`.
- **Orphans.** An entry whose holder no longer runs is an orphan: each lease first reclaims them (under the
  same lock, before choosing a placement), ``smimig reclaim`` / :func:`reclaim` does it on demand, and
  ``smimig doctor`` names them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Callable, Literal

import attrs

from smimig import interrupts
from smimig._repr import AttrsRepr
from smimig.arguments import CiProfileSpec, GiProfileSpec, ci_profile_list, gi_profile_item
from smimig.client import Ids, Smi, default_client, validate_ids
from smimig.errors import (
    LayoutError,
    LeaseError,
    LedgerError,
    MigOperationError,
    NodeLockTimeout,
    SmimigError,
    Terminated,
)
from smimig.geometry import Placement, blocking, free_starts, short_profile_name
from smimig.jobs import device_env
from smimig.ledger import LeaseRecord, Ledger
from smimig.listing import Listing
from smimig.locking import lock_path_for, node_lock
from smimig.models import ComputeInstance, CreatedGpuInstance, GpuInstance
from smimig.node_status import MigDeviceInfo, build_devices
from smimig.planner import read_node, resolve_profile

__all__ = [
    "Lease",
    "LeaseWarning",
    "ReclaimAction",
    "ReclaimOutcome",
    "ReclaimReport",
    "consistent_devices",
    "lease",
    "leases",
    "reclaim",
    "reclaim_first",
    "record_job",
]

_RETRY_REASONS = ("Insufficient Resources", "In use by another client")


class LeaseWarning(UserWarning):
    """A release found its device gone or replaced and destroyed nothing, or a lease reclaimed an orphan.

    The ``smimig`` command prints each as a ``smimig:`` line on stderr.
    """


@attrs.frozen(repr=False)
class Lease(AttrsRepr):
    """A leased MIG device: where it is and the environment that puts a process on it."""

    gpu: int
    gi: int
    ci: int
    uuid: str
    profile_name: str
    placement: Placement | None = None
    entry: str | None = attrs.field(default=None, repr=False, eq=False)  # its ledger entry

    @property
    def env(self) -> dict[str, str]:
        """This process's environment with ``CUDA_VISIBLE_DEVICES`` set to the device."""
        return device_env(self.uuid)


# -- one consistent view of the node -------------------------------------------------------------------


def consistent_devices(smi: Smi, gpu: Ids = None, *, attempts: int = 5) -> Listing[MigDeviceInfo]:
    """The MIG devices, each with its GI and CI ids and UUID, from one consistent view.

    ``-L`` gives UUIDs by device index, the "MIG devices:" table ties each index to its GI and CI, and an
    index shifts when a device before it goes. So the table is read before and after ``-L``: when both
    agree, and list the same devices ``-L`` does, the join holds; otherwise it reads again.

    Raises:
        LeaseError: the devices kept changing for ``attempts`` rounds.

    Command line equivalent: ``nvidia-smi [-i N]``, ``nvidia-smi -L``, ``nvidia-smi [-i N]``
    """
    wanted = validate_ids(gpu, "gpu")
    for _ in range(attempts):
        before = smi.list_mig_devices(wanted)
        gpus = smi.list_gpus(wanted)
        after = smi.list_mig_devices(wanted)
        rows = [(row.gpu, row.index, row.gi, row.ci) for row in after]
        listed = sorted((device.gpu, device.index) for listed_gpu in gpus for device in listed_gpu.mig_devices)
        if [(row.gpu, row.index, row.gi, row.ci) for row in before] == rows and listed == sorted(
            (row.gpu, row.index) for row in after
        ):
            return Listing(build_devices(gpus, after))
    raise LeaseError(f"the MIG devices kept changing while smimig read them ({attempts} rounds)", profile="", free=())


@attrs.frozen(repr=False)
class _Snapshot(AttrsRepr):
    gis: tuple[GpuInstance, ...]
    cis: tuple[ComputeInstance, ...]
    devices: tuple[MigDeviceInfo, ...]

    @classmethod
    def read(cls, smi: Smi, gpu: int | None) -> _Snapshot:
        return cls(tuple(smi.list_gis(gpu)), tuple(smi.list_cis(gpu)), tuple(consistent_devices(smi, gpu)))

    def gi(self, gpu: int, gi: int) -> GpuInstance | None:
        return next((item for item in self.gis if (item.gpu, item.id) == (gpu, gi)), None)

    def cis_in(self, gpu: int, gi: int) -> list[int]:
        return [item.id for item in self.cis if (item.gpu, item.gi) == (gpu, gi)]

    def uuid(self, gpu: int, gi: int, ci: int) -> str | None:
        return next((item.uuid for item in self.devices if (item.gpu, item.gi, item.ci) == (gpu, gi, ci)), None)


# -- settling an entry: release, an interrupted acquire, reclaim ----------------------------------------

ReclaimAction = Literal["destroyed", "gone", "replaced", "kept"]
"""What became of an entry: its instances ``destroyed`` (entry removed); ``gone`` already, or ``replaced`` by
others (nothing destroyed, entry removed); ``kept`` (nothing destroyed, entry left: the reason says why)."""


@attrs.frozen(repr=False)
class _Target(AttrsRepr):
    """What an entry says was made: as far as it got."""

    gpu: int
    gi: int | None
    ci: int | None
    placement: Placement
    profile: str
    uuid: str | None
    entry: str | None

    @classmethod
    def of(cls, item: LeaseRecord | Lease) -> _Target:
        if isinstance(item, Lease):
            placement = item.placement or Placement(0, 0)
            return cls(item.gpu, item.gi, item.ci, placement, item.profile_name, item.uuid, item.entry)
        return cls(item.gpu, item.gi, item.ci, item.placement, item.profile, item.uuid, item.entry)


def _same_profile(name: str, other: str) -> bool:
    try:
        return short_profile_name(name) == short_profile_name(other)
    except ValueError:
        return name == other


def _drop(ledger: Ledger, target: _Target, action: ReclaimAction, reason: str) -> tuple[ReclaimAction, str]:
    """Remove the entry of a settled target; when that fails, it is kept and the reason says so."""
    if target.entry is None:
        return action, reason
    try:
        ledger.remove(target.entry)
    except LedgerError as error:
        # Another user's entry (the sticky bit): it stays, but settled, lest a later reclaim match it against
        # whatever instance takes that id or placement next, and destroy that.
        try:
            ledger.mark_settled(target.entry)
        except LedgerError as marking:
            settled = f"; it could not be marked settled either: {marking}"
        else:
            settled = "; marked settled: no reclaim acts on it again"
        if action == "destroyed":
            return action, f"{reason}; its entry stays: {error}{settled}"
        return "kept", f"{reason}; its entry stays: {error}{settled}"
    return action, reason


def _settle(  # noqa: PLR0911, PLR0912  # one return per way an entry is settled
    smi: Smi,
    ledger: Ledger,
    target: _Target,
    node: _Snapshot,
    *,
    claimed: Callable[[int, int], Sequence[str]],
    on_destroying: Callable[[], object] | None = None,
) -> tuple[ReclaimAction, str]:
    """Destroy what ``target`` made, if it is still exactly that, and remove its entry (the node lock held).

    ``claimed(gpu, gi)`` names the other entries that claim a GPU instance; ``on_destroying`` is called once
    the instances are known to be the target's, just before the first destroy (a release marks its entry
    "releasing" there, so that a kill between ``-dci`` and ``-dgi`` leaves an entry reclaim still matches).
    """
    gpu = target.gpu
    if target.gi is None:  # stopped before -cgi answered: a GPU instance may have been made all the same
        made = [
            item
            for item in node.gis
            if item.gpu == gpu
            and item.placement == target.placement
            and _same_profile(item.name, target.profile)
            and not node.cis_in(gpu, item.id)
            and not claimed(gpu, item.id)
        ]
        if len(made) != 1:
            return _drop(ledger, target, "gone", "no GPU instance was made")
        instance, doomed = made[0], []
    else:
        found = node.gi(gpu, target.gi)
        if found is None:
            return _drop(ledger, target, "gone", f"GPU instance {target.gi} is gone already")
        holders_now = claimed(gpu, target.gi)
        if holders_now:  # another lease made a GPU instance that got this id: it is theirs now
            return _drop(
                ledger,
                target,
                "replaced",
                f"GPU instance {target.gi} is claimed now by another lease ({', '.join(holders_now)}); "
                "nothing was destroyed",
            )
        instance = found
        if instance.placement != target.placement or not _same_profile(instance.name, target.profile):
            return _drop(
                ledger,
                target,
                "replaced",
                f"GPU instance {target.gi} is now a {instance.name} at {instance.placement}, not the "
                f"{target.profile} at {target.placement} it was; nothing was destroyed",
            )
        doomed = node.cis_in(gpu, instance.id)  # made before its holder stopped (or left by a release)
        if target.ci is not None:
            if target.ci not in doomed:
                return _drop(
                    ledger,
                    target,
                    "gone",
                    f"its compute instance {target.ci} is gone; GPU instance {target.gi} is left alone "
                    "(it cannot be told from a replacement); nothing was destroyed",
                )
            uuid = node.uuid(gpu, instance.id, target.ci)
            if target.uuid is not None and uuid != target.uuid:
                return _drop(
                    ledger,
                    target,
                    "replaced",
                    f"its MIG device is now {uuid or 'not listed'}, not {target.uuid}; nothing was destroyed",
                )
            doomed = [target.ci]
    if on_destroying is not None:
        on_destroying()
    try:
        if doomed:
            smi.destroy_ci(gpu, gi=instance.id, ci=doomed)
    except SmimigError as error:
        return "kept", f"compute instance {', '.join(map(str, doomed))}: {_first_line(error)}"
    try:
        smi.destroy_gi(gpu, gi=instance.id)
    except SmimigError as error:
        return "kept", f"GPU instance {instance.id}: {_first_line(error)}"
    cis = f" and compute instance {', '.join(map(str, doomed))}" if doomed else ""
    return _drop(ledger, target, "destroyed", f"destroyed GPU instance {instance.id}{cis}")


def _first_line(error: BaseException) -> str:
    return (str(error).splitlines() or [type(error).__name__])[0]


@attrs.frozen(repr=False)
class ReclaimOutcome(AttrsRepr):
    """What :func:`reclaim` did with one orphan."""

    lease: LeaseRecord
    action: ReclaimAction
    reason: str

    def __str__(self) -> str:
        return f"{self.action}: {self.lease.where} of {self.lease.user} (PID {self.lease.pid}): {self.reason}"


@attrs.frozen(repr=False)
class ReclaimReport(AttrsRepr):
    """Every orphan :func:`reclaim` found and what it did, and the ledger files it ignored (never trusted)."""

    outcomes: tuple[ReclaimOutcome, ...] = ()
    problems: tuple[str, ...] = ()

    def _with(self, *actions: ReclaimAction) -> tuple[ReclaimOutcome, ...]:
        return tuple(outcome for outcome in self.outcomes if outcome.action in actions)

    @property
    def destroyed(self) -> tuple[ReclaimOutcome, ...]:
        """Orphans whose instances were destroyed."""
        return self._with("destroyed")

    @property
    def removed(self) -> tuple[ReclaimOutcome, ...]:
        """Orphans whose instances were gone or replaced already: only their entries were removed."""
        return self._with("gone", "replaced")

    @property
    def kept(self) -> tuple[ReclaimOutcome, ...]:
        """Orphans left as they are (claimed twice, in use, not removable by you): the reasons say why."""
        return self._with("kept")

    def __str__(self) -> str:
        shown = (*self.destroyed, *self.removed, *self.kept)
        lines = [str(outcome) for outcome in shown] or ["no orphaned leases"]
        lines.extend(f"ignored: {problem}" for problem in self.problems)
        return "\n".join(lines)


def _reclaim_locked(smi: Smi, ledger: Ledger) -> ReclaimReport:
    # Signals held back while it destroys: a Ctrl-C between an orphan's -dci and -dgi would leave a GPU
    # instance whose entry names a compute instance that is gone, which no later reclaim may take.
    with interrupts.deferring(signal.SIGINT, signal.SIGTERM, signal.SIGHUP) as deferred:
        report = _reclaim_each(smi, ledger)
    held_back = deferred.exception()
    if held_back is not None:
        raise held_back  # the reclaim is done: what arrived meanwhile now
    return report


def _reclaim_each(smi: Smi, ledger: Ledger) -> ReclaimReport:
    ledger.adopt()  # as root: a directory a user made first is root's from now on, not a reason to stop
    view = ledger.read()
    for marker in view.stale_markers:  # their entries are gone: clutter (another user's stays)
        ledger.remove_marker(marker)
    orphans = [record for record in view.records if not record.alive]
    doubles = view.doubly_claimed()
    outcomes: list[ReclaimOutcome] = []
    node: _Snapshot | None = None
    for record in orphans:
        if record.settled:  # settled by an earlier reclaim: nothing of it is on the node to match any more
            try:
                ledger.remove(record.entry)
            except LedgerError:
                continue  # another user's: it stays for root's reclaim, and says nothing new
            outcomes.append(ReclaimOutcome(record, "gone", "settled by an earlier reclaim; its entry is removed"))
            continue
        if record.gi is not None and (record.gpu, record.gi) in doubles:
            entries = ", ".join(doubles[(record.gpu, record.gi)])
            reason = f"claimed by more than one entry ({entries}); nothing was destroyed"
            outcomes.append(ReclaimOutcome(record, "kept", reason))
            continue
        node = node or _Snapshot.read(smi, None)

        def others(gpu: int, gi: int, mine: str = record.entry) -> tuple[str, ...]:
            return tuple(entry for entry in view.claimants(gpu, gi) if entry != mine)

        action, reason = _settle(smi, ledger, _Target.of(record), node, claimed=others)
        outcomes.append(ReclaimOutcome(record, action, reason))
        if action in ("destroyed", "kept"):
            node = None  # it changed (or may have): read it again for the next one
    return ReclaimReport(tuple(outcomes), view.problems)


def reclaim_first(smi: Smi, ledger: Ledger) -> list[str]:
    """What a change (a lease, apply) does first, under the node lock it holds: reclaim orphaned leases. Returns
    what to say: each orphan destroyed, or why the reclaim failed, which must not cost the change (doctor
    names what is left).

    Raises:
        LedgerError: the ledger cannot be trusted: nothing is written to it, nor changed on its word.
    """
    try:
        return [f"reclaimed an orphaned lease: {outcome}" for outcome in _reclaim_locked(smi, ledger).destroyed]
    except LedgerError:
        raise
    except SmimigError as error:
        return [f"could not reclaim orphaned leases: {_first_line(error)}"]


def reclaim(
    smi: Smi | None = None, *, lock_path: str | os.PathLike[str] | None = None, timeout: float | None = None
) -> ReclaimReport:
    """Destroy the instances of orphaned leases (whose holders no longer run) and remove their entries.

    Under the node lock; each orphan's instances are checked first (same GPU instance id, placement and
    profile, same compute instance and UUID). An orphan whose instance is gone is only removed from the
    ledger; one whose instance was replaced, or that another entry also claims, is reported and nothing of it
    is destroyed.

    Raises:
        NodeLockTimeout: the node lock stayed taken for ``timeout`` seconds.
        LedgerError: the ledger cannot be trusted.
    """
    smi = smi or default_client()
    ledger = Ledger(Path(lock_path) if lock_path is not None else lock_path_for(smi))
    with node_lock(timeout, path=ledger.lock_file):
        return _reclaim_locked(smi, ledger)


def leases(smi: Smi | None = None, *, lock_path: str | os.PathLike[str] | None = None) -> Listing[LeaseRecord]:
    """Every lease in the ledger, with whether its holder still runs (``alive``); lock-free. The files it
    ignored (never trusted) and instances claimed twice are in ``.warnings``.

    Raises:
        LedgerError: the ledger cannot be trusted.
    """
    smi = smi or default_client()
    view = Ledger(Path(lock_path) if lock_path is not None else lock_path_for(smi)).read()
    doubles = [
        f"GPU {gpu} GI {gi} is claimed by more than one entry: {', '.join(entries)}"
        for (gpu, gi), entries in sorted(view.doubly_claimed().items())
    ]
    return Listing(view.records, warnings=(*view.problems, *doubles))


# -- acquiring and releasing ----------------------------------------------------------------------------


@attrs.frozen(repr=False)
class _Spot(AttrsRepr):
    gpu: int
    start: int
    size: int
    short: str
    name: str
    profile_id: int


def _candidates(
    smi: Smi, profile: GiProfileSpec, gpu: int | None, tried: set[tuple[int, int]]
) -> tuple[list[_Spot], list[str]]:
    """Free spots, least fragmenting first, and a note on what each GPU had."""
    state = read_node(smi)
    text = gi_profile_item(profile)
    name, _, start_text = text.partition(":")
    spots: list[tuple[bool, int, int, int, _Spot]] = []
    notes = []
    for index, mode in sorted(state.modes.items()):
        if (gpu is not None and index != gpu) or not mode.current:
            continue
        table = state.tables.get(index, ())
        try:
            info = resolve_profile(table, name, index)
        except LayoutError:
            notes.append(f"GPU {index}: no profile {name}")
            continue
        taken = [
            Placement(gi.placement.start, next((i.geometry.size for i in table if i.profile.id == gi.profile_id), 0))
            for gi in state.gis
            if gi.gpu == index
        ]
        notes.append(f"GPU {index}: {info.profile.short_name} {info.profile.free}/{info.profile.total} free")
        if info.profile.free == 0:
            continue
        offered = [i.geometry for i in table]
        starts = [int(start_text)] if start_text else list(info.geometry.starts)
        for start in free_starts(info.geometry, taken, starts):
            if (index, start) in tried:
                continue
            # GPUs already carved first (keep empty GPUs whole), then the spot that blocks fewest others
            score = blocking(offered, taken, info.geometry.at(start))
            spot = _Spot(index, start, info.geometry.size, info.profile.short_name, info.profile.name, info.profile.id)
            spots.append((not taken, score, index, start, spot))
    spots.sort(key=lambda item: item[:4])
    return [item[4] for item in spots], notes


class _Taken(Exception):  # a control-flow signal inside _acquire, never raised out of it
    """Someone outside smimig took the spot first: try the next one."""


def _undo(smi: Smi, ledger: Ledger, target: _Target) -> str | None:
    """Destroy what an interrupted acquire made (its entry tells what); None when done, else what is left."""
    try:
        node = _Snapshot.read(smi, target.gpu)
        action, reason = _settle(smi, ledger, target, node, claimed=lambda gpu, gi: ())
    except BaseException as error:  # a second Ctrl-C, nvidia-smi failing: reclaim finishes it
        return f"its ledger entry {target.entry} stays for smimig reclaim ({_first_line(error)})"
    return None if action != "kept" else f"left: {reason}; its ledger entry stays for smimig reclaim"


def _own_device(node: _Snapshot, spot: _Spot, made: CreatedGpuInstance, ci: int, asked: str) -> tuple[GpuInstance, str]:
    """The GPU instance just made and its device's UUID, as a read after the create lists them.

    Raises:
        LeaseError: the instance is not listed where it was made, or has no MIG device.
    """
    instance, uuid = node.gi(spot.gpu, made.id), node.uuid(spot.gpu, made.id, ci)
    if instance is None or instance.placement.start != spot.start or instance.profile_id != made.profile_id:
        where = f"a {spot.name} at {spot.start}"
        raise LeaseError(f"GPU instance {made.id} is not listed as made ({where})", profile=asked, free=())
    if uuid is None:
        raise LeaseError(f"no MIG device is listed for compute instance {ci}", profile=asked, free=())
    return instance, uuid


def _create(
    smi: Smi, ledger: Ledger, spot: _Spot, *, ci_profile: CiProfileSpec | None, asked: str, notes: list[str]
) -> Lease:
    fields: dict[str, Any] = {
        "state": "creating",
        "gpu": spot.gpu,
        "gi": None,
        "ci": None,
        "placement": [spot.start, spot.size],
        "profile": spot.name,
        "uuid": None,
    }
    entry = ledger.write(fields)  # before -cgi: whatever stops this process from here on, reclaim finds it
    try:
        try:
            (created,) = smi.create_gi(spot.gpu, [(spot.short, spot.start)])
        except MigOperationError as error:
            if not error.completed and any(failure.reason in _RETRY_REASONS for failure in error.failures):
                raise _Taken from error
            raise
        fields["gi"] = created.id
        ledger.write(fields, entry)
        (ci,) = smi.create_ci(spot.gpu, created.id, None if ci_profile is None else [ci_profile])
        fields["ci"] = ci.id
        ledger.write(fields, entry)
        node = _Snapshot.read(smi, spot.gpu)  # read under the lock, after the create
        instance, uuid = _own_device(node, spot, created, ci.id, asked)
        fields.update(state="held", uuid=uuid, profile=instance.name, placement=[*attrs.astuple(instance.placement)])
        ledger.write(fields, entry)
        return Lease(spot.gpu, created.id, ci.id, uuid, instance.name, instance.placement, str(entry))
    except _Taken:
        ledger.remove(entry)
        raise
    except BaseException as error:
        target = _Target(
            spot.gpu, fields["gi"], fields["ci"], Placement(*fields["placement"]), spot.name, None, str(entry)
        )
        # Undone with signals held back: a second Ctrl-C (or SIGTERM, a closed terminal) must not leave the
        # half-made instance behind; one that arrives is raised once the undoing is done.
        with interrupts.deferring(signal.SIGINT, signal.SIGTERM, signal.SIGHUP) as deferred:
            left = _undo(smi, ledger, target)
        failure: BaseException = error
        if isinstance(error, SmimigError) and fields["gi"] is not None:
            failure = LeaseError(
                f"created GPU instance {fields['gi']} on GPU {spot.gpu} but no MIG device in it: {error}"
                + (f"; {left}" if left else ""),
                profile=asked,
                free=notes,
            )
            failure.__cause__ = error
        held_back = deferred.exception()
        if held_back is not None and not isinstance(error, (KeyboardInterrupt, Terminated)):
            raise held_back from failure
        if failure is error:
            raise
        raise failure from error


def _acquire(
    smi: Smi,
    ledger: Ledger,
    profile: GiProfileSpec,
    *,
    gpu: int | None,
    ci_profile: CiProfileSpec | None,
    attempts: int,
) -> Lease:
    tried: set[tuple[int, int]] = set()
    notes: list[str] = []
    for _ in range(attempts):
        spots, notes = _candidates(smi, profile, gpu, tried)
        if not spots:
            break
        try:
            return _create(smi, ledger, spots[0], ci_profile=ci_profile, asked=str(profile), notes=notes)
        except _Taken:
            tried.add((spots[0].gpu, spots[0].start))  # someone outside smimig took it: try the next spot
    where = "any GPU in MIG mode" if gpu is None else f"GPU {gpu}"
    raise LeaseError(f"no room for {profile} on {where}", profile=str(profile), free=notes)


def _release(smi: Smi, ledger: Ledger, held: Lease, timeout: float | None) -> None:
    """Destroy the lease's instances if they are still its own; warn (destroying nothing) if they are not."""
    where = f"the lease on GPU {held.gpu} (GI {held.gi}, CI {held.ci}, {held.uuid})"

    def releasing() -> None:
        """Its instances are about to go: the entry says so (the compute instance not named), so that whatever
        stops this process between -dci and -dgi leaves an entry reclaim matches the GPU instance by, not one
        whose compute instance is gone and that reclaim must then leave alone."""
        if held.entry is not None:
            fields = {
                "state": "releasing",
                "gpu": held.gpu,
                "gi": held.gi,
                "ci": None,
                "placement": [*attrs.astuple(held.placement or Placement(0, 0))],
                "profile": held.profile_name,
                "uuid": None,
            }
            with contextlib.suppress(LedgerError):
                ledger.write(fields, Path(held.entry))

    # Once the lock is held, signals are held back until the release is done (not while it waits for the lock):
    # a Ctrl-C during its reads or between -dci and -dgi would leave an instance whose entry this process (a
    # notebook's kernel, say) still holds, so that no reclaim would ever take it.
    deferred = interrupts.Deferred()
    try:
        holding_signals = interrupts.deferring(signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        with node_lock(timeout, path=ledger.lock_file), holding_signals as deferred:
            node = _Snapshot.read(smi, held.gpu)
            view = ledger.read()

            def others(gpu: int, gi: int) -> tuple[str, ...]:
                # Only another live, trusted lease takes a GI over: a forged or orphaned claim never stops a
                # release from destroying its own device.
                return tuple(
                    record.entry
                    for record in view.records
                    if record.alive and (record.gpu, record.gi) == (gpu, gi) and record.entry != held.entry
                )

            action, reason = _settle(smi, ledger, _Target.of(held), node, claimed=others, on_destroying=releasing)
    except (NodeLockTimeout, SmimigError) as error:
        failure = LeaseError(
            f"could not release {where}; still there: {error}", profile=held.profile_name, free=[], left=held
        )
        failure.__cause__ = error
        held_back = deferred.exception()
        if held_back is not None:
            raise held_back from failure
        raise failure from error
    failed = (
        LeaseError(f"could not release {where}; still there: {reason}", profile=held.profile_name, free=[], left=held)
        if action == "kept"
        else None
    )
    held_back = deferred.exception()
    if held_back is not None:  # the release is done (or failed): what arrived meanwhile now
        raise held_back from failed
    if failed is not None:
        raise failed
    if action != "destroyed":
        warnings.warn(LeaseWarning(f"released {where}: {reason}"), stacklevel=4)


def record_job(
    held: Lease,
    pid: int,
    *,
    smi: Smi | None = None,
    lock_path: str | os.PathLike[str] | None = None,
    timeout: float | None = None,
) -> None:
    """Name process ``pid``, the job put on the leased device, in the lease's ledger entry: while the job runs,
    the lease counts as live (:attr:`LeaseRecord.alive`) even after this process is gone (killed with SIGKILL,
    say), so no reclaim takes the device from under it; once both have ended the lease is an orphan like any
    other. ``smimig lease … -- CMD`` does this for its command.

    Raises:
        ValueError: the lease has no ledger entry, or ``pid`` is not a process id.
        NodeLockTimeout: the node lock stayed taken for ``timeout`` seconds.
        LedgerError: the entry cannot be read or written.
    """
    from smimig import holders  # noqa: PLC0415  # only a job's lease needs it

    if held.entry is None:
        raise ValueError("this lease has no ledger entry")
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        raise ValueError(f"pid must be a process id; got {pid!r}")
    smi = smi or default_client()
    ledger = Ledger(Path(lock_path) if lock_path is not None else lock_path_for(smi))
    entry = Path(held.entry)
    with node_lock(timeout, path=ledger.lock_file):
        ledger.update(entry, job_pid=pid, job_start_time=holders.start_time(pid))


@contextlib.contextmanager
def lease(
    profile: GiProfileSpec,
    gpu: int | None = None,
    *,
    ci_profile: CiProfileSpec | None = None,
    smi: Smi | None = None,
    lock_path: str | os.PathLike[str] | None = None,
    timeout: float | None = None,
    attempts: int = 8,
) -> Iterator[Lease]:
    """A fresh MIG device of ``profile`` for the ``with`` block, destroyed when the block ends.

    ``timeout`` is how long acquire and release each wait for the node lock (None: ``$SMIMIG_LOCK_TIMEOUT``,
    else 120 s; the lock: ``lock_path``, else :func:`smimig.locking.lock_path_for`).

    Raises:
        ValueError: a bad profile or GPU, before anything starts.
        LeaseError: no room (it says what was free and what was asked), or the device could not be
            released afterwards (it says what is left).
        NodeLockTimeout: the node lock stayed taken for ``timeout`` seconds (nothing was made).
        LedgerError: the ledger or the lock file cannot be trusted (nothing was made).
    """
    smi = smi or default_client()
    gi_profile_item(profile)
    if ci_profile is not None:
        ci_profile_list([ci_profile])
    if gpu is not None and (isinstance(gpu, bool) or not isinstance(gpu, int) or gpu < 0):
        raise ValueError(f"gpu must be a non-negative int or None; got {gpu!r}")
    ledger = Ledger(Path(lock_path) if lock_path is not None else lock_path_for(smi))
    with node_lock(timeout, path=ledger.lock_file):
        said = reclaim_first(smi, ledger)
        held = _acquire(smi, ledger, profile, gpu=gpu, ci_profile=ci_profile, attempts=attempts)
    for message in said:
        warnings.warn(LeaseWarning(message), stacklevel=3)
    try:
        yield held
    finally:
        _release(smi, ledger, held, timeout)
