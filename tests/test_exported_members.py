"""The public surface is exactly what ``__all__`` says (as httpx pins its own), and loads lazily."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

import smimig
from smimig import parsers

# Names the package root uses itself; not exports.
OWN = {"annotations", "Sequence", "TYPE_CHECKING", "Any", "importlib"}


def test_all_is_sorted_and_complete() -> None:
    assert smimig.__all__ == sorted(smimig.__all__)
    for name in smimig.__all__:
        assert getattr(smimig, name) is not None  # every promised name resolves (most load on first use)
    public = {name for name in dir(smimig) if not name.startswith("_") and not inspect.ismodule(getattr(smimig, name))}
    assert public - OWN == set(smimig.__all__)


def test_unknown_attribute() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        smimig.nope  # noqa: B018


def test_import_is_lazy() -> None:
    code = "import sys, smimig; print(sorted(m for m in sys.modules if m.startswith('smimig')))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "['smimig']"


def test_parsers_all() -> None:
    assert parsers.__all__ == sorted(parsers.__all__)
    for name in parsers.__all__:
        assert hasattr(parsers, name)


def test_errors_share_one_base() -> None:
    for name in (
        "NvidiaSmiError",
        "NvidiaSmiNotFound",
        "NvidiaSmiTimeout",
        "ParseError",
        "LayoutError",
        "InstanceBusy",
    ):
        assert issubclass(getattr(smimig, name), smimig.SmimigError)


def test_no_submodule_shadows_a_public_name() -> None:
    code = (
        "import importlib, pkgutil, inspect, smimig\n"
        "for info in pkgutil.walk_packages(smimig.__path__, 'smimig.'):\n"
        "    if not info.name.endswith('__main__'): importlib.import_module(info.name)\n"
        "print([name for name in smimig.__all__ if inspect.ismodule(getattr(smimig, name))])"
    )
    shadowed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert shadowed.strip() == "[]"
