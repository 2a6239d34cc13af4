"""Leases: a MIG device for exactly as long as you need it, safe when others share the node.

>>> import subprocess
>>> with smimig.lease("1g.10gb") as device:
...     subprocess.run(["python", "train.py"], env=device.env)
CompletedProcess(args=['python', 'train.py'], returncode=0)

``lease`` finds room for the profile (on any GPU in MIG mode unless ``gpu`` says which), creates the GPU
instance at the placement that fragments the GPU least, creates its compute instance, and on exit (normal,
exception or Ctrl-C) destroys exactly those two, nothing else. The find-and-create step holds a node-wide
file lock, so two processes leasing at once never race for the same slices; when someone outside smimig
takes a slot first ("Insufficient Resources", "In use by another client"), the next placement is tried.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import attrs

from smimig.arguments import CiProfileSpec, GiProfileSpec, ci_profile_list, gi_profile_item
from smimig.client import Smi, default_client
from smimig.errors import LayoutError, LeaseError, MigOperationError, SmimigError
from smimig.geometry import Placement, blocking, free_starts
from smimig.jobs import device_env
from smimig.planner import read_node, resolve_profile

__all__ = ["LOCK_ENV", "Lease", "default_lock_path", "lease"]

LOCK_ENV = "SMIMIG_LOCK_FILE"
"""The environment variable that names the node-wide lock file."""

_RETRY_REASONS = ("Insufficient Resources", "In use by another client")


def default_lock_path() -> Path:
    """``$SMIMIG_LOCK_FILE``, else ``/run/lock/smimig.lock`` (shared by root and users alike), else one in
    the temporary directory. The file is created world-writable so every user of the node shares it."""
    if os.environ.get(LOCK_ENV):
        return Path(os.environ[LOCK_ENV])
    run_lock = Path("/run/lock")
    if run_lock.is_dir() and os.access(run_lock, os.W_OK):
        return run_lock / "smimig.lock"
    return Path(tempfile.gettempdir()) / "smimig.lock"


@attrs.frozen
class Lease:
    """A leased MIG device: where it is and the environment that puts a process on it."""

    gpu: int
    gi: int
    ci: int
    uuid: str
    profile_name: str

    @property
    def env(self) -> dict[str, str]:
        """This process's environment with ``CUDA_VISIBLE_DEVICES`` set to the device."""
        return device_env(self.uuid)


def _candidates(
    smi: Smi, profile: GiProfileSpec, gpu: int | None, tried: set[tuple[int, int]]
) -> tuple[list[tuple[int, int, str]], list[str]]:
    """Free (gpu, start, profile name) spots, least fragmenting first, and a note on what each GPU had."""
    state = read_node(smi)
    text = gi_profile_item(profile)
    name, _, start_text = text.partition(":")
    spots: list[tuple[bool, int, int, int, str]] = []
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
            spots.append((not taken, score, index, start, info.profile.short_name))
    spots.sort()
    return [(index, start, short) for _, _, index, start, short in spots], notes


def _acquire(
    smi: Smi, profile: GiProfileSpec, gpu: int | None, ci_profile: CiProfileSpec | None, attempts: int
) -> Lease:
    tried: set[tuple[int, int]] = set()
    notes: list[str] = []
    for _ in range(attempts):
        spots, notes = _candidates(smi, profile, gpu, tried)
        if not spots:
            break
        index, start, short = spots[0]
        try:
            (created,) = smi.create_gi(index, [(short, start)])
        except MigOperationError as error:
            if not any(failure.reason in _RETRY_REASONS for failure in error.failures):
                raise
            tried.add((index, start))  # someone outside smimig took it: try the next spot
            continue
        try:
            (ci,) = smi.create_ci(index, created.id, None if ci_profile is None else [ci_profile])
            device = next(d for d in smi.devices(index) if (d.gi, d.ci) == (created.id, ci.id))
        except (SmimigError, StopIteration) as error:
            smi.destroy_gi(index, gi=created.id)
            raise LeaseError(
                f"created GPU instance {created.id} on GPU {index} but no MIG device in it: {error}",
                profile=str(profile),
                free=notes,
            ) from error
        return Lease(index, created.id, ci.id, device.uuid, created.profile_name)
    where = "any GPU in MIG mode" if gpu is None else f"GPU {gpu}"
    raise LeaseError(f"no room for {profile} on {where}", profile=str(profile), free=notes)


def _release(smi: Smi, held: Lease) -> None:
    problems = []
    try:
        smi.destroy_ci(held.gpu, gi=held.gi, ci=held.ci)
    except SmimigError as error:
        problems.append(f"compute instance {held.ci}: {error}")
    try:
        smi.destroy_gi(held.gpu, gi=held.gi)
    except SmimigError as error:
        problems.append(f"GPU instance {held.gi}: {error}")
    if problems:
        raise LeaseError(
            f"could not release the lease on GPU {held.gpu} (GI {held.gi}, CI {held.ci}, {held.uuid}); "
            "still there: " + "; ".join(problems),
            profile=held.profile_name,
            free=[],
            left=held,
        )


@contextlib.contextmanager
def lease(
    profile: GiProfileSpec,
    gpu: int | None = None,
    *,
    ci_profile: CiProfileSpec | None = None,
    smi: Smi | None = None,
    lock_path: str | os.PathLike[str] | None = None,
    timeout: float = 120.0,
    attempts: int = 8,
) -> Iterator[Lease]:
    """A fresh MIG device of ``profile`` for the ``with`` block, destroyed when the block ends.

    Raises:
        ValueError: a bad profile or GPU, before anything starts.
        LeaseError: no room (it says what was free and what was asked), or the device could not be
            released afterwards (it says what is left).
    """
    import filelock  # noqa: PLC0415  # only leases need the lock

    smi = smi or default_client()
    gi_profile_item(profile)
    if ci_profile is not None:
        ci_profile_list([ci_profile])
    if gpu is not None and (isinstance(gpu, bool) or not isinstance(gpu, int) or gpu < 0):
        raise ValueError(f"gpu must be a non-negative int or None; got {gpu!r}")
    path = Path(lock_path) if lock_path is not None else default_lock_path()
    with filelock.FileLock(str(path), timeout=timeout, mode=0o666):
        held = _acquire(smi, profile, gpu, ci_profile, attempts)
    try:
        yield held
    finally:
        _release(smi, held)
