"""Throw-away OpenSSH servers on 127.0.0.1 for the slow tests (tests/test_ssh.py, tests/test_ansible.py).

A server runs from a temporary directory with a host key of its own, lets in the key pair that
:func:`user_key` makes, and is stopped when its ``with`` ends. .ci/run installs Debian's openssh-server.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import pytest

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


def skip_unless_ci(reason: str) -> NoReturn:
    """Skip for want of ``reason``, except in CI, which skips nothing: there it fails."""
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def need(program: str, package: str) -> None:
    """``program`` (a path) from Debian's ``package``, or skip (fail in CI)."""
    if not Path(program).exists():
        skip_unless_ci(f"{package} is needed (Debian: apt-get install {package}; .ci/run installs it)")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def keygen(path: Path) -> None:
    """An ed25519 key pair without passphrase at ``path`` and ``path``.pub."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)


def user_key(root: Path) -> Path:
    """The key ``root/user``, written into ``root/authorized_keys`` for the servers to let in."""
    keygen(root / "user")
    (root / "authorized_keys").write_text((root / "user.pub").read_text())
    return root / "user"


def client_options(key: Path) -> list[str]:
    """ssh's options to log in with ``key`` alone to a server whose host key is new every run."""
    return [
        "-i",
        str(key),
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "IdentitiesOnly=yes",
    ]


@contextmanager
def sshd(root: Path, port: int, authorized_keys: Path, set_env: Mapping[str, str] | None = None) -> Iterator[None]:
    """An sshd on 127.0.0.1:``port`` that lets in the keys in ``authorized_keys``, running until the ``with``
    ends; its host key, configuration, pid file and log (``sshd.log``) are in ``root``. ``set_env`` is
    passed to the sessions (sshd's SetEnv). Fails the test if sshd dies or does not listen within 20 s.
    Callers check ``need(SSHD, "openssh-server")`` first, before making keys."""
    keygen(root / "host")
    config = root / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {root / 'host'}\nPidFile {root / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {authorized_keys}\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nPubkeyAuthentication yes\nPermitRootLogin prohibit-password\n"
        + "".join(f"SetEnv {name}={value}\n" for name, value in (set_env or {}).items())
    )
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation directory
    log = root / "sshd.log"
    with log.open("w") as stderr:
        process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stderr=stderr)
    try:
        deadline = time.monotonic() + 20
        while not _listening(port):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"sshd did not start: {log.read_text()}")
            time.sleep(0.1)
        yield
    finally:
        process.terminate()
        process.wait(timeout=10)


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0
