"""Any mutation of any fixture parses or raises ParseError: never another exception."""

from __future__ import annotations

import contextlib
from typing import Any, Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smimig import ParseError, parsers
from tests.fixtures import cases

CASES = cases()
PARSERS: dict[str, Callable[..., list[Any]]] = {
    name: getattr(parsers, name) for name in parsers.__all__ if name.startswith("parse_")
}
# Box-drawing and digits, plus what Python calls digits or line breaks but nvidia-smi never prints.
BOX_CHARS = "+-=|: */.,{}0123456789abcMIGgbx\t\u00b2\uff15\u0663\u2028\x0b\x85"


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, str]:
    case = draw(st.sampled_from(CASES))
    lines = case.text.splitlines(keepends=True)
    for _ in range(draw(st.integers(1, 4))):
        if not lines:
            break
        index = draw(st.integers(0, len(lines) - 1))
        action = draw(st.sampled_from(["drop", "duplicate", "truncate", "change", "insert"]))
        line = lines[index]
        if action == "drop":
            del lines[index]
        elif action == "duplicate":
            lines.insert(index, line)
        elif action == "truncate":
            lines[index] = line[: draw(st.integers(0, max(len(line) - 1, 0)))]
        elif action == "change" and line:
            position = draw(st.integers(0, len(line) - 1))
            lines[index] = line[:position] + draw(st.sampled_from(BOX_CHARS)) + line[position + 1 :]
        else:
            lines.insert(index, draw(st.text(alphabet=BOX_CHARS, max_size=40)) + "\n")
    return case.parser, "".join(lines)


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(mutated())
def test_mutations_parse_or_raise_parse_error(mutation: tuple[str, str]) -> None:
    name, text = mutation
    try:
        PARSERS[name](text)
    except ParseError as error:
        assert error.text == text  # noqa: PT017  # hypothesis needs one body for both outcomes


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(PARSERS)), st.text(max_size=300))
def test_any_text_parses_or_raises_parse_error(name: str, text: str) -> None:
    with contextlib.suppress(ParseError):
        PARSERS[name](text)
