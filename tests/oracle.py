"""An independent brute force for the packing rules, written apart from smimig.geometry on purpose.

``fits`` tries every arrangement (a plain depth-first search over slice bitmasks, in the given order, with no
heuristics: geometry's search orders and scores; this does not), so a test can hold the planner's and
geometry's answers against it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from smimig.sim.catalog import GiProfile, GpuModel


def fits(model: GpuModel, profiles: Sequence[GiProfile]) -> bool:
    """Whether some choice of allowed starts places every GI of ``profiles`` on an empty GPU of ``model``
    without overlap, within the instance limits and with at most one GI that owns the media engines."""
    counts = Counter(profile.id for profile in profiles)
    if any(counts[profile.id] > profile.instances for profile in profiles):
        return False
    if sum(1 for profile in profiles if profile.ofa > 0) > 1:
        return False
    masks = [[((1 << profile.size) - 1) << start for start in profile.starts] for profile in profiles]

    def place(index: int, used: int) -> bool:
        if index == len(masks):
            return True
        return any(not used & mask and place(index + 1, used | mask) for mask in masks[index])

    return place(0, 0)


def multisets(model: GpuModel) -> list[tuple[GiProfile, ...]]:
    """Every multiset within the instance limits whose memory slices add up to the GPU's at most (in the order
    of ``itertools.product`` over the counts, cutting a branch as soon as it is too big)."""
    profiles = model.gi_profiles
    found: list[tuple[GiProfile, ...]] = []

    def extend(index: int, chosen: tuple[GiProfile, ...], used: int) -> None:
        if index == len(profiles):
            found.append(chosen)
            return
        profile = profiles[index]
        for count in range(profile.instances + 1):
            if used + count * profile.size > model.slices:
                break
            extend(index + 1, chosen + (profile,) * count, used + count * profile.size)

    extend(0, (), 0)
    return found
