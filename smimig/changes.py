"""Models of what the mutating commands report: ``-mig``, ``-cgi``, ``-cci``, ``-dci``, ``-dgi``.

Frozen attrs classes as in :mod:`smimig.models`, which exports them too (import them from there); they live
apart so that a command that only lists does not make them at start-up.
"""

from __future__ import annotations

from typing import Generic, TypeVar

import attrs

from smimig._repr import AttrsRepr

__all__ = [
    "CreatedComputeInstance",
    "CreatedGpuInstance",
    "DestroyedComputeInstance",
    "DestroyedGpuInstance",
    "MigModeChange",
    "OperationFailure",
    "OperationOutput",
]

T = TypeVar("T")


@attrs.frozen(repr=False)
class MigModeChange(AttrsRepr):
    """What ``nvidia-smi -i N -mig 1|0`` did to one GPU.

    ``enabled`` is the mode asked for. ``pending`` means it is not in effect yet: the GPU is in use
    (``reason`` says "In use by another client") or needs a reset; nvidia-smi's advice is in ``warnings``.
    ``gpu`` is the index smimig asked about (None when a parser reads the text on its own).
    """

    gpu: int | None
    bus_id: str
    enabled: bool
    pending: bool = False
    reason: str | None = None
    warnings: tuple[str, ...] = ()


@attrs.frozen(repr=False)
class CreatedComputeInstance(AttrsRepr):
    """A compute instance that ``-cci`` (or ``-cgi … -C``) created."""

    gpu: int
    gi: int
    id: int
    profile_name: str
    profile_id: int


@attrs.frozen(repr=False)
class CreatedGpuInstance(AttrsRepr):
    """A GPU instance that ``-cgi`` created, with the compute instances ``-C`` made in it."""

    gpu: int
    id: int
    profile_name: str
    profile_id: int
    compute_instances: tuple[CreatedComputeInstance, ...] = ()


@attrs.frozen(repr=False)
class DestroyedComputeInstance(AttrsRepr):
    """A compute instance that ``-dci`` destroyed."""

    gpu: int
    gi: int
    id: int


@attrs.frozen(repr=False)
class DestroyedGpuInstance(AttrsRepr):
    """A GPU instance that ``-dgi`` destroyed."""

    gpu: int
    id: int


@attrs.frozen(repr=False)
class OperationFailure(AttrsRepr):
    """One item a mutating command could not do, in nvidia-smi's words.

    ``reason`` is the text after the last colon ("Insufficient Resources", "In use by another client",
    "Not Found", "Insufficient Permissions", "Invalid Argument", …); the ids are those the line names.
    """

    message: str
    reason: str
    gpu: int | None = None
    gi: int | None = None
    ci: int | None = None
    profile: str | None = None
    bus_id: str | None = None

    def __str__(self) -> str:
        return self.message


@attrs.frozen(repr=False)
class OperationOutput(Generic[T], AttrsRepr):
    """A mutating command's output, read line by line: what it did, what failed, what it warned, and any
    line it did not recognise (kept, never dropped)."""

    completed: tuple[T, ...]
    failures: tuple[OperationFailure, ...] = ()
    warnings: tuple[str, ...] = ()
    unrecognised: tuple[str, ...] = ()
