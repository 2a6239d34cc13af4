"""The shared reader of nvidia-smi's boxed ``+---+`` tables.

It reads a box by its structure, never by character offsets, so tables of any width parse alike (driver
515 prints 79-column tables, 545 prints 89, 580 prints 91 with wider cells)::

    +--------------------------------+      border: '+' and '-' (a merged cell leaves spaces in it;
                                            the GPU table's inner borders may open with '|')
    | GPU instances:                 |      title: the first content line
    | GPU   Name      Profile  ...   |      header lines, up to the rule
    |================================|      rule: '=' (and '|' or '+' where columns meet)
    |   0  MIG 2g.12gb    5   ...    |      a record: the content lines between two borders
    +--------------------------------+

A content line is split into cells at its ``|`` characters. Text between boxes (a timestamp, blank lines)
is kept apart, so a caller can insist that a listing is one box and nothing else.

Headings are read as words, line by line, and the words drivers renamed are read as the names smimig knows
(:data:`HEADING_SYNONYMS`: driver 580 heads the "MIG devices:" memory column "Shared Memory-Usage"). A
column that some drivers leave out is declared
optional by its heading words (``-lci`` on early drivers has no Placement column); any other difference in
the headings raises ``ParseError``: a column smimig does not know is never read as one it does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import attrs

from smimig.errors import ParseError

__all__ = [
    "HEADING_SYNONYMS",
    "Box",
    "Line",
    "Record",
    "canonical_words",
    "read_boxes",
    "read_listing_box",
    "read_single_box",
]

HEADING_SYNONYMS: Mapping[tuple[str, ...], tuple[str, ...]] = {
    # Driver 580 and later, every GPU (A100, H100, RTX PRO 6000 Blackwell …): the "MIG devices:" box.
    ("Shared", "Memory-Usage"): ("Memory-Usage",),
    ("Shared", "BAR1-Usage"): ("BAR1-Usage",),
}
"""Heading words some drivers print (left) for the words smimig reads (right)."""

_BORDER_CHARS = frozenset("+- ")
_RULE_CHARS = frozenset("|=+")


@attrs.frozen
class Line:
    """One content line of a box: its cells (stripped) and its 1-based line number in the text."""

    number: int
    cells: tuple[str, ...]

    @property
    def text(self) -> str:
        """All cells joined, whitespace collapsed to single spaces."""
        return " ".join(" ".join(self.cells).split())


@attrs.frozen
class Record:
    """The content lines between two borders below the rule, and the border above them (None right below
    the rule). A border with spaces where a column is (``+----+      +----+``) merges that cell with the
    record above."""

    lines: tuple[Line, ...]
    border_above: str | None = None

    def merged_above(self, column: int) -> bool:
        """Whether the border above leaves cell ``column`` open, joining it to the record above."""
        if self.border_above is None:
            return False
        segments = self.border_above[1:-1].split("+")
        return column < len(segments) and not segments[column].strip()

    @property
    def number(self) -> int:
        """The line number of the record's first line."""
        return self.lines[0].number


@attrs.frozen
class Box:
    """One boxed table: its title, header lines and records."""

    title: str
    header: tuple[Line, ...]
    records: tuple[Record, ...]
    first_line: int
    last_line: int

    def header_words(self) -> list[str]:
        """Every word of the header lines, in reading order (line by line, cell by cell)."""
        return [word for line in self.header for cell in line.cells for word in cell.split()]

    def column_header(self, column: int) -> list[str]:
        """The words of one column's header cells, top to bottom, renamed headings read as smimig's names
        cell by cell (a synonym never spans two lines)."""
        return [
            word
            for line in self.header
            if column < len(line.cells)
            for word in canonical_words(line.cells[column].split())
        ]


def canonical_words(words: Sequence[str]) -> list[str]:
    """``words`` with every renamed heading (:data:`HEADING_SYNONYMS`) replaced by the name smimig reads."""
    result: list[str] = []
    index = 0
    while index < len(words):
        for synonym, canonical in HEADING_SYNONYMS.items():
            if tuple(words[index : index + len(synonym)]) == synonym:
                result.extend(canonical)
                index += len(synonym)
                break
        else:
            result.append(words[index])
            index += 1
    return result


def _without(words: Sequence[str], dropped: Sequence[str]) -> list[str]:
    remaining = list(words)
    for word in dropped:
        remaining.remove(word)
    return remaining


def _is_border(line: str) -> bool:
    # Driver 515 opens the GPU table's inner borders with '|' ("|----+----+"), 545 with "|----+----+".
    return (
        len(line) > 1 and line[0] in "+|" and line[-1] in "+|" and line[1] == "-" and set(line[1:-1]) <= _BORDER_CHARS
    )


def _is_rule(line: str) -> bool:
    return line.startswith("|") and "=" in line and set(line) <= _RULE_CHARS


def _cells(line: str) -> tuple[str, ...]:
    return tuple(cell.strip() for cell in line[1:-1].split("|"))


def _read_box(text: str, lines: Sequence[str], first: int, last: int) -> Box:  # noqa: PLR0912
    """Read ``lines[first:last]``, all of which start with '+' or '|'."""
    if not _is_border(lines[first]):
        raise ParseError("a table must start with a +---+ border", text, first + 1)
    if not _is_border(lines[last - 1]):
        raise ParseError("a table must end with a +---+ border", text, last)
    title: Line | None = None
    header: list[Line] = []
    records: list[Record] = []
    current: list[Line] = []
    border_above: str | None = None
    seen_rule = False
    for index in range(first + 1, last - 1):
        raw = lines[index]
        number = index + 1
        if _is_border(raw):
            if seen_rule and current:
                records.append(Record(tuple(current), border_above))
                current = []
            if seen_rule:
                border_above = raw
            continue
        if _is_rule(raw):
            if seen_rule or title is None:
                raise ParseError("unexpected ==== rule in table", text, number)
            seen_rule = True
            continue
        if not (raw.startswith("|") and raw.endswith("|")):
            raise ParseError("table line must be enclosed in | ... |", text, number)
        line = Line(number, _cells(raw))
        if title is None:
            title = line
        elif seen_rule:
            current.append(line)
        else:
            header.append(line)
    if current:
        records.append(Record(tuple(current), border_above))
    if title is None:
        raise ParseError("table has no title line", text, first + 1)
    return Box(
        title=title.text,
        header=tuple(header),
        records=tuple(records),
        first_line=first + 1,
        last_line=last,
    )


def read_boxes(text: str) -> tuple[list[Box], list[tuple[int, str]]]:
    """Split ``text`` into its boxes and the other, non-blank lines (with their line numbers).

    Trailing white space on a line is ignored (driver 515 pads a blank line between boxes with spaces).
    """
    lines = [line.rstrip() for line in text.splitlines()]
    boxes: list[Box] = []
    loose: list[tuple[int, str]] = []
    index = 0
    while index < len(lines):
        if lines[index].startswith(("+", "|")):
            end = index
            while end < len(lines) and lines[end].startswith(("+", "|")):
                end += 1
            boxes.append(_read_box(text, lines, index, end))
            index = end
            continue
        if lines[index].strip():
            loose.append((index + 1, lines[index]))
        index += 1
    return boxes, loose


def read_single_box(text: str, title: str, header: Sequence[str]) -> Box:
    """Read text that must be exactly one box with this title and these header words (or their synonyms).

    Raises:
        ParseError: anything else in the text, another title, or other header words (a new driver that
            adds or renames a column must not be read as if it had not).
    """
    box, _ = read_listing_box(text, title, header)
    return box


def read_listing_box(
    text: str, title: str, header: Sequence[str], optional: Mapping[str, Sequence[str]] | None = None
) -> tuple[Box, frozenset[str]]:
    """:func:`read_single_box`, where the columns named in ``optional`` (name -> heading words) may be missing.

    Returns the box and the names of the optional columns it lacks.
    """
    boxes, loose = read_boxes(text)
    if loose:
        number, _ = loose[0]
        raise ParseError(f"unexpected text outside the {title!r} table", text, number)
    if len(boxes) != 1:
        raise ParseError(f"expected one {title!r} table, found {len(boxes)}", text)
    box = boxes[0]
    if box.title != title:
        raise ParseError(f"expected a table titled {title!r}", text, box.first_line + 1)
    if not box.records:  # nvidia-smi says "No … found" instead of printing an empty table
        raise ParseError(f"the {title!r} table has no rows", text, box.last_line)
    words = [word for line in box.header for cell in line.cells for word in canonical_words(cell.split())]
    optional = optional or {}
    names = sorted(optional)
    for mask in range(2 ** len(names)):  # every subset of the optional columns left out, none first
        missing = frozenset(name for bit, name in enumerate(names) if mask >> bit & 1)
        if words == _without(header, [word for name in sorted(missing) for word in optional[name]]):
            return box, missing
    first_header = box.header[0].number if box.header else box.first_line + 1
    raise ParseError(
        f"unrecognised header of the {title!r} table (expected {' '.join(header)!r})",
        text,
        first_header,
    )
