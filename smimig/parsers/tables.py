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

from typing import TYPE_CHECKING, NamedTuple

from smimig.errors import ParseError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

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


# NamedTuples, not attrs classes: one is built for every line read, and a command that prints one listing
# should not pay at start for making three more classes (attrs compiles each one's methods).
class Line(NamedTuple):
    """One content line of a box: its cells (stripped) and its 1-based line number in the text."""

    number: int
    cells: tuple[str, ...]

    @property
    def text(self) -> str:
        """All cells joined, whitespace collapsed to single spaces."""
        return " ".join(" ".join(self.cells).split())


class Record(NamedTuple):
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


class Box(NamedTuple):
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
    if all(synonym[0] not in words for synonym in HEADING_SYNONYMS):  # the common case: nothing renamed
        return list(words)
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
    # (str.strip with characters leaves nothing exactly when the text has no other character: a C loop.)
    return line[1:2] == "-" and line[0] in "+|" and line[-1] in "+|" and not line[1:-1].strip("+- ")


def _is_rule(line: str) -> bool:
    return line[:1] == "|" and "=" in line and not line.strip("|=+")


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
    number = first + 1  # 1-based: the line after the top border is number first + 2
    for raw in lines[first + 1 : last - 1]:
        number += 1
        if raw[1:2] == "-" and _is_border(raw):
            if seen_rule:
                if current:
                    records.append(Record(tuple(current), border_above))
                    current = []
                border_above = raw
            continue
        if "=" in raw and _is_rule(raw):
            if seen_rule or title is None:
                raise ParseError("unexpected ==== rule in table", text, number)
            seen_rule = True
            continue
        if raw[0] != "|" or raw[-1] != "|":
            raise ParseError("table line must be enclosed in | ... |", text, number)
        line = Line(number, tuple([cell.strip() for cell in raw[1:-1].split("|")]))
        if seen_rule:
            current.append(line)
        elif title is None:
            title = line
        else:
            header.append(line)
    if current:
        records.append(Record(tuple(current), border_above))
    if title is None:
        raise ParseError("table has no title line", text, first + 1)
    return Box(title.text, tuple(header), tuple(records), first + 1, last)


def read_boxes(text: str) -> tuple[list[Box], list[tuple[int, str]]]:
    """Split ``text`` into its boxes and the other, non-blank lines (with their line numbers).

    Trailing white space on a line is ignored (driver 515 pads a blank line between boxes with spaces).
    """
    lines = [line.rstrip() for line in text.splitlines()]
    boxes: list[Box] = []
    loose: list[tuple[int, str]] = []
    index = 0
    count = len(lines)
    while index < count:
        line = lines[index]
        if line[:1] in ("+", "|"):
            end = index + 1
            while end < count and lines[end][:1] in ("+", "|"):
                end += 1
            boxes.append(_read_box(text, lines, index, end))
            index = end
            continue
        if line:
            loose.append((index + 1, line))
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
