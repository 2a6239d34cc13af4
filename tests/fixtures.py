"""Loads the recorded fixtures and their hand-written expected results (fixtures/**/<name>.json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


@attrs.frozen
class Case:
    """One fixture: the recorded text, which parser reads it, and what it must give."""

    path: Path
    parser: str
    text: str
    expected: Any
    options: dict[str, Any]

    @property
    def id(self) -> str:
        return f"{self.parser}:{self.path.parent.name}/{self.path.stem}"


def output_of(json_path: Path) -> str:
    """The recorded stdout beside a .json: ``<name>.txt`` or, for the H100 captures, ``<name>.stdout``.

    A second reading of the same recording is ``<name>.<what>.json`` (``table.processes.json``).
    """
    base = json_path.parent / json_path.name.split(".")[0]
    for suffix in (".txt", ".stdout"):
        candidate = base.with_suffix(suffix)
        if candidate.exists():
            return candidate.read_text(encoding="utf-8")
    raise FileNotFoundError(f"no .txt or .stdout beside {json_path}")


def cases() -> list[Case]:
    found = []
    for path in sorted(FIXTURES.rglob("*.json")):
        spec = json.loads(path.read_text(encoding="utf-8"))
        if not spec.get("parser"):
            continue
        options = {"fields": tuple(spec["fields"])} if "fields" in spec else {}
        found.append(Case(path, spec["parser"], output_of(path), spec["expected"], options))
    return found


def recording(directory: str, name: str) -> tuple[str, str, int]:
    """stdout, stderr and exit code of an H100-style capture (``<name>.stdout/.stderr/.rc``)."""
    base = FIXTURES / directory / name
    return (
        base.with_suffix(".stdout").read_text(encoding="utf-8"),
        base.with_suffix(".stderr").read_text(encoding="utf-8"),
        int(base.with_suffix(".rc").read_text(encoding="utf-8").strip()),
    )


def text_of(relative: str) -> str:
    return (FIXTURES / relative).read_text(encoding="utf-8")
