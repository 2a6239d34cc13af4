"""Every test runs against a node lock and lease ledger of its own session, never this machine's; ``invoke``
runs a command-line test in process and, in the slow run, through the console script."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.command_line import Invoke, console_script, in_process


@pytest.fixture(autouse=True, scope="session")
def _own_node_lock(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """``$SMIMIG_LOCK_FILE`` in a temporary directory (tests that need their own set it again): no test waits
    for, writes to or reads the real ``/run/lock/smimig.lock`` and its ledger, nor the processes they spawn."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SMIMIG_LOCK_FILE", str(tmp_path_factory.mktemp("node-lock") / "smimig.lock"))
        yield


@pytest.fixture(
    params=[in_process, pytest.param(console_script, marks=pytest.mark.slow)], ids=["in-process", "console-script"]
)
def invoke(request: pytest.FixtureRequest) -> Invoke:
    """Each command-line test that asks for it runs in process (the default suite) and through the console
    script (slow): tests/command_line.py."""
    way: Invoke = request.param
    return way
