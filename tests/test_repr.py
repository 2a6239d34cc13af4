"""smimig's attrs classes share one hand-written ``__repr__`` (attrs would compile one per class: 3 ms of each
``smimig status``); it must print exactly what attrs' own would, for every class and every value reached."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from collections.abc import Iterator, Mapping
from typing import Any

import attrs
import pytest

import smimig
from smimig._repr import AttrsRepr
from smimig.sim import SimulatedRunner


def smimig_attrs_classes() -> list[type]:
    found = []
    for module_info in pkgutil.walk_packages(smimig.__path__, "smimig."):
        if module_info.name.endswith("__main__"):  # runs the command line when imported
            continue
        module = importlib.import_module(module_info.name)
        for value in vars(module).values():
            if isinstance(value, type) and attrs.has(value) and value.__module__ == module.__name__:
                found.append(value)
    return sorted(set(found), key=lambda cls: f"{cls.__module__}.{cls.__qualname__}")


CLASSES = smimig_attrs_classes()


def test_the_classes_are_found() -> None:
    names = {cls.__qualname__ for cls in CLASSES}
    assert {"Gpu", "GpuInstance", "NodeStatus", "SliceMap", "Placement", "Plan", "RunResult"} <= names
    assert len(CLASSES) > 60


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: f"{cls.__module__}.{cls.__qualname__}")
def test_every_class_prints_with_the_shared_repr_or_its_own(cls: type) -> None:
    # attrs' generated repr would be a function in the class's own __dict__, compiled from no file of smimig's:
    # a class's own repr must be written in its module.
    own = cls.__dict__.get("__repr__")
    module_file = sys.modules[cls.__module__].__file__
    assert own is None or own.__code__.co_filename == module_file, f"{cls.__qualname__}: attrs' repr"
    assert issubclass(cls, AttrsRepr) or own is not None


def attrs_repr(value: Any) -> str:  # any attrs instance
    """What attrs' own generated __repr__ prints for ``value``: a twin class with attrs' repr, same fields."""
    cls = type(value)
    fields = attrs.fields(cls)
    twin = attrs.make_class(
        cls.__name__, {field.name: attrs.field(repr=field.repr, init=field.init) for field in fields}, slots=False
    )
    twin.__qualname__ = cls.__qualname__
    copy: Any = object.__new__(twin)
    for field in fields:
        if hasattr(value, field.name):
            object.__setattr__(copy, field.name, getattr(value, field.name))
    return repr(copy)


def reachable(root: object) -> Iterator[object]:
    """Every attrs instance in ``root``, through fields, sequences and mappings."""
    seen: set[int] = set()
    pending = [root]
    while pending:
        value = pending.pop()
        if id(value) in seen:
            continue
        seen.add(id(value))
        cls: Any = type(value)
        if attrs.has(cls):
            yield value
            pending.extend(getattr(value, field.name, None) for field in attrs.fields(cls))
        elif isinstance(value, Mapping):
            pending.extend(value.values())
        elif isinstance(value, (list, tuple, set, frozenset)):
            pending.extend(value)


def node() -> smimig.Smi:
    smi = smimig.Smi(runner=SimulatedRunner("A30", gpus=2))
    smi.enable_mig(0)
    smi.create_gi(0, ["2g.12gb", "1g.6gb"], ci=True)
    return smi


def test_values_print_as_attrs_would_print_them() -> None:
    smi = node()
    roots: list[object] = [
        smi.status(),
        smi.list_gi_profiles(),
        smi.list_gi_placements(),
        smi.list_ci_profiles(),
        smi.list_ci_placements(),
        smi.devices(),
        smi.plan(smimig.Layout.from_dict({0: ["4g.24gb"], 1: ["1g.6gb"] * 4})),
        smi.destroy_gi(0, [created.id for created in smi.create_gi(0, ["1g.6gb"])]),
    ]
    seen_classes = set()
    for root in roots:
        for value in reachable(root):
            assert repr(value) == attrs_repr(value)
            seen_classes.add(type(value))
    assert len(seen_classes) >= 20


def test_a_field_left_out_a_custom_repr_and_a_cycle() -> None:
    @attrs.define(repr=False)
    class Node(AttrsRepr):
        name: str = attrs.field(repr=lambda text: f"<{text}>")
        secret: str = attrs.field(default="x", repr=False)
        children: list[Any] = attrs.Factory(list)
        later: int = attrs.field(init=False)

    tree = Node("root")
    tree.children.append(tree)
    assert repr(tree) == "Node(name=<root>, children=[...], later=NOTHING)"
    assert repr(tree) == attrs_repr(tree).replace("[Node(name=<root>, children=[...], later=NOTHING)]", "[...]")


class Outer:
    @attrs.frozen(repr=False)
    class Inner(AttrsRepr):
        value: int


def test_a_nested_class_is_named_by_its_qualified_name() -> None:
    assert repr(Outer.Inner(3)) == "Outer.Inner(value=3)" == attrs_repr(Outer.Inner(3))
