"""The Ansible collection: its action plugins plan on the controller and run only nvidia-smi on the node.

In process (the default suite): what the actions return, over the simulator; the runner over a connection
(what reaches the node's shell, with ``become``); an action plugin's ``run`` with Ansible's connection faked.

End to end (slow): two OpenSSH servers on 127.0.0.1 as two nodes, both driven at once (``-f 2``). A node's
Python has no smimig (checked: ``import smimig`` fails there); its nvidia-smi is a wrapper script that runs the
simulator's stand-in with a state file of its own. The stand-in itself is smimig's code, run by the
controller's interpreter: that is what the test's fake GPUs need, not what a node needs (a real node needs
nvidia-smi and a shell). ansible-core comes with the test extra; .ci/run installs openssh-server and sudo.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import yaml

import smimig
from smimig.sim import Fault, SimulatedRunner
from tests.sshd import SSHD, free_port, need, skip_unless_ci, sshd, user_key

ROOT = Path(__file__).resolve().parent.parent
COLLECTION = ROOT / "ansible"
NODE_PYTHON = "/usr/bin/python3"


@pytest.fixture
def node_utils(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The collection's plugin_utils/node.py, imported as Ansible imports it."""
    pytest.importorskip("ansible", reason="ansible-core is in the test extra")
    monkeypatch.syspath_prepend(str(COLLECTION))
    from ansible_collections.smimig.mig.plugins.plugin_utils import node  # noqa: PLC0415

    return node


# -- in process: what the actions return ---------------------------------------------------------


def test_layout_apply_repeat_check_and_facts(node_utils: Any) -> None:
    smi = smimig.Smi(runner=SimulatedRunner("A100-40GB", gpus=2))
    layout = {"0": ["3g.20gb", "2g.10gb", "1g.5gb", "1g.5gb"], "1": []}
    first = node_utils.layout_result(smi, {"layout": layout}, check_mode=False)
    assert (first["changed"], len(first["devices"]), first["pending"]) == (True, 4, [])
    assert "nvidia-smi -i 0 -mig 1" in first["steps"]
    assert first["diff"]["after"].startswith("gpus:")
    second = node_utils.layout_result(smi, {"layout": layout}, check_mode=False)
    assert (second["changed"], second["steps"]) == (False, [])
    before = smi.export()
    checked = node_utils.layout_result(smi, {"layout": {"0": ["7g.40gb"]}}, check_mode=True)
    assert checked["changed"]
    assert checked["steps"][-1] == "nvidia-smi mig -i 0 -cgi 7g.40gb:0 -C"
    assert smi.export() == before
    gathered = node_utils.facts(smi)["ansible_facts"]["smimig_mig"]
    assert sorted(gi["name"] for gi in gathered["gis"]) == ["MIG 1g.5gb", "MIG 1g.5gb", "MIG 2g.10gb", "MIG 3g.20gb"]
    assert json.loads(json.dumps(gathered)) == gathered  # plain JSON, as Ansible returns it


def test_a_failed_apply_reports_what_ran_and_what_was_restored(node_utils: Any) -> None:
    node = SimulatedRunner("A100-40GB", gpus=1, mig=True, faults=[Fault("-cgi", "Insufficient Resources", nth=2)])
    smi = smimig.Smi(runner=node)
    smi.create_gi(0, ["3g.20gb", "1g.5gb"], ci=True)
    before = smi.export()
    failed = node_utils.layout_result(smi, {"layout": {"0": ["7g.40gb"]}}, check_mode=False)
    assert failed["failed"]
    assert "nvidia-smi mig -i 0 -gi 1,2 -dgi" in failed["ran"]
    assert failed["restored"]
    assert smi.export() == before


def test_a_mig_parted_file_with_one_config_needs_no_name(node_utils: Any, tmp_path: Path) -> None:
    config = tmp_path / "mig.yaml"
    config.write_text(
        "version: v1\nmig-configs:\n  lab:\n    - devices: all\n      mig-enabled: true\n"
        '      mig-devices: {"2c.4g.20gb": 1, "1c.4g.20gb": 2}\n'
    )
    smi = smimig.Smi(runner=SimulatedRunner("A100-40GB", gpus=1))
    result = node_utils.layout_result(smi, {"mig_parted_config": str(config)}, False, str(config))
    assert result["changed"], result
    assert sorted(device["name"] for device in result["devices"]) == [
        "MIG 1c.4g.20gb",
        "MIG 1c.4g.20gb",
        "MIG 2c.4g.20gb",
    ]


@attrs.define
class FakeAction:
    """An action plugin as ConnectionRunner sees it: ``_low_level_execute_command`` answered by a simulated node
    through a shell's reading of the command line (quoting included)."""

    node: SimulatedRunner
    commands: list[tuple[str, bool]] = attrs.field(factory=list)

    def _low_level_execute_command(self, cmd: str, sudoable: bool = True, in_data: str | None = None) -> dict[str, Any]:
        assert in_data  # input keeps ssh from a terminal, which would merge stderr into stdout
        self.commands.append((cmd, sudoable))
        command, _, exit_code = cmd.rpartition("; ")
        assert exit_code == "printf '\\nsmimig-nvidia-smi-exit=%d\\n' $?"
        words = shlex.split(command)
        assert words[:3] == ["LC_ALL=C", "LANG=C", "nvidia-smi"]
        answer = self.node.run(words[3:])
        return {
            "rc": 0,
            "stdout": f"{answer.stdout}\nsmimig-nvidia-smi-exit={answer.returncode}\n",
            "stderr": answer.stderr,
        }


def test_the_connection_runner_quotes_and_asks_for_become(node_utils: Any) -> None:
    action = FakeAction(SimulatedRunner("A30", gpus=1, mig=True))
    smi = smimig.Smi(runner=node_utils.ConnectionRunner(action, "nvidia-smi", "node3"))
    smi.create_gi(0, ["2g.12gb", "MIG 2g.12gb"], ci=True)
    assert any(
        command.startswith("LC_ALL=C LANG=C nvidia-smi mig -i 0 -cgi '2g.12gb,MIG 2g.12gb' -C; ")
        for command, _ in action.commands
    )
    assert all(sudoable for _, sudoable in action.commands)


def test_nvidia_smi_missing_on_the_node_names_it(node_utils: Any) -> None:
    class Missing:
        def _low_level_execute_command(
            self, cmd: str, sudoable: bool = True, in_data: str | None = None
        ) -> dict[str, Any]:
            return {"rc": 127, "stdout": "", "stderr": "/bin/sh: 1: nvidia-smi: not found\n"}

    with pytest.raises(smimig.NvidiaSmiNotFound, match="node3"):
        smimig.Smi(runner=node_utils.ConnectionRunner(Missing(), "nvidia-smi", "node3")).list_gpus()


def test_the_action_plugin_runs_over_the_connection(node_utils: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """ActionModule.run itself, with Ansible's task and connection faked: check mode and the arguments."""
    from unittest import mock  # noqa: PLC0415

    from ansible.errors import AnsibleActionFail  # noqa: PLC0415
    from ansible.playbook.play_context import PlayContext  # noqa: PLC0415
    from ansible_collections.smimig.mig.plugins.action import mig_layout  # noqa: PLC0415

    monkeypatch.setenv("SMIMIG_LOCK_FILE", os.environ["SMIMIG_LOCK_FILE"])  # the action sets its host's own
    node = SimulatedRunner("A100-40GB", gpus=1)
    task = mock.MagicMock(async_val=0, check_mode=False, diff=False, args={"layout": {"0": ["7g.40gb"]}})
    action = mig_layout.ActionModule(task, mock.MagicMock(), PlayContext(), mock.MagicMock(), mock.MagicMock(), None)
    monkeypatch.setattr(action, "_low_level_execute_command", FakeAction(node)._low_level_execute_command)
    result = action.run(task_vars={"inventory_hostname": "node3"})
    assert result["changed"], result
    assert [gi.short_name for gi in smimig.Smi(runner=node).list_gis(0)] == ["7g.40gb"]
    task.args = {"layout": {"0": ["3g.20gb"]}}
    task.check_mode = True
    result = action.run(task_vars={"inventory_hostname": "node3"})
    assert result["changed"]
    assert [gi.short_name for gi in smimig.Smi(runner=node).list_gis(0)] == ["7g.40gb"]
    task.args = {"layout": {"0": []}, "mig_parted_config": "x.yaml"}
    with pytest.raises(AnsibleActionFail, match="mutually exclusive"):  # Ansible reports it as the task's failure
        action.run(task_vars={})


# -- end to end: two nodes over real SSH ---------------------------------------------------------


def tool(name: str) -> str:
    """ansible-playbook or ansible-galaxy from the test extra (beside this interpreter, else on PATH)."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        skip_unless_ci(f"{name} not installed (pip install '.[test]': ansible-core is in the test extra)")
    return found


@attrs.frozen
class Node:
    name: str
    port: int
    state: Path
    calls: Path
    model: str

    def smi(self) -> smimig.Smi:
        """The node's GPUs as the test sees them (the stand-in over the node's state file, run here)."""
        argv = f'{sys.executable} -m smimig.sim --state "{self.state}" --model {self.model}'
        script = self.state.with_name("local-nvidia-smi")
        script.write_text(f'#!/bin/sh\nexec {argv} "$@"\n')
        script.chmod(0o755)
        return smimig.Smi(runner=smimig.SubprocessRunner(str(script)))


@attrs.frozen
class Fleet:
    root: Path
    key: Path
    nodes: tuple[Node, ...]

    def inventory(self) -> Path:
        hosts = {
            node.name: {
                "ansible_host": "127.0.0.1",
                "ansible_port": node.port,
                "ansible_user": "root",
                "ansible_ssh_private_key_file": str(self.key),
                "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
                "ansible_python_interpreter": NODE_PYTHON,
                "nvidia_smi": str(self.root / node.name / "nvidia-smi"),
            }
            for node in self.nodes
        }
        path = self.root / "inventory.yml"
        path.write_text(yaml.safe_dump({"gpu_nodes": {"hosts": hosts}}))
        return path

    def play(self, playbook: str, *options: str) -> subprocess.CompletedProcess[str]:
        (self.root / "play.yml").write_text(playbook)
        env = {
            **os.environ,
            "ANSIBLE_COLLECTIONS_PATH": str(COLLECTION),
            "ANSIBLE_LOCAL_TEMP": str(self.root / "ansible-local"),
            "ANSIBLE_SSH_CONTROL_PATH_DIR": str(self.root / "cp"),
            "ANSIBLE_HOST_KEY_CHECKING": "False",
            # The nodes log in as root (the test runs as root); become runs sudo all the same, as for a user.
            "ANSIBLE_BECOME_ALLOW_SAME_USER": "True",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_STDOUT_CALLBACK": "default",
            "ANSIBLE_DISPLAY_ARGS_TO_STDOUT": "0",
            "PYTHONPATH": str(ROOT),
        }
        argv = [tool("ansible-playbook"), "-i", str(self.inventory()), "-f", "2", *options, str(self.root / "play.yml")]
        return subprocess.run(argv, env=env, capture_output=True, text=True, check=False, timeout=600)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    need(SSHD, "openssh-server")
    need(shutil.which("sudo") or "/usr/bin/sudo", "sudo")
    root = tmp_path_factory.mktemp("fleet")
    key = user_key(root)
    nodes = []
    with contextlib.ExitStack() as servers:
        for name, model in (("node1", "A100-40GBx2"), ("node2", "A100-40GBx2")):
            home = root / name
            home.mkdir()
            node = Node(name, free_port(), home / "state.json", home / "calls.log", model)
            # The node's nvidia-smi: the stand-in, run by the controller's interpreter in a clean environment
            # (the node's own Python, /usr/bin/python3, has no smimig); each call logs who ran it (become: sudo).
            (home / "nvidia-smi").write_text(
                "#!/bin/sh\n"
                f'echo "$(id -u) ${{SUDO_USER:-none}} $*" >> "{node.calls}"\n'
                f'exec env -i PATH=/usr/bin:/bin "{sys.executable}" -m smimig.sim --state "{node.state}" '
                f'--model {model} "$@"\n'
            )
            (home / "nvidia-smi").chmod(0o755)
            servers.enter_context(sshd(home, node.port, root / "authorized_keys"))
            nodes.append(node)
        yield Fleet(root, key, tuple(nodes))


def failed_output(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout[-4000:] + result.stderr[-2000:]


LAYOUT = '{"0": ["3g.20gb", "2g.10gb", "1g.5gb", "1g.5gb"], "1": []}'
APPLY = f"""
- hosts: gpu_nodes
  gather_facts: false
  become: true
  tasks:
    - name: the node's Python has no smimig
      ansible.builtin.raw: env -i {NODE_PYTHON} -c "import smimig"
      become: false
      register: probe
      changed_when: false
      failed_when: probe.rc == 0
    - smimig.mig.mig_layout:
        nvidia_smi: "{{{{ nvidia_smi }}}}"
        layout: {LAYOUT}
      register: applied
    - ansible.builtin.assert:
        that: ["applied.devices | length == 4", "'No module named' in probe.stdout + probe.stderr"]
"""


@pytest.mark.slow
def test_two_nodes_apply_repeat_check_and_facts(fleet: Fleet) -> None:
    first = fleet.play(APPLY)
    assert first.returncode == 0, failed_output(first)
    assert first.stdout.count("changed: [node") == 2
    for node in fleet.nodes:
        assert sorted(gi.short_name for gi in node.smi().list_gis(0)) == ["1g.5gb", "1g.5gb", "2g.10gb", "3g.20gb"]
        calls = node.calls.read_text().splitlines()
        assert calls
        assert all(line.startswith("0 root ") for line in calls)  # through sudo: become honoured
    again = fleet.play(APPLY)
    assert again.returncode == 0, failed_output(again)
    assert "changed: [node" not in again.stdout
    assert "node1                      : ok=3    changed=0" in again.stdout

    checked = fleet.play(APPLY.replace(LAYOUT, '{"0": ["7g.40gb"]}'), "--check", "--diff")
    assert checked.returncode != 0  # the assert on four devices fails: check mode changed nothing
    assert checked.stdout.count("changed: [node") == 2
    assert "+  0:\n+  - 7g.40gb" in checked.stdout or "7g.40gb" in checked.stdout
    for node in fleet.nodes:
        assert sorted(gi.short_name for gi in node.smi().list_gis(0)) == ["1g.5gb", "1g.5gb", "2g.10gb", "3g.20gb"]

    facts = fleet.play(
        """
- hosts: gpu_nodes
  gather_facts: false
  tasks:
    - smimig.mig.mig_facts: {nvidia_smi: "{{ nvidia_smi }}"}
    - ansible.builtin.assert:
        that:
          - "smimig_mig.devices | length == 4"
          - "smimig_mig.layout.gpus['1'] == []"
"""
    )
    assert facts.returncode == 0, failed_output(facts)
    without_become = fleet.nodes[0].calls.read_text().splitlines()[-1]
    assert without_become.startswith("0 none ")  # no become asked: nvidia-smi ran as the login user


@pytest.mark.slow
def test_a_mig_parted_config_from_the_controller(fleet: Fleet) -> None:
    from tests.test_catalog import ALL_BALANCED  # noqa: PLC0415  # a balanced config per model, by PCI id

    (fleet.root / "config-default.yaml").write_text(ALL_BALANCED, encoding="utf-8")
    result = fleet.play(
        """
- hosts: gpu_nodes
  gather_facts: false
  become: true
  tasks:
    - smimig.mig.mig_layout:
        nvidia_smi: "{{ nvidia_smi }}"
        mig_parted_config: config-default.yaml
        config: all-balanced
      register: balanced
"""
    )
    assert result.returncode == 0, failed_output(result)
    for node in fleet.nodes:
        for gpu in (0, 1):
            assert sorted(gi.short_name for gi in node.smi().list_gis(gpu)) == [
                "1g.5gb",
                "1g.5gb",
                "2g.10gb",
                "3g.20gb",
            ]


@pytest.mark.slow
def test_a_fault_on_one_node_rolls_it_back_and_leaves_the_other_applied(fleet: Fleet) -> None:
    setup = fleet.play(APPLY)
    assert setup.returncode == 0, failed_output(setup)
    faulty, healthy = fleet.nodes
    before = faulty.smi().export()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "smimig.sim",
            "--state",
            str(faulty.state),
            "--model",
            faulty.model,
            "--fault",
            "-cgi=Insufficient Resources@1",
        ],
        check=True,
        capture_output=True,
    )
    result = fleet.play(APPLY.replace(LAYOUT, '{"0": ["7g.40gb"]}').replace("length == 4", "length == 1"))
    assert result.returncode != 0
    assert "failed: [node1]" in result.stdout or "fatal: [node1]" in result.stdout, failed_output(result)
    assert '"restored": [' in result.stdout, failed_output(result)
    assert faulty.smi().export() == before
    assert [gi.short_name for gi in healthy.smi().list_gis(0)] == ["7g.40gb"]
