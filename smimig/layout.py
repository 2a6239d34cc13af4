"""Layouts: the MIG state you want, per GPU, as data you can keep in a file.

>>> layout = smimig.Layout.from_dict({0: ["3g.20gb", "2g.10gb", "1g.5gb", "1g.5gb"], 1: [], 2: None})

``[]`` means MIG on with no instances, ``None`` MIG off. A GPU instance is a profile in any form
``create_gi`` accepts (``"3g.20gb"``, ``"MIG 3g.20gb"``, ``"9"``), optionally with a placement start
(``"3g.20gb:4"``), or a mapping such as
``{"profile": "3g.20gb", "placement": 4, "cis": ["1c.3g.20gb", "2c.3g.20gb"]}``.
Without ``cis`` a GPU instance gets one full-size compute instance, as ``-C`` does; ``cis: []`` gives none.

Files: JSON or YAML with ``{"gpus": {0: [...], ...}}`` (or the GPU mapping alone), and NVIDIA mig-parted's
config format (``version: v1``, ``mig-configs:``) as it ships, ``device-filter`` entries included: see
:func:`resolve_mig_parted`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Union

import attrs

from smimig.arguments import gi_profile_item
from smimig.errors import LayoutError
from smimig.geometry import ProfileName, is_profile_name, short_profile_name

__all__ = [
    "GiSpec",
    "GpuMap",
    "Layout",
    "LayoutError",
    "MigPartedDevice",
    "resolve_mig_parted",
    "short_profile_name",
]

GpuLayout = Union[tuple["GiSpec", ...], None]

MAX_GPUS = 64
"""GPU indices a layout may name: 0 to 63 (a node has at most 16 GPUs today)."""
MAX_GIS_PER_GPU = 16
"""GPU instances per GPU: no GPU holds more than 7 (8 on a grid of 8 slices); more is refused at once."""
MAX_CIS_PER_GI = 8
"""Compute instances per GPU instance: at most one per compute slice (7)."""
MAX_FILE_BYTES = 1024 * 1024
"""A layout or mig-parted file larger than this is refused unread (NVIDIA's default config is 11 kB)."""


@attrs.frozen
class GiSpec:
    """One GPU instance of a layout: its profile, optionally where it starts, and its compute instances.

    ``cis`` None: one full-size compute instance (``-C``); a tuple: exactly those CI profiles (names such as
    ``"1c.3g.20gb"``, or the GI's own name for a full-size one); ``()``: none.
    """

    profile: str
    placement: int | None = None
    cis: tuple[str, ...] | None = None

    def __attrs_post_init__(self) -> None:
        gi_profile_item(self.profile if self.placement is None else (self.profile, self.placement))
        for ci in self.cis or ():
            if not is_profile_name(ci):
                raise LayoutError(f"not a compute instance profile name: {ci!r}")

    @classmethod
    def parse(cls, item: object) -> GiSpec:
        """A GI from a layout file: ``"2g.10gb"``, ``"2g.10gb:4"``, ``5`` or a mapping."""
        try:
            if isinstance(item, GiSpec):
                return item
            if isinstance(item, bool):
                raise LayoutError(f"not a GPU instance: {item!r}")
            if isinstance(item, int):
                return cls(str(item))
            if isinstance(item, str):
                profile, _, start = item.partition(":")
                if start and not (start.isascii() and start.isdigit()):
                    raise LayoutError(f"bad placement start in {item!r}")
                return cls(profile, int(start) if start else None)
            if isinstance(item, Mapping):
                unknown = set(item) - {"profile", "placement", "cis"}
                if unknown or "profile" not in item:
                    raise LayoutError(f"a GPU instance mapping has 'profile' and maybe 'placement', 'cis': {item!r}")
                cis = item.get("cis")
                if cis is not None and (isinstance(cis, str) or not isinstance(cis, Sequence)):
                    raise LayoutError(f"'cis' is a list of compute instance profiles: {_shown(item)}")
                if cis is not None and len(cis) > MAX_CIS_PER_GI:
                    raise LayoutError(
                        f"more than {MAX_CIS_PER_GI} compute instances in one GPU instance: {_shown(item)}"
                    )
                if cis is not None and not all(isinstance(ci, str) for ci in cis):
                    raise LayoutError(f"'cis' holds profile names (strings): {_shown(item)}")
                placement = item.get("placement")
                if placement is not None and (isinstance(placement, bool) or not isinstance(placement, int)):
                    raise LayoutError(f"'placement' is a slice number: {item!r}")
                return cls(str(item["profile"]), placement, None if cis is None else tuple(str(c) for c in cis))
        except ValueError as error:
            raise LayoutError(str(error)) from None
        raise LayoutError(f"not a GPU instance: {item!r}")

    def to_data(self) -> str | dict[str, Any]:
        """The shortest form that says the same: ``"2g.10gb"``, ``"2g.10gb:4"`` or a mapping."""
        if self.cis is None:
            return self.profile if self.placement is None else f"{self.profile}:{self.placement}"
        data: dict[str, Any] = {"profile": self.profile}
        if self.placement is not None:
            data["placement"] = self.placement
        data["cis"] = list(self.cis)
        return data

    def __str__(self) -> str:
        text = self.profile if self.placement is None else f"{self.profile}:{self.placement}"
        return text if self.cis is None else f"{text}[{','.join(self.cis)}]"


def _gpu_layout(value: object, gpu: object) -> GpuLayout:
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise LayoutError(f"GPU {gpu}: expected a list of GPU instances or null, got {_shown(value)}")
    gis: list[GiSpec] = []
    for item in value:
        if len(gis) == MAX_GIS_PER_GPU:  # checked while reading: a 10 000-item list stops here at once
            raise LayoutError(f"GPU {gpu}: more than {MAX_GIS_PER_GPU} GPU instances; no GPU holds that many")
        gis.append(GiSpec.parse(item))
    return tuple(gis)


def _gpu_index(key: object) -> int:
    if isinstance(key, bool):
        raise LayoutError(f"not a GPU index: {_shown(key)}")
    if isinstance(key, int) and 0 <= key < MAX_GPUS:
        return key
    if isinstance(key, str) and key.isascii() and key.isdigit() and len(key) <= 4 and int(key) < MAX_GPUS:
        return int(key)
    raise LayoutError(f"not a GPU index (0 to {MAX_GPUS - 1}): {_shown(key)}")


def _shown(value: object) -> str:
    """A value quoted in a message, clipped: an error must not repeat a megabyte of input."""
    text = repr(value)
    return text if len(text) <= 120 else text[:120] + " ..."


class GpuMap(Mapping[int, GpuLayout]):
    """A read-only, hashable mapping of GPU index to its layout, in index order (what :attr:`Layout.gpus`
    is): frozen all the way down, so a Layout can be a dict key and nobody can change one in place."""

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[tuple[int, GpuLayout]] = ()) -> None:
        self._items: tuple[tuple[int, GpuLayout], ...] = tuple(sorted(items, key=lambda item: item[0]))

    def __getitem__(self, gpu: int) -> GpuLayout:
        for index, gis in self._items:
            if index == gpu:
                return gis
        raise KeyError(gpu)

    def __iter__(self) -> Iterator[int]:
        return (index for index, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, GpuMap):
            return self._items == other._items
        return isinstance(other, Mapping) and dict(self._items) == dict(other.items())

    def __repr__(self) -> str:
        return repr(dict(self._items))


def _gpu_map(value: Mapping[Any, Any]) -> GpuMap:
    """Any mapping of GPU index (int or digits) to GPU instances (GiSpecs, or what GiSpec.parse reads), or None:
    checked and converted, whichever constructor is used."""
    if isinstance(value, GpuMap):
        return value
    if not isinstance(value, Mapping):
        raise LayoutError(f"a layout is a mapping of GPU index to GPU instances, got {type(value).__name__}")
    converted: dict[int, GpuLayout] = {}
    for key, gis in value.items():
        index = _gpu_index(key)
        if index in converted:  # YAML keys 0 and '0': two entries for one GPU, not "the last one wins"
            raise LayoutError(f"GPU {index} is named twice in the layout (as {key!r} and another key)")
        converted[index] = _gpu_layout(gis, key)
    return GpuMap(converted.items())


@attrs.frozen
class Layout:
    """The desired MIG state per GPU index: a tuple of :class:`GiSpec`, or None for MIG off.

    GPUs the layout does not name are left alone. Immutable and hashable; whatever builds it (the
    constructor, :meth:`from_dict`, a file) checks and converts every entry:

    >>> layout = Layout({0: ["3g.20gb", "1g.5gb:6"], "1": None})
    >>> print(layout)
    GPU 0: 3g.20gb, 1g.5gb:6
    GPU 1: MIG off
    >>> layout.gpus[0][1]
    GiSpec(profile='1g.5gb', placement=6, cis=None)
    """

    gpus: GpuMap = attrs.field(converter=_gpu_map)

    @classmethod
    def from_dict(cls, data: Mapping[Any, Any]) -> Layout:
        """From ``{0: ["3g.20gb", ...], 1: [], 2: None}`` or ``{"gpus": {...}}`` (string keys too)."""
        if not isinstance(data, Mapping):
            raise LayoutError(f"a layout is a mapping of GPU index to GPU instances, got {type(data).__name__}")
        if "version" in data or "mig-configs" in data:
            raise LayoutError("this is a mig-parted config: use Layout.load(path, config=NAME) or resolve_mig_parted()")
        if set(data) == {"gpus"}:
            data = data["gpus"]
            if not isinstance(data, Mapping):
                raise LayoutError("'gpus' is a mapping of GPU index to GPU instances")
        return cls(data)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON/YAML: ``{"gpus": {"0": [...], "1": None}}``."""
        return {
            "gpus": {str(gpu): None if gis is None else [gi.to_data() for gi in gis] for gpu, gis in self.gpus.items()}
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def to_yaml(self) -> str:
        yaml = _yaml()
        data = {"gpus": {int(key): value for key, value in self.to_dict()["gpus"].items()}}
        return str(yaml.safe_dump(data, sort_keys=False, default_flow_style=None))

    @classmethod
    def loads(cls, text: str, *, config: str | None = None, devices: Sequence[MigPartedDevice] = ()) -> Layout:
        """From JSON or YAML text; a mig-parted config needs ``config`` and the node's ``devices``.

        Read strictly and within bounds: a key given twice, a YAML alias (``*name``: the root of "billion
        laughs"), nesting deeper than a layout has, or more than :data:`MAX_FILE_BYTES` raise
        :class:`LayoutError` at once.
        """
        data = load_data(text)
        if isinstance(data, Mapping) and "mig-configs" in data:
            return resolve_mig_parted(data, config, devices)
        if config is not None:
            raise LayoutError("config= names a mig-parted config, but this is not a mig-parted file")
        return cls.from_dict(data)

    @classmethod
    def load(cls, path: str | Path, *, config: str | None = None, devices: Sequence[MigPartedDevice] = ()) -> Layout:
        """From a file (JSON, YAML, or a mig-parted config with ``config``)."""
        return cls.loads(read_file(path), config=config, devices=devices)

    def to_mig_parted(self, name: str = "smimig") -> dict[str, Any]:
        """As a mig-parted config (``version: v1``) named ``name``.

        mig-parted counts profiles per device: it cannot say where an instance starts, nor give a GPU
        instance compute instances of more than one kind. Placements are dropped (mig-parted and the driver
        choose); a GPU instance whose compute instances are all of one smaller profile becomes that
        profile's count (``"1c.3g.20gb": 3``, which mig-parted packs into GIs in turn); any other mix raises
        :class:`LayoutError`.
        """
        entries = []
        for gpu, gis in self.gpus.items():
            entry: dict[str, Any] = {"devices": [gpu], "mig-enabled": gis is not None}
            if gis is not None:
                counts: dict[str, int] = {}
                for gi in gis:
                    for key in _mig_parted_keys(gi):
                        counts[key] = counts.get(key, 0) + 1
                entry["mig-devices"] = counts
            entries.append(entry)
        return {"version": "v1", "mig-configs": {name: entries}}

    def to_mig_parted_yaml(self, name: str = "smimig") -> str:
        """:meth:`to_mig_parted` as YAML text (needs PyYAML)."""
        return str(_yaml().safe_dump(self.to_mig_parted(name), sort_keys=False))

    def __str__(self) -> str:
        parts = []
        for gpu, gis in self.gpus.items():
            text = "MIG off" if gis is None else (", ".join(str(gi) for gi in gis) or "MIG on, no instances")
            parts.append(f"GPU {gpu}: {text}")
        return "\n".join(parts) or "(empty layout)"


def _mig_parted_keys(gi: GiSpec) -> list[str]:
    name = short_profile_name(gi.profile)
    if gi.cis is None:
        return [name]
    kinds = {short_profile_name(ci) for ci in gi.cis}
    if not gi.cis:
        raise LayoutError(f"{gi}: a GPU instance without compute instances cannot be said in mig-parted's format")
    if len(kinds) > 1:
        raise LayoutError(f"{gi}: mixed compute instance profiles cannot be said in mig-parted's format")
    return [kinds.pop()] * len(gi.cis)


def read_file(path: str | os.PathLike[str]) -> str:
    """A layout or mig-parted file's text: a regular file of at most :data:`MAX_FILE_BYTES`, UTF-8."""
    file = Path(path)
    if file.is_dir():
        raise LayoutError(f"{file} is a directory, not a layout file")
    with file.open("rb") as stream:
        raw = stream.read(MAX_FILE_BYTES + 1)
    if len(raw) > MAX_FILE_BYTES:
        raise LayoutError(f"{file} is larger than {MAX_FILE_BYTES} bytes: not a layout")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise LayoutError(f"{file} is not UTF-8 text (byte {error.start})") from None


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key, value in pairs:
        if key in data:
            raise LayoutError(f"the key {_shown(key)} is given twice")
        data[key] = value
    return data


def load_data(text: str) -> Any:  # noqa: ANN401  # JSON/YAML data: checked by whoever reads it
    """JSON, else YAML, read strictly: keys given twice, YAML aliases, absurd nesting and oversized text are
    refused with :class:`LayoutError` (not read as "the last one wins", and not expanded)."""
    if len(text) > MAX_FILE_BYTES:
        raise LayoutError(f"a layout of more than {MAX_FILE_BYTES} characters is not a layout")
    try:
        return json.loads(text, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError:
        pass
    except RecursionError:
        raise LayoutError("the layout is nested deeper than any layout is") from None
    yaml = _yaml()
    try:
        return yaml.load(text, Loader=_strict_yaml_loader(yaml))  # a SafeLoader subclass
    except LayoutError:
        raise
    except RecursionError:
        raise LayoutError("the layout is nested deeper than any layout is") from None
    except Exception as error:  # yaml's own errors: one type for the user
        raise LayoutError(f"not a JSON or YAML layout: {error}") from None


_STRICT_LOADERS: dict[int, Any] = {}


def _strict_yaml_loader(yaml: Any) -> Any:  # noqa: ANN401  # PyYAML is untyped
    """PyYAML's SafeLoader, refusing aliases and keys given twice."""
    if id(yaml) in _STRICT_LOADERS:
        return _STRICT_LOADERS[id(yaml)]

    class StrictLoader(yaml.SafeLoader):  # type: ignore[misc,name-defined,unused-ignore]
        def compose_node(self, parent: Any, index: Any) -> Any:  # noqa: ANN401
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()
                raise LayoutError(
                    f"YAML aliases (*{event.anchor}) are not read in a layout: write the values out "
                    f"(line {event.start_mark.line + 1})"
                )
            return super().compose_node(parent, index)

        def construct_mapping(self, node: Any, deep: bool = False) -> Any:  # noqa: ANN401
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if isinstance(key, (str, int, float, bool)) or key is None:
                    if key in seen:
                        raise LayoutError(f"the key {_shown(key)} is given twice (line {key_node.start_mark.line + 1})")
                    seen.add(key)
            return super().construct_mapping(node, deep=deep)

    _STRICT_LOADERS[id(yaml)] = StrictLoader
    return StrictLoader


def _yaml() -> Any:  # noqa: ANN401  # the yaml module, untyped
    try:
        import yaml  # type: ignore[import-untyped,unused-ignore]  # noqa: PLC0415  # optional, lazily

    except ImportError:
        raise LayoutError("YAML layouts need PyYAML: pip install 'smimig[yaml]' (JSON works without it)") from None
    return yaml


# -- mig-parted -------------------------------------------------------------------------------------


@attrs.frozen
class MigPartedDevice:
    """What a mig-parted config selects GPUs by: the index and the PCI device id (``0x20B010DE``)."""

    index: int
    pci_device_id: str


def _filters(value: object) -> list[str] | None:
    """The PCI device ids an entry is narrowed to; None: no filter (as mig-parted reads an absent, ``""`` or
    ``[]`` device-filter, pkg/types/device.go)."""
    if value is None or value in ("", []):
        return None
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise LayoutError(f"device-filter is a PCI device id or a list of them, got {_shown(value)}")
    return [item.upper().replace("0X", "0x") for item in items]


def _mig_parted_gis(devices: Mapping[str, Any]) -> tuple[GiSpec, ...]:
    gis: list[GiSpec] = []
    for key, count in devices.items():
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise LayoutError(
                f"mig-devices: the count of {_shown(key)} must be a non-negative int, got {_shown(count)}"
            )
        if count > MAX_GIS_PER_GPU * MAX_CIS_PER_GI:  # checked before anything is expanded
            raise LayoutError(f"mig-devices: {count} x {_shown(key)} is more than any GPU holds")
        name = ProfileName.read(str(key))
        if name is None or name.compute_slices is None:
            gis.extend(GiSpec.parse(str(key)) for _ in range(count))
            continue
        # "1c.3g.20gb": n compute instances, packed into 3g.20gb GPU instances in turn, as mig-parted does.
        per_gi = name.gi_slices // name.compute_slices
        if per_gi < 1:
            raise LayoutError(f"mig-devices: {key!r} does not fit in its GPU instance")
        remaining = count
        while remaining > 0:
            take = min(per_gi, remaining)
            gis.append(GiSpec(name.gpu_instance.short, None, (str(key),) * take))
            remaining -= take
    return tuple(gis)


def resolve_mig_parted(  # noqa: PLR0912  # one check per rule of mig-parted's format, in its order
    data: Mapping[str, Any], config: str | None, devices: Sequence[MigPartedDevice]
) -> Layout:
    """The layout that mig-parted config ``config`` gives the node's ``devices``.

    Each entry applies to ``devices: all`` or a list of indices, narrowed by ``device-filter`` (PCI device
    ids, as in NVIDIA's default config); the first entry that selects a GPU wins. GPUs no entry selects are
    left alone.
    """
    if data.get("version") != "v1":
        raise LayoutError(f"unknown mig-parted config version {data.get('version')!r} (expected 'v1')")
    configs = data.get("mig-configs")
    if not isinstance(configs, Mapping) or not configs:
        raise LayoutError("a mig-parted config needs a non-empty 'mig-configs' mapping")
    if config is None:
        raise LayoutError(f"name the mig-parted config to use; this file has: {', '.join(sorted(configs))}")
    if config not in configs:
        raise LayoutError(f"no mig-parted config {config!r}; this file has: {', '.join(sorted(configs))}")
    entries = configs[config]
    if not isinstance(entries, list) or not entries:
        raise LayoutError(f"mig-parted config {config!r} must be a non-empty list of entries")
    if not devices:
        raise LayoutError("resolving a mig-parted config needs the node's GPUs (index and PCI device id)")
    result: dict[int, GpuLayout] = {}
    for entry in entries:
        if not isinstance(entry, Mapping) or "devices" not in entry or "mig-enabled" not in entry:
            raise LayoutError(f"each mig-parted entry needs 'devices' and 'mig-enabled': {entry!r}")
        unknown = set(entry) - {"devices", "device-filter", "mig-enabled", "mig-devices"}
        if unknown:
            raise LayoutError(f"unexpected field(s) in mig-parted entry: {', '.join(sorted(unknown))}")
        selected = entry["devices"]
        if not isinstance(entry["mig-enabled"], bool):  # "false" is a non-empty string: it would turn MIG on
            raise LayoutError(
                f"mig-parted config {config!r}: 'mig-enabled' is true or false (a YAML boolean), "
                f"got {_shown(entry['mig-enabled'])}"
            )
        if selected != "all" and (
            not isinstance(selected, list)
            or not selected
            or not all(isinstance(index, int) and not isinstance(index, bool) and index >= 0 for index in selected)
        ):
            raise LayoutError(
                f"mig-parted config {config!r}: 'devices' is 'all' or a list of GPU indices, got {_shown(selected)}"
            )
        known = {device.index for device in devices}
        if selected != "all" and not set(selected) <= known:
            missing = sorted(set(selected) - known)
            raise LayoutError(
                f"mig-parted config {config!r}: 'devices' names GPU {', '.join(map(str, missing))}, which this "
                f"node does not have (it has {', '.join(map(str, sorted(known)))})"
            )
        filters = _filters(entry.get("device-filter"))
        for device in devices:
            if selected != "all" and (not isinstance(selected, list) or device.index not in selected):
                continue
            if filters is not None and device.pci_device_id.upper().replace("0X", "0x") not in filters:
                continue
            if device.index in result:
                continue
            if not entry["mig-enabled"]:
                result[device.index] = None
                continue
            mig_devices = entry.get("mig-devices") or {}
            if not isinstance(mig_devices, Mapping):
                raise LayoutError(f"'mig-devices' is a mapping of profile to count: {mig_devices!r}")
            result[device.index] = _mig_parted_gis(mig_devices)
    return Layout(result)
