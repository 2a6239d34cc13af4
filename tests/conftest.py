"""Every test runs against a node lock and lease ledger of its own session, never this machine's."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True, scope="session")
def _own_node_lock(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """``$SMIMIG_LOCK_FILE`` in a temporary directory (tests that need their own set it again): no test waits
    for, writes to or reads the real ``/run/lock/smimig.lock`` and its ledger, nor the processes they spawn."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SMIMIG_LOCK_FILE", str(tmp_path_factory.mktemp("node-lock") / "smimig.lock"))
        yield
