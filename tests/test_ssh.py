"""SshRunner: what it runs and how it reads ssh's failures (in process, ssh faked by pytest-subprocess), and,
in the slow run, end to end against a real OpenSSH server on 127.0.0.1, its nvidia-smi being the simulator.

The server (tests/sshd.py) runs with a throw-away host key and user key from a temporary directory; .ci/run
installs Debian's openssh-server. The seed's walk-through runs through SshRunner.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

import smimig
from smimig import RemoteError, SshRunner, cli
from smimig.sim import SimulatedRunner
from tests.sshd import SSHD, client_options, free_port, keygen, need, sshd, user_key


@attrs.frozen
class Server:
    port: int
    key: Path
    stand_in: Path
    state: Path

    def runner(self, **changes: object) -> SshRunner:
        options = [*client_options(self.key), "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10"]
        fields: dict[str, object] = {
            "host": "127.0.0.1",
            "port": self.port,
            "options": options,
            "executable": str(self.stand_in),
        }
        fields.update(changes)
        return SshRunner(**fields)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    need(SSHD, "openssh-server")
    root = tmp_path_factory.mktemp("sshd")
    key = user_key(root)
    state = root / "node.json"
    stand_in = root / "nvidia-smi"
    stand_in.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m smimig.sim --state "{state}" --model A30x4 "$@"\n')
    stand_in.chmod(0o755)
    port = free_port()
    pythonpath = str(Path(smimig.__file__).resolve().parent.parent)
    with sshd(root, port, root / "authorized_keys", set_env={"PYTHONPATH": pythonpath}):
        yield Server(port, key, stand_in, state)


@pytest.mark.slow
def test_seed_walkthrough_over_ssh(server: Server) -> None:
    smi = smimig.Smi(runner=server.runner())
    assert next(gpu.uuid for gpu in smi.list_gpus()) == "GPU-d8430827-89da-89df-1d70-bde0c9883859"
    smi.enable_mig(0)
    created = smi.create_gi(0, ["5", "2g.12gb"])
    assert [(gi.id, gi.profile_name) for gi in created] == [(1, "MIG 2g.12gb"), (2, "MIG 2g.12gb")]
    assert [(gi.id, str(gi.placement)) for gi in smi.list_gis(0)] == [(1, "0:2"), (2, "2:2")]
    smi.destroy_gi(0)
    smi.create_gi(0, ["MIG 2g.12gb", "5"], ci=True)
    assert [d.uuid for d in smi.list_gpus(0)[0].mig_devices] == [
        "MIG-89b757f7-3c4c-5b1c-9476-a11b14aa9308",
        "MIG-6df26cf8-a984-58d3-978e-acb0c808d513",
    ]
    smi.destroy_ci(0)
    smi.create_ci(0, 1, ["0", "0"])
    smi.create_ci(0, 2, ["1c.2g.12gb", "1c.2g.12gb"])
    assert len(smi.list_cis()) == 4
    assert "MIG-6f79e1f8-f1ed-5121-976a-4ff3f0df8634" in str(smi.status())
    smi.destroy_ci(0)
    smi.destroy_gi(0)
    assert smi.list_gis(0) == []


@pytest.mark.slow
def test_arguments_cannot_escape(server: Server, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    runner = server.runner()
    # Passed straight to the runner (the API refuses these long before): quoted, so nvidia-smi gets them.
    result = runner.run(["mig", f"-bogus; touch {marker}", "$(touch x)", "a b"])
    assert not marker.exists()
    assert result.returncode == 2
    assert result.stdout == f'Option "-bogus; touch {marker}" is not recognized.\n'
    with pytest.raises(ValueError, match="profile"):
        smimig.Smi(runner=runner).create_gi(0, ["5; touch x"])


@pytest.mark.slow
def test_unreachable_port_and_refused_key(server: Server, tmp_path: Path) -> None:
    with pytest.raises(RemoteError) as unreachable:
        smimig.Smi(runner=server.runner(port=free_port())).list_gpus()
    assert unreachable.value.host == "127.0.0.1"
    assert "refused" in unreachable.value.stderr.lower()
    keygen(tmp_path / "stranger")
    with pytest.raises(RemoteError) as refused:
        smimig.Smi(runner=server.runner(options=client_options(tmp_path / "stranger"))).list_gpus()
    assert "permission denied" in refused.value.stderr.lower()


@pytest.mark.slow
def test_nvidia_smi_missing_on_the_host(server: Server) -> None:
    with pytest.raises(smimig.NvidiaSmiNotFound) as caught:
        smimig.Smi(runner=server.runner(executable="/nonexistent/nvidia-smi")).list_gpus()
    assert "127.0.0.1" in str(caught.value)


@pytest.mark.slow
def test_cli_host_option(server: Server) -> None:
    env = {
        **os.environ,
        "SMIMIG_SSH_OPTIONS": " ".join(server.runner().options),
        "SMIMIG_NVIDIA_SMI": str(server.stand_in),
    }
    result = subprocess.run(
        [sys.executable, "-m", "smimig", "--host", f"127.0.0.1:{server.port}", "gpus"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "GPU-d8430827-89da-89df-1d70-bde0c9883859" in result.stdout


@pytest.mark.parametrize("host", ["-oProxyCommand=x", "a b", "host;rm", ""])
def test_bad_hosts_are_refused(host: str) -> None:
    with pytest.raises(ValueError, match="host"):
        SshRunner(host)


def test_argv_quotes_every_argument() -> None:
    runner = SshRunner("node3", user="alice", port=2222, options=["-o", "ConnectTimeout=5"])
    assert runner.argv(["mig", "-cgi", "MIG 2g.12gb,9:0"]) == [
        "ssh",
        "-o",
        "BatchMode=yes",
        "-p",
        "2222",
        "-l",
        "alice",
        "-o",
        "ConnectTimeout=5",
        "--",
        "node3",
        "nvidia-smi mig -cgi 'MIG 2g.12gb,9:0'",
    ]


# -- in process: ssh itself faked, so no server is needed -------------------------------------------


def test_ssh_answers_and_failures(fp: Any) -> None:
    runner = SshRunner("node3", user="alice")
    node = SimulatedRunner("A30", gpus=2)
    fp.register(runner.argv(["-L"]), stdout=node.run(["-L"]).stdout)
    fp.register(
        runner.argv(["mig", "-lgi"]), stderr="ssh: connect to host node3 port 22: Connection refused\n", returncode=255
    )
    fp.register(runner.argv(["mig", "-lci"]), stderr="bash: line 1: nvidia-smi: command not found\n", returncode=127)
    smi = smimig.Smi(runner=runner)
    assert [gpu.uuid for gpu in smi.list_gpus()][:1] == ["GPU-d8430827-89da-89df-1d70-bde0c9883859"]
    with pytest.raises(RemoteError) as unreachable:
        smi.list_gis()
    assert (unreachable.value.host, unreachable.value.returncode) == ("node3", 255)
    assert "Connection refused" in str(unreachable.value)
    with pytest.raises(smimig.NvidiaSmiNotFound, match="node3") as missing:
        smi.list_cis()
    assert "command not found" in str(missing.value)


def test_cli_host_option_in_process(fp: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMIMIG_SSH_OPTIONS", "-o ConnectTimeout=5")
    monkeypatch.delenv("SMIMIG_NVIDIA_SMI", raising=False)
    argv = SshRunner("node3", user="alice", port=2222, options=["-o", "ConnectTimeout=5"]).argv(["-L"])
    fp.register(argv, stdout=SimulatedRunner("A30", gpus=1).run(["-L"]).stdout)
    out = io.StringIO()
    assert cli.main(["--host", "alice@node3:2222", "gpus"], out, io.StringIO()) == 0
    assert "GPU-d8430827-89da-89df-1d70-bde0c9883859" in out.getvalue()
