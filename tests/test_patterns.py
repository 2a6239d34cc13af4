"""The parsers' line patterns, written in parse's format language and translated by smimig itself into plain
regexes (smimig/parsers/_common.py says why), match exactly the lines parse itself matches, with the same
fields: over every line and cell of every recording, and over generated lines near each pattern."""

from __future__ import annotations

import re
from functools import cache
from typing import Any

import parse
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smimig.parsers import devices, instances, messages, profiles
from smimig.parsers._common import FIELD_TYPES, Pattern
from tests.fixtures import FIXTURES

PATTERNS = sorted(
    {
        value.pattern: value
        for module in (devices, instances, messages, profiles)
        for value in vars(module).values()
        if isinstance(value, Pattern)
    }.values(),
    key=lambda pattern: pattern.pattern,
)


@cache
def reference(pattern: str) -> Any:  # parse ships no types
    def typed(regex: str, convert: Any) -> Any:
        return parse.with_pattern(regex)(lambda text: text if convert is None else convert(text))

    types = {name: typed(regex, convert) for name, (regex, convert) in FIELD_TYPES.items()}
    return parse.compile(pattern, extra_types=types, case_sensitive=True)


def parse_fields(pattern: str, text: str) -> dict[str, Any] | None:
    result = reference(pattern).parse(text)
    return None if result is None else dict(result.named)


@cache
def recorded_lines() -> list[str]:
    """Every line of every recording, every cell of its boxed tables, and each boxed line's cells joined, alone
    and with the next line after a line break (as two-line records are matched), whitespace collapsed."""
    found: set[str] = set()
    for path in FIXTURES.rglob("*"):
        if path.suffix not in (".txt", ".stdout", ".stderr"):
            continue
        inner = []
        for line in path.read_text(encoding="utf-8").splitlines():
            found.add(" ".join(line.split()))
            found.update(" ".join(cell.split()) for cell in line.strip("|+").split("|"))
            stripped = line.strip()
            inner.append(" ".join(" ".join(stripped[1:-1].split("|")).split()) if stripped.startswith("|") else "")
        found.update(inner)
        found.update(f"{first}\n{second}" for first, second in zip(inner, inner[1:]) if first and second)
    return sorted(found)


def test_every_parser_module_has_patterns() -> None:
    assert len(PATTERNS) >= 10


@pytest.mark.parametrize("pattern", PATTERNS, ids=[pattern.pattern for pattern in PATTERNS])
def test_recorded_lines_match_as_parse_matches_them(pattern: Pattern) -> None:
    matched = 0
    for line in recorded_lines():
        expected = parse_fields(pattern.pattern, line)
        assert pattern.match(line) == expected, line
        matched += expected is not None
    assert matched, f"no recording has a line for {pattern.pattern!r}"


FIELD = re.compile(r"\{(?P<name>\w+)(?::(?P<type>\w+))?\}")  # a field of a line pattern: {name} or {name:Type}

# Values near each field type: valid ones, and the forms a strict type must refuse.
_NEAR = {
    "Int": ["0", "7", "42", "123456789012", "1234567890123", "-1", "+3", "0x1F", "\u0661", "\u00b2", "", "1 2", "1.0"],
    "Float": ["9.75", "0", "79.25", "1234567890.1", "1.1234567", "nan", "inf", "-1.5", "1e3", ".5", "5."],
    "YesNo": ["Yes", "No", "yes", "NO", "", "Y"],
    "Name": ["MIG 1g.10gb", "MIG 1c.2g.12gb", "MIG 1g.24gb+me.all", "MIG", "MIG  x", "mig 1g.5gb", "MIG a b"],
    "Default": ["", "*", "**", " *"],
    "Placement": ["0:1", "4:4", "12:3", "0:", ":1", "0-1", "1:2:3"],
    None: ["0", "x", "N/A", "", "a b"],
}


@st.composite
def near_lines(draw: st.DrawFn) -> tuple[Pattern, str]:
    pattern = draw(st.sampled_from(PATTERNS))
    parts: list[str] = []
    end = 0
    for field in FIELD.finditer(pattern.pattern):
        parts.append(pattern.pattern[end : field.start()])
        parts.append(draw(st.sampled_from(_NEAR[field["type"]])))
        end = field.end()
    parts.append(pattern.pattern[end:])
    text = "".join(parts)
    if text and draw(st.booleans()):  # and now and then one character changed, dropped or doubled
        position = draw(st.integers(0, len(text) - 1))
        text = (
            text[:position]
            + draw(st.sampled_from(["", " ", "  ", text[position] * 2, "(", "\n"]))
            + text[position + 1 :]
        )
    return pattern, text


@settings(max_examples=400, deadline=None)
@given(near_lines())
def test_lines_near_a_pattern_match_as_parse_matches_them(case: tuple[Pattern, str]) -> None:
    pattern, text = case
    assert pattern.match(text) == parse_fields(pattern.pattern, text)


def test_the_translation_refuses_what_it_does_not_translate() -> None:
    with pytest.raises(ValueError, match="braces"):
        Pattern("{{literal}} {id:Int}").match("x")
    with pytest.raises(ValueError, match="field type"):
        Pattern("{id:Int} {id:Int}").match("1 1")
    with pytest.raises(ValueError, match="unknown field type"):
        Pattern("{id:d}").match("1")
