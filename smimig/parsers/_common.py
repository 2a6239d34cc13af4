"""Pieces every parser shares: strict field types for ``parse`` patterns and the "nothing here" messages."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    import parse

from smimig.errors import ParseError
from smimig.models import Placement

__all__ = [
    "EMPTY_LISTINGS",
    "NO_COMPUTE_INSTANCES",
    "NO_GPU_INSTANCES",
    "NO_MIG_DEVICES",
    "NO_MIG_ENABLED_DEVICES",
    "LazyPattern",
    "compile_pattern",
    "is_empty_message",
    "match_line",
    "placements_from",
]

# What nvidia-smi prints, with exit code 0, when a listing has nothing to list.
NO_MIG_ENABLED_DEVICES = "No MIG-enabled devices found."  # driver 580, every -l* but -lgip/-lgipp
NO_GPU_INSTANCES = "No GPU instances found: Not Found"
NO_COMPUTE_INSTANCES = "No compute instances found: Not Found"  # seed, driver 545
NO_MIG_DEVICES = "No MIG devices found"  # inside the MIG devices box of plain nvidia-smi
EMPTY_LISTINGS = (NO_MIG_ENABLED_DEVICES, NO_GPU_INSTANCES, NO_COMPUTE_INSTANCES)


def _typed(pattern: str, convert: Callable[[str], object]) -> Callable[[str], object]:
    def converter(text: str) -> object:
        return convert(text)

    converter.pattern = pattern  # type: ignore[attr-defined]  # parse reads the pattern from here
    return converter


# Strict field types: parse's own {:d} and {:g} also take signs, base prefixes, "nan" and "inf". Numbers are
# bounded: nvidia-smi's are ids, counts, MiB and PIDs (at most 12 digits); a 400-digit "GiB" is not a figure
# to read as inf, and int() refuses over 4300 digits with a ValueError that is not a ParseError.
_TYPES: Mapping[str, Callable[[str], object]] = {
    "Int": _typed(r"[0-9]{1,12}", int),  # ASCII digits: str.isdigit() and \d also take "²" and a fullwidth 5
    "Float": _typed(r"[0-9]{1,9}(?:\.[0-9]{1,6})?", float),
    "YesNo": _typed(r"Yes|No", lambda text: text == "Yes"),
    "Name": _typed(r"MIG \S+", str),
    "Default": _typed(r"\*?", lambda text: text == "*"),
    "Placement": _typed(r"[0-9]{1,12}:[0-9]{1,12}", lambda text: Placement(*map(int, text.split(":")))),
}


class LazyPattern:
    """A ``parse`` pattern compiled on its first use, so importing smimig compiles nothing."""

    __slots__ = ("_compiled", "pattern")

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self._compiled: parse.Parser | None = None

    def parse(self, text: str) -> parse.Result | None:
        if self._compiled is None:
            import parse  # noqa: PLC0415  # lazily: parse builds its regexes at compile time

            self._compiled = parse.compile(self.pattern, extra_types=dict(_TYPES), case_sensitive=True)
        result: parse.Result | None = self._compiled.parse(text)
        return result


def compile_pattern(pattern: str) -> LazyPattern:
    """A ``parse`` pattern over whitespace-collapsed text, with smimig's strict field types (compiled once,
    on first use)."""
    return LazyPattern(pattern)


def match_line(pattern: LazyPattern, line: str, text: str, number: int, what: str) -> dict[str, Any]:
    """Match one whitespace-collapsed line or raise ParseError naming it."""
    result = pattern.parse(" ".join(line.split()))
    if result is None:
        raise ParseError(f"unrecognised {what}", text, number)
    named: dict[str, Any] = result.named
    return named


def is_empty_message(text: str, messages: Collection[str]) -> bool:
    """Whether the whole text is one or more of the "nothing to list" messages."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return bool(lines) and all(line in messages for line in lines)


def placements_from(starts: str, size: int) -> tuple[Placement, ...]:
    """``"0,2"`` and ``2`` (from ``{0,2}:2``) -> ``(Placement(0, 2), Placement(2, 2))``."""
    return tuple(Placement(int(start), size) for start in starts.split(",") if start)
