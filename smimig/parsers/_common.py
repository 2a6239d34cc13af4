"""Pieces every parser shares: line patterns with strict field types, and the "nothing here" messages.

A line pattern is written in the format language of ``parse`` (``"{gpu:Int} {name:Name} {id:Int}"``: literal
text and named, typed fields) and translated here, once, into one plain regular expression whose groups are
converted by the field types below. Why not ``parse.compile``: its Parser evaluates every match into a Result
(fixed fields, spans, nested names) that cost more than the match itself (0.74 ms for an 11-profile ``-lgip``
table on a 2-core machine, most of it there), and importing it costs every command ~7 ms (it loads logging,
datetime and decimal). The part of the language smimig writes translates in a dozen lines;
``tests/test_patterns.py`` checks every pattern against ``parse`` itself, line by line.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Callable

from smimig.errors import ParseError
from smimig.geometry import Placement

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping

__all__ = [
    "EMPTY_LISTINGS",
    "FIELD_TYPES",
    "NO_COMPUTE_INSTANCES",
    "NO_GPU_INSTANCES",
    "NO_MIG_DEVICES",
    "NO_MIG_ENABLED_DEVICES",
    "Pattern",
    "Regex",
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


def _placement(text: str) -> Placement:
    start, size = text.split(":")
    return Placement(int(start), int(size))


def _yes(text: str) -> bool:
    return text == "Yes"


def _starred(text: str) -> bool:
    return text == "*"


# Strict field types, name -> (regex, converter; None keeps the text): parse's own {:d} and {:g} also take
# signs, base prefixes, "nan" and "inf". Numbers are bounded: nvidia-smi's are ids, counts, MiB and PIDs (at
# most 12 digits); a 400-digit "GiB" is not a figure to read as inf, and int() refuses over 4300 digits with
# a ValueError that is not a ParseError. No regex here may capture a group of its own.
FIELD_TYPES: Mapping[str, tuple[str, Callable[[str], object] | None]] = {
    "Int": (r"[0-9]{1,12}", int),  # ASCII digits: str.isdigit() and \d also take "²" and a fullwidth 5
    "Float": (r"[0-9]{1,9}(?:\.[0-9]{1,6})?", float),
    "YesNo": (r"Yes|No", _yes),
    "Name": (r"MIG \S+", None),
    "Default": (r"\*?", _starred),
    "Placement": (r"[0-9]{1,12}:[0-9]{1,12}", _placement),
}
"""The field types of smimig's line patterns (``{id:Int}``); a field without a type (``{ecc}``) is parse's
``.+?`` and stays text."""


class Regex:
    """A regular expression compiled on its first use: importing the parsers compiles nothing, and a command
    compiles only the expressions of the parsers it runs (~0.1 ms each; the parsers hold two dozen)."""

    __slots__ = ("_compiled", "pattern")

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self._compiled: re.Pattern[str] | None = None

    def __repr__(self) -> str:
        return f"Regex({self.pattern!r})"

    @property
    def compiled(self) -> re.Pattern[str]:
        """The compiled expression (compiled on the first call)."""
        if self._compiled is None:
            self._compiled = re.compile(self.pattern)
        return self._compiled

    def match(self, text: str) -> re.Match[str] | None:
        """As :meth:`re.Pattern.match`."""
        return self.compiled.match(text)

    def fullmatch(self, text: str) -> re.Match[str] | None:
        """As :meth:`re.Pattern.fullmatch`."""
        return self.compiled.fullmatch(text)

    def search(self, text: str) -> re.Match[str] | None:
        """As :meth:`re.Pattern.search`."""
        return self.compiled.search(text)


_FIELD = Regex(r"\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::(?P<type>[A-Za-z]+))?\}")


def _literal(text: str, pattern: str) -> str:
    if "{" in text or "}" in text:
        raise ValueError(f"unsupported braces in line pattern {pattern!r}")
    return re.escape(text)


def _translate(pattern: str) -> tuple[re.Pattern[str], tuple[tuple[str, Callable[[str], object] | None], ...]]:
    """The regex that matches a whole line as ``parse.compile(pattern, case_sensitive=True).parse`` does
    (``\\A…\\Z``, DOTALL), and each group's field name and converter, in order."""
    parts: list[str] = []
    fields: list[tuple[str, Callable[[str], object] | None]] = []
    end = 0
    for field in _FIELD.compiled.finditer(pattern):
        parts.append(_literal(pattern[end : field.start()], pattern))
        if field["type"] and field["type"] not in FIELD_TYPES:
            raise ValueError(f"unknown field type {field['type']!r} in line pattern {pattern!r}")
        regex, convert = FIELD_TYPES[field["type"]] if field["type"] else (r".+?", None)
        parts.append(f"({regex})")
        fields.append((field["name"], convert))
        end = field.end()
    parts.append(_literal(pattern[end:], pattern))
    compiled = re.compile(r"\A" + "".join(parts) + r"\Z", re.DOTALL)
    if compiled.groups != len(fields) or len({name for name, _ in fields}) != len(fields):
        raise ValueError(f"a field type captures a group, or a field name repeats, in {pattern!r}")
    return compiled, tuple(fields)


class Pattern:
    """A line pattern in ``parse``'s format language, translated to a regex on its first use (so importing
    smimig compiles nothing)."""

    __slots__ = ("_compiled", "pattern")

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self._compiled: tuple[re.Pattern[str], tuple[tuple[str, Callable[[str], object] | None], ...]] | None = None

    def __repr__(self) -> str:
        return f"Pattern({self.pattern!r})"

    def match(self, text: str) -> dict[str, Any] | None:
        """The fields of ``text`` converted by their types, when the whole of it matches; else None."""
        if self._compiled is None:
            self._compiled = _translate(self.pattern)
        regex, fields = self._compiled
        found = regex.match(text)
        if found is None:
            return None
        return {
            name: value if convert is None else convert(value) for (name, convert), value in zip(fields, found.groups())
        }


def compile_pattern(pattern: str) -> Pattern:
    """A line pattern over whitespace-collapsed text, with smimig's strict field types (translated once, on
    first use)."""
    return Pattern(pattern)


def match_line(pattern: Pattern, line: str, text: str, number: int, what: str) -> dict[str, Any]:
    """Match one line, its whitespace collapsed, or raise ParseError naming it."""
    fields = pattern.match(" ".join(line.split()))
    if fields is None:
        raise ParseError(f"unrecognised {what}", text, number)
    return fields


def is_empty_message(text: str, messages: Collection[str]) -> bool:
    """Whether the whole text is one or more of the "nothing to list" messages."""
    if not text.lstrip().startswith(tuple(messages)):  # a table: no need to look at every line
        return False
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return bool(lines) and all(line in messages for line in lines)


def placements_from(starts: str, size: int) -> tuple[Placement, ...]:
    """``"0,2"`` and ``2`` (from ``{0,2}:2``) -> ``(Placement(0, 2), Placement(2, 2))``."""
    return tuple(Placement(int(start), size) for start in starts.split(",") if start)
