"""The console script's entry point: a Ctrl-C while the command line loads ends like a Ctrl-C later."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from types import ModuleType

import pytest

from smimig import _start
from smimig.exit_codes import explain


class _InterruptedImport:
    """A finder that is "interrupted" while smimig.cli loads, as a Ctrl-C at that moment would."""

    def find_spec(self, name: str, path: Sequence[str] | None = None, target: ModuleType | None = None) -> None:
        if name == "smimig.cli":
            raise KeyboardInterrupt


def test_ctrl_c_while_the_command_line_loads(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delitem(sys.modules, "smimig.cli", raising=False)
    monkeypatch.setattr(sys, "meta_path", [_InterruptedImport(), *sys.meta_path])
    with pytest.raises(SystemExit) as exited:
        _start.main()
    code, lines = explain(KeyboardInterrupt())
    assert exited.value.code == code == _start.INTERRUPTED
    assert capsys.readouterr().err == "".join(f"{line}\n" for line in lines)


def test_the_entry_point_runs_the_command_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["smimig", "--version"])
    with pytest.raises(SystemExit) as exited:
        _start.main()
    assert exited.value.code == 0
    assert capsys.readouterr().out.startswith("smimig ")
