"""The public surface is exactly what ``__all__`` says (as httpx pins its own)."""

from __future__ import annotations

import inspect

import smimig
from smimig import parsers


def test_all_is_sorted_and_complete() -> None:
    assert smimig.__all__ == sorted(smimig.__all__)
    public = {name for name, value in vars(smimig).items() if not name.startswith("_") and not inspect.ismodule(value)}
    # imported for annotations only, and the lazily made client behind the module-level functions
    assert public - {"annotations", "Sequence", "default_client"} == set(smimig.__all__)


def test_parsers_all() -> None:
    assert parsers.__all__ == sorted(parsers.__all__)
    for name in parsers.__all__:
        assert hasattr(parsers, name)


def test_errors_share_one_base() -> None:
    for name in ("NvidiaSmiError", "NvidiaSmiNotFound", "NvidiaSmiTimeout", "ParseError"):
        assert issubclass(getattr(smimig, name), smimig.SmimigError)
