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
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Union

import attrs

from smimig._repr import AttrsRepr
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
_LABEL_VALUE = re.compile(r"[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")
_DNS_NAME = re.compile(r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?")
MAX_FILE_BYTES = 1024 * 1024
"""A layout or mig-parted file larger than this is refused unread (NVIDIA's default config is 11 kB)."""


@attrs.frozen(repr=False)
class GiSpec(AttrsRepr):
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


@attrs.frozen(repr=False)
class Layout(AttrsRepr):
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
        """From JSON or YAML text; a mig-parted file needs the node's ``devices`` and, if it has several configs,
        ``config``.

        Read strictly and within bounds: a key given twice, a YAML alias (``*name``: the root of "billion
        laughs"), nesting deeper than a layout has, or more than :data:`MAX_FILE_BYTES` raise
        :class:`LayoutError` at once.
        """
        data = load_data(text)
        if isinstance(data, Mapping) and ("mig-configs" in data or "version" in data):
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

        mig-parted counts profiles per device and packs the counts into GPU instances itself
        (:func:`pack_mig_parted_counts`): it cannot say where an instance starts, and a GPU instance's compute
        instances only as the counts pack. Placements are dropped (mig-parted and the driver choose); compute
        instances become counts of their profiles (``"2c.4g.20gb": 1, "1c.4g.20gb": 2`` is one 4g.20gb GI holding
        all three); a layout whose counts mig-parted would pack otherwise (two 3g.20gb GIs of two 1c CIs each:
        mig-parted makes three and one) raises :class:`LayoutError` saying what mig-parted would build.
        """
        entries = []
        for gpu, gis in self.gpus.items():
            entry: dict[str, Any] = {"devices": [gpu], "mig-enabled": gis is not None}
            if gis is not None:
                counts: dict[str, int] = {}
                for gi in gis:
                    for key in _mig_parted_keys(gi):
                        counts[key] = counts.get(key, 0) + 1
                packed = pack_mig_parted_counts(list(counts.items()))
                if sorted(map(_packing, packed)) != sorted(map(_packing, gis)):
                    raise LayoutError(
                        f"GPU {gpu}: mig-parted cannot say this layout: its counts "
                        f"{', '.join(f'{key}: {count}' for key, count in counts.items())} make "
                        f"{', '.join(map(str, packed))} instead"
                    )
                entry["mig-devices"] = counts
            entries.append(entry)
        return {"version": MIG_PARTED_VERSION, "mig-configs": {name: entries}}

    def to_mig_parted_yaml(self, name: str = "smimig") -> str:
        """:meth:`to_mig_parted` as YAML text (needs PyYAML)."""
        return str(_yaml().safe_dump(self.to_mig_parted(name), sort_keys=False))

    def to_gpu_operator_yaml(
        self, name: str = "smimig", *, configmap: str = "smimig-mig-parted-config", namespace: str = "gpu-operator"
    ) -> str:
        """What NVIDIA's Kubernetes GPU operator needs to adopt this layout: a ConfigMap whose ``config.yaml`` (the
        key the operator's MIG manager reads) holds it as mig-parted config ``name``, beside ``all-disabled`` (the
        config the operator labels new nodes with by default); comments say how to apply it with kubectl and the
        node label, ``nvidia.com/mig.config=NAME``, that selects it.

        >>> print(Layout({0: ["3g.20gb"]}).to_gpu_operator_yaml("lab"))  # doctest: +ELLIPSIS
        # NVIDIA GPU operator: ...
        #   kubectl label node NODE nvidia.com/mig.config=lab --overwrite
        ...
        data:
          config.yaml: |
            version: v1
            mig-configs:
              lab:
              - devices:
                - 0
                mig-enabled: true
                mig-devices:
                  3g.20gb: 1
              all-disabled:
              - devices: all
                mig-enabled: false
        <BLANKLINE>
        """
        for what, value, pattern in (
            ("a label value (the config name)", name, _LABEL_VALUE),
            ("a ConfigMap name", configmap, _DNS_NAME),
            ("a namespace", namespace, _DNS_NAME),
        ):
            if not pattern.fullmatch(value):
                raise LayoutError(f"not {what} Kubernetes accepts: {value!r}")
        data = self.to_mig_parted(name)
        data["mig-configs"].setdefault("all-disabled", [{"devices": "all", "mig-enabled": False}])
        config = str(_yaml().safe_dump(data, sort_keys=False))
        lines = [
            "# NVIDIA GPU operator: this node's MIG layout as mig-parted config "
            f"'{name}', for the operator's MIG manager.",
            "#   kubectl apply -f THIS_FILE",
            "#   kubectl patch clusterpolicies.nvidia.com/cluster-policy --type merge \\",
            f'#     -p \'{{"spec": {{"migManager": {{"config": {{"name": "{configmap}"}}}}}}}}\'',
            f"#   kubectl label node NODE nvidia.com/mig.config={name} --overwrite",
            "# The MIG manager then applies it on NODE and sets nvidia.com/mig.config.state=success.",
            "apiVersion: v1",
            "kind: ConfigMap",
            "metadata:",
            f"  name: {configmap}",
            f"  namespace: {namespace}",
            "data:",
            "  config.yaml: |",
            *(f"    {line}" for line in config.splitlines()),
        ]
        return "\n".join(lines) + "\n"

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
    if not gi.cis:
        raise LayoutError(f"{gi}: a GPU instance without compute instances cannot be said in mig-parted's format")
    return [short_profile_name(ci) for ci in gi.cis]


def _packing(gi: GiSpec) -> tuple[str, tuple[str, ...]]:
    """A GPU instance as mig-parted tells them apart: its profile and its compute instances' profiles."""
    profile = ProfileName.read(short_profile_name(gi.profile))
    gi_name = profile.gpu_instance.short if profile is not None else short_profile_name(gi.profile)
    cis = [gi_name] if gi.cis is None else [short_profile_name(ci) for ci in gi.cis]
    return gi_name, tuple(sorted(cis))


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
#
# NVIDIA mig-parted's config format, read as mig-parted reads it (github.com/NVIDIA/mig-parted, the file and
# function each rule comes from in brackets). mig-parted converts the YAML to JSON and unmarshals it into Go
# types, so a YAML null is Go's zero value where Go keeps one (a null ``mig-enabled`` is false, a null
# ``device-filter`` no filter) and a wrong type is an error. fixtures/mig-parted/ holds mig-parted's own answers
# for NVIDIA's published files and for every edge case below; tests/test_mig_parted_conformance.py compares.

MIG_PARTED_VERSION = "v1"
_ENTRY_FIELDS = frozenset({"device-filter", "devices", "mig-enabled", "mig-devices"})
_GO_DIGITS = {"x": "0123456789abcdefABCDEF", "b": "01", "o": "01234567"}


@attrs.frozen(repr=False)
class MigPartedDevice(AttrsRepr):
    """What a mig-parted config selects GPUs by: the index, the PCI device id (``0x20B010DE``) and, for a
    ``device-filter`` of the form ``0xDEVICE:0xSUBSYSTEM``, the PCI subsystem id (``0x134F10DE``; None:
    unknown, so such a filter selects nothing)."""

    index: int
    pci_device_id: str
    pci_subsystem_id: str | None = None


def _go_uint32(text: str) -> int | None:
    """``strconv.ParseUint(text, 0, 32)`` as Go reads it (pkg/types/device.go): ``0x``/``0X`` hex, ``0b`` binary,
    ``0o`` or a leading ``0`` octal, else decimal; ``_`` between digits; no sign, no spaces. None: an error."""
    digits, base, prefixed = text, 10, False
    if len(text) > 1 and text[0] == "0":
        kind = text[1].lower()
        prefixed = True
        if kind in _GO_DIGITS:
            digits, base = text[2:], {"x": 16, "b": 2, "o": 8}[kind]
        else:
            digits, base = text[1:], 8
    allowed = {16: _GO_DIGITS["x"], 2: _GO_DIGITS["b"], 8: _GO_DIGITS["o"]}.get(base, "0123456789")
    groups = digits.split("_")
    if not digits or (groups[0] == "" and not prefixed):
        return None
    if any(group == "" for group in groups[1:]) or not all(c in allowed for group in groups for c in group):
        return None
    value = int("".join(groups) or "0", base)
    return value if value < 2**32 else None


def _device_id(text: str) -> tuple[int, int | None] | None:
    """``types.NewDeviceIDFromString``: ``DEVICEVENDOR`` or ``DEVICEVENDOR:SUBDEVICESUBVENDOR``; None when Go
    fails to read it (mig-parted then matches the filter against a zero id: it selects nothing)."""
    parts = text.split(":")
    if len(parts) > 2:
        return None
    device = _go_uint32(parts[0])
    subsystem = _go_uint32(parts[1]) if len(parts) == 2 else None
    if device is None or (len(parts) == 2 and subsystem is None):
        return None
    return device, subsystem


def _filter_selects(filters: tuple[str, ...], device: MigPartedDevice) -> bool:
    """``MigConfigSpec.MatchesDeviceFilter`` (api/spec/v1/helpers.go) and ``DeviceID.Matches``: no filter matches
    every GPU; a filter with a subsystem id matches on both ids."""
    if not filters:
        return True
    hardware = _device_id(device.pci_device_id)
    subsystem = _device_id(device.pci_subsystem_id) if device.pci_subsystem_id else None
    for text in filters:
        wanted = _device_id(text)
        if wanted is None or hardware is None or wanted[0] != hardware[0]:
            continue
        if wanted[1] is None or (subsystem is not None and wanted[1] == subsystem[0]):
            return True
    return False


def _profile_format_problem(key: str) -> str | None:  # noqa: PLR0911  # one answer per rule of parseMigProfile
    """go-nvlib's ``parseMigProfile``, the format check mig-parted makes of every ``mig-devices`` key: ``<g>g.<m>gb``
    or ``<c>c.<g>g.<m>gb``, then ``+attr,attr`` or ``-attr,attr``. None: well formed."""
    if not key:
        return "the profile is empty"
    plus, minus = key.split("+", 1), key.split("-", 1)
    if len(plus) == 2 and len(minus) == 2:
        return "both '+' and '-' attributes"
    parts = plus if len(plus) == 2 else minus
    fields = parts[0].split(".", 2)
    if len(fields) not in (2, 3):
        return "not <g>g.<memory>gb or <c>c.<g>g.<memory>gb"
    for field, unit in zip(fields, ("c", "g", "gb")[3 - len(fields) :]):
        number = field[: -len(unit)] if field.endswith(unit) else None
        if number is None or not re.fullmatch(r"[+-]?[0-9]+", number):
            return f"{field!r} is not <number>{unit}"
    if len(parts) == 2:
        attributes = parts[1].split(",")
        if len(set(attributes)) != len(attributes):
            return "an attribute given twice"
        for attribute in attributes:
            if not re.fullmatch(r"[A-Za-z][A-Za-z0-9.]*", attribute) or attribute.endswith("."):
                return f"not an attribute: {attribute!r}"
    return None


@attrs.frozen(repr=False)
class _Entry(AttrsRepr):
    """One entry of a mig-parted config, checked: ``devices`` 'all' or indices, the filters, the mode, the counts."""

    devices: str | tuple[int, ...]
    filters: tuple[str, ...]
    enabled: bool
    counts: tuple[tuple[str, int], ...]


def _go_int(value: object) -> int | None:
    """A JSON number Go unmarshals into an int: an integer, or a float without a fraction (YAML ``2.0``)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _entry(config: str, number: int, entry: object) -> _Entry:  # noqa: PLR0912  # one rule per field of spec.go
    """``MigConfigSpec.UnmarshalJSON`` (api/spec/v1/spec.go)."""
    where = f"mig-parted config {config!r}, entry {number + 1}"
    if not isinstance(entry, Mapping):
        raise LayoutError(f"{where}: an entry is a mapping with 'devices' and 'mig-enabled', got {_shown(entry)}")
    for required in ("devices", "mig-enabled"):
        if required not in entry:
            raise LayoutError(f"{where}: missing required field {required!r}")
    unknown = sorted(str(key) for key in set(entry) - _ENTRY_FIELDS)
    if unknown:
        raise LayoutError(f"{where}: unexpected field(s): {', '.join(unknown)}")
    raw_filter = entry.get("device-filter")
    if raw_filter is None or isinstance(raw_filter, str):  # null is Go's "": no filter, as "" and [] are
        filters: tuple[str, ...] = (raw_filter,) if raw_filter else ()
    elif isinstance(raw_filter, list) and all(item is None or isinstance(item, str) for item in raw_filter):
        filters = tuple(item or "" for item in raw_filter)
    else:
        raise LayoutError(f"{where}: 'device-filter' is a PCI device id or a list of them, got {_shown(raw_filter)}")
    raw_devices = entry["devices"]
    if raw_devices == "all":
        devices: str | tuple[int, ...] = "all"
    elif isinstance(raw_devices, list) and all(item is None or _go_int(item) is not None for item in raw_devices):
        devices = tuple(_go_int(item) or 0 for item in raw_devices)  # a null in Go's []int is 0
    else:
        raise LayoutError(f"{where}: 'devices' is 'all' or a list of GPU indices, got {_shown(raw_devices)}")
    enabled = entry["mig-enabled"]
    if enabled is None:
        enabled = False  # Go leaves a bool it unmarshals null into as it was: false
    if not isinstance(enabled, bool):  # "false" is a non-empty string: read loosely it would turn MIG on
        raise LayoutError(f"{where}: 'mig-enabled' is true or false (a YAML boolean), got {_shown(enabled)}")
    raw_counts = entry.get("mig-devices")
    if raw_counts is not None and not isinstance(raw_counts, Mapping):
        raise LayoutError(f"{where}: 'mig-devices' is a mapping of profile to count, got {_shown(raw_counts)}")
    counts: list[tuple[str, int]] = []
    for key, raw in (raw_counts or {}).items():
        count = 0 if raw is None else _go_int(raw)
        problem = _profile_format_problem(key) if isinstance(key, str) else "not a profile name"
        if problem is not None:
            raise LayoutError(f"{where}: 'mig-devices' key {_shown(key)}: {problem}")
        if count is None or count < 0:
            raise LayoutError(f"{where}: the count of {key!r} is a non-negative integer, got {_shown(raw)}")
        counts.append((key, count))
    if counts and not any(count for _, count in counts):
        raise LayoutError(f"{where}: all counts in 'mig-devices' are 0")
    if enabled and raw_counts is None:
        raise LayoutError(f"{where}: 'mig-enabled: true' needs 'mig-devices' ({{}} for no instances)")
    if not enabled and counts:
        raise LayoutError(f"{where}: 'mig-devices' given with 'mig-enabled: false'")
    return _Entry(devices, filters, enabled, tuple((key, count) for key, count in counts if count))


def read_mig_parted(data: object) -> dict[str, tuple[_Entry, ...]]:
    """Every config of a mig-parted file, checked as a whole as mig-parted checks it (``Spec.UnmarshalJSON``): a
    bad entry in any config makes the file unreadable, whichever config is asked for.

    Raises:
        LayoutError: the file breaks a rule of the format; it names the config and entry.
    """
    if not isinstance(data, Mapping):
        raise LayoutError(f"a mig-parted file is a mapping with 'version' and 'mig-configs', got {_shown(data)}")
    if "version" not in data and data:
        raise LayoutError("a mig-parted file needs a 'version' field")
    if data.get("version") != MIG_PARTED_VERSION:
        raise LayoutError(f"unknown mig-parted config version {_shown(data.get('version'))} (expected 'v1')")
    unknown = sorted(str(key) for key in set(data) - {"version", "mig-configs"})
    if unknown:
        raise LayoutError(f"unexpected field(s) in the mig-parted file: {', '.join(unknown)}")
    configs = data.get("mig-configs", {})
    if "mig-configs" in data and not configs:
        raise LayoutError("at least one config is required in 'mig-configs'")
    if not isinstance(configs, Mapping):
        raise LayoutError(f"'mig-configs' is a mapping of config name to entries, got {_shown(configs)}")
    result: dict[str, tuple[_Entry, ...]] = {}
    for name, entries in configs.items():
        key = str(name).lower() if isinstance(name, bool) else str(name)  # JSON keys are strings
        if entries is not None and not isinstance(entries, list):
            raise LayoutError(f"mig-parted config {key!r} is a list of entries, got {_shown(entries)}")
        if not entries:
            raise LayoutError(f"mig-parted config {key!r} needs at least one entry")
        result[key] = tuple(_entry(key, number, entry) for number, entry in enumerate(entries))
    return result


def _attributes(name: ProfileName) -> str:
    return ",".join(extension[1:] for extension in name.extensions if extension.startswith("+"))


def pack_mig_parted_counts(counts: Sequence[tuple[str, int]]) -> tuple[GiSpec, ...]:
    """The GPU instances mig-parted creates for ``mig-devices`` counts, in order (pkg/mig/config/config.go,
    ``SetMigConfig``): profiles sorted as ``Flatten`` sorts them; a compute instance goes into the GPU instance
    created last when that is of its GPU instance profile and has compute slices left, else into a new one.

    >>> [str(gi) for gi in pack_mig_parted_counts([("2c.4g.20gb", 1), ("1c.4g.20gb", 2), ("1g.5gb", 2)])]
    ['4g.20gb[2c.4g.20gb,1c.4g.20gb,1c.4g.20gb]', '1g.5gb', '1g.5gb']

    (mig-parted tries other orders when the driver refuses this one; smimig's planner searches placements instead.)
    """
    flattened: list[tuple[ProfileName, str]] = []
    for key, count in counts:
        name = ProfileName.read(key)
        if name is None or name.gi_slices < 1 or name.slices < 1 or name.slices > name.gi_slices:
            raise LayoutError(f"mig-devices: {key!r} is not a MIG profile of any GPU")
        if count > MAX_GIS_PER_GPU * MAX_CIS_PER_GI:  # checked before anything is expanded
            raise LayoutError(f"mig-devices: {count} x {key!r} is more than any GPU holds")
        flattened += [(name, name.short)] * count
    # MigConfig.Flatten's order (pkg/types/mig_config.go): more GPU slices first, then more compute slices, then
    # the attributes in descending order ("+me" before none); two stable sorts make that one order.
    flattened.sort(key=lambda item: _attributes(item[0]), reverse=True)
    flattened.sort(key=lambda item: (-item[0].gi_slices, -item[0].slices))
    groups: list[tuple[ProfileName, list[str], int]] = []
    for name, key in flattened:
        gi = name.gpu_instance
        if groups and groups[-1][0] == gi and groups[-1][2] + name.slices <= gi.gi_slices:
            last = groups[-1]
            groups[-1] = (gi, [*last[1], key], last[2] + name.slices)
        else:
            groups.append((gi, [key], name.slices))
        if len(groups) > MAX_GIS_PER_GPU:
            raise LayoutError(f"mig-devices: more than {MAX_GIS_PER_GPU} GPU instances; no GPU holds that many")
    return tuple(GiSpec(gi.short) if cis == [gi.short] else GiSpec(gi.short, None, tuple(cis)) for gi, cis, _ in groups)


def resolve_mig_parted(data: Mapping[str, Any], config: str | None, devices: Sequence[MigPartedDevice]) -> Layout:
    """The layout that mig-parted config ``config`` gives the node's ``devices``, as ``nvidia-mig-parted apply``
    would leave them.

    The whole file is checked first (:func:`read_mig_parted`). ``config`` may be None when the file has one config.
    Each entry applies, in order, to the GPUs its ``devices`` ('all' or indices; indices this node lacks select
    nothing) and ``device-filter`` select; when several entries select a GPU the last one stands, as mig-parted
    applies them in turn, and entries that disagree on MIG mode are an error, as mig-parted's apply fails on
    them. Counts become GPU instances as :func:`pack_mig_parted_counts` packs them. GPUs no entry selects are
    left alone.

    >>> data = {"version": "v1", "mig-configs": {"lab": [
    ...     {"devices": "all", "mig-enabled": True, "mig-devices": {"3g.20gb": 2}},
    ...     {"devices": [1], "mig-enabled": True, "mig-devices": {"7g.40gb": 1}}]}}
    >>> print(resolve_mig_parted(data, None, [MigPartedDevice(0, "0x20B010DE"), MigPartedDevice(1, "0x20B010DE")]))
    GPU 0: 3g.20gb, 3g.20gb
    GPU 1: 7g.40gb
    """
    configs = read_mig_parted(data)
    if config is None:
        if len(configs) != 1:
            raise LayoutError(f"name the mig-parted config to use; this file has: {', '.join(sorted(configs))}")
        config = next(iter(configs))
    if config not in configs:
        raise LayoutError(f"no mig-parted config {config!r}; this file has: {', '.join(sorted(configs))}")
    if not devices:
        raise LayoutError("resolving a mig-parted config needs the node's GPUs (index and PCI device id)")
    chosen: dict[int, tuple[int, _Entry]] = {}
    for number, entry in enumerate(configs[config]):
        for device in sorted(devices, key=lambda device: device.index):
            if entry.devices != "all" and device.index not in entry.devices:
                continue
            if not _filter_selects(entry.filters, device):
                continue
            earlier = chosen.get(device.index)
            if earlier is not None and earlier[1].enabled != entry.enabled:
                raise LayoutError(
                    f"mig-parted config {config!r}: entries {earlier[0] + 1} and {number + 1} both select GPU "
                    f"{device.index} and disagree on MIG mode (mig-parted's apply fails on that)"
                )
            chosen[device.index] = (number, entry)
    return Layout(
        {index: pack_mig_parted_counts(entry.counts) if entry.enabled else None for index, (_, entry) in chosen.items()}
    )
