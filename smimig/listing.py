"""How results look: plain text tables (tabulate's "simple" format) for ``print()``, HTML tables for Jupyter.

A :class:`Listing` is a ``list`` of models (it still compares, indexes and iterates as one) that also knows
how to show itself. :func:`text_table` lays out the cells smimig prints (one line of printable ASCII each)
exactly as tabulate does and hands any other cell to tabulate itself: importing tabulate reads its own package
metadata (importlib.metadata, email, zipfile, csv …), a third of the start-up of ``smimig gis``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

import attrs

__all__ = ["Listing", "cell_text", "rows_of", "text_table"]

T = TypeVar("T")


def cell_text(value: object) -> str:
    """One value as a table cell: placements as ``start:size`` (all of them: ``0:2, 2:2, 4:2``), nested
    models without a text of their own by count, bools as yes/no."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return ""
    if isinstance(value, tuple):
        if value and attrs.has(type(value[0])) and "__str__" not in vars(type(value[0])):
            return str(len(value))  # nested models without a text of their own (a GI's compute instances)
        return ", ".join(cell_text(item) for item in value)  # placements: "0:2, 2:2, 4:2"
    return str(value)


def rows_of(items: Iterable[object]) -> tuple[list[str], list[list[str]]]:
    """Header and rows for a sequence of attrs models (the field names, in order)."""
    items = list(items)
    if not items:
        return [], []
    model: Any = type(items[0])
    fields = [field.name for field in attrs.fields(model)]
    return fields, [[cell_text(getattr(item, name)) for name in fields] for item in items]


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """``tabulate(rows, headers=header, tablefmt="simple", disable_numparse=True)``, the same text: columns
    left-aligned, each at least two wider than its heading, two spaces apart, the headings underlined.

    >>> print(text_table(["gpu", "name"], [["0", "MIG 2g.12gb"]]))
    gpu    name
    -----  -----------
    0      MIG 2g.12gb
    """
    if not all(cell.isascii() and cell.isprintable() for row in (header, *rows) for cell in row):
        # Wide characters, control codes, line breaks: tabulate's own rules, not restated here.
        from tabulate import tabulate  # noqa: PLC0415  # only for cells smimig does not print itself

        return str(tabulate(rows, headers=header, tablefmt="simple", disable_numparse=True))
    rows = [[cell.strip() for cell in row] for row in rows]
    widths = [max([len(name) + 2, *(len(row[column]) for row in rows)]) for column, name in enumerate(header)]
    lines = [header, ["-" * width for width in widths], *rows]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in lines)


class Listing(list[T]):
    """A list of models that prints as a table and shows as an HTML table in Jupyter.

    ``warnings`` keeps what nvidia-smi printed besides the results of a change (a persistence-mode warning,
    a line smimig does not know), so nothing it said is lost.
    """

    def __init__(self, items: Iterable[T] = (), warnings: Iterable[str] = ()) -> None:
        super().__init__(items)
        self.warnings: tuple[str, ...] = tuple(warnings)

    def __str__(self) -> str:
        if not self:
            return "(none)"
        header, rows = rows_of(self)
        return text_table(header, rows)

    def _repr_html_(self) -> str:
        if not self:
            return "<p><em>(none)</em></p>"
        import html  # noqa: PLC0415  # only in Jupyter: a command that prints a table does not load it

        header, rows = rows_of(self)
        head = "".join(f"<th>{html.escape(name)}</th>" for name in header)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # noqa: ANN401  # IPython's printer
        printer.text(str(self) if not cycle else "[...]")
