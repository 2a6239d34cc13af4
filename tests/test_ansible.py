"""The Ansible collection end to end: a playbook against localhost (connection local), the simulator's
stand-in binary as nvidia-smi. ansible-core comes with the test extra."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import smimig

ROOT = Path(__file__).resolve().parent.parent
PLAYBOOK = """
- hosts: localhost
  connection: local
  gather_facts: false
  vars:
    nvidia_smi: "{stand_in}"
  tasks:
    - name: apply a layout
      smimig.mig.mig_layout:
        nvidia_smi: "{{{{ nvidia_smi }}}}"
        layout: {{"0": ["3g.20gb", "2g.10gb", "1g.5gb", "1g.5gb"], "1": []}}
      register: first
    - ansible.builtin.assert:
        that: [first.changed, "first.devices | length == 4"]

    - name: the same layout again
      smimig.mig.mig_layout:
        nvidia_smi: "{{{{ nvidia_smi }}}}"
        layout: {{"0": ["3g.20gb", "2g.10gb", "1g.5gb", "1g.5gb"], "1": []}}
      register: second
    - ansible.builtin.assert:
        that: [not second.changed, "second.steps == []"]

    - name: a different layout in check mode
      smimig.mig.mig_layout:
        nvidia_smi: "{{{{ nvidia_smi }}}}"
        layout: {{"0": ["7g.40gb"]}}
      check_mode: true
      register: checked
    - ansible.builtin.assert:
        that: [checked.changed, "checked.steps | length > 0"]

    - name: facts
      smimig.mig.mig_facts:
        nvidia_smi: "{{{{ nvidia_smi }}}}"
    - ansible.builtin.assert:
        that:
          - "smimig_mig.devices | length == 4"
          - "smimig_mig.gis | map(attribute='name') | sort == ['MIG 1g.5gb', 'MIG 1g.5gb', 'MIG 2g.10gb', 'MIG 3g.20gb']"
"""


def ansible_tool(name: str) -> str:
    """ansible-playbook or ansible-galaxy from the test extra (beside this interpreter, else on PATH)."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("ansible-core is in the test extra; CI skips nothing")
        pytest.skip(f"{name} not installed (pip install '.[test]')")
    return found


def stand_in_for(tmp_path: Path, model: str) -> Path:
    """The simulator's stand-in binary over a state file of its own: the target's nvidia-smi."""
    stand_in = tmp_path / "nvidia-smi"
    state = tmp_path / "node.json"
    stand_in.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m smimig.sim --state "{state}" --model {model} "$@"\n')
    stand_in.chmod(0o755)
    return stand_in


def play(tmp_path: Path, playbook: str) -> subprocess.CompletedProcess[str]:
    """Run a playbook against localhost (connection local) with the collection from this repository."""
    (tmp_path / "play.yml").write_text(playbook)
    env = {
        **os.environ,
        "ANSIBLE_COLLECTIONS_PATH": str(ROOT / "ansible"),
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
        "ANSIBLE_NOCOLOR": "1",
        "PYTHONPATH": str(ROOT),
    }
    argv = [ansible_tool("ansible-playbook"), "-i", "localhost,", "-e", f"ansible_python_interpreter={sys.executable}"]
    return subprocess.run(
        [*argv, str(tmp_path / "play.yml")], env=env, capture_output=True, text=True, check=False, timeout=600
    )


def test_playbook(tmp_path: Path) -> None:
    stand_in = stand_in_for(tmp_path, "A100-40GBx2")
    result = play(tmp_path, PLAYBOOK.format(stand_in=stand_in))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "failed=0" in result.stdout
    # check mode left the GPU as it was
    smi = smimig.Smi(runner=smimig.SubprocessRunner(str(stand_in)))
    assert sorted(gi.short_name for gi in smi.list_gis(0)) == ["1g.5gb", "1g.5gb", "2g.10gb", "3g.20gb"]


def test_the_collection_builds(tmp_path: Path) -> None:
    galaxy = ansible_tool("ansible-galaxy")
    source = ROOT / "ansible" / "ansible_collections" / "smimig" / "mig"
    result = subprocess.run(
        [galaxy, "collection", "build", str(source), "--output-path", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert [path.name for path in tmp_path.glob("*.tar.gz")] == ["smimig-mig-0.1.0.tar.gz"]


FAILING = """
- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - smimig.mig.mig_layout:
        nvidia_smi: "{stand_in}"
        layout: {{"0": ["7g.40gb"]}}
"""


def test_a_failed_apply_reports_what_ran_and_what_was_restored(tmp_path: Path) -> None:
    stand_in = stand_in_for(tmp_path, "A100-40GBx1")
    smi = smimig.Smi(runner=smimig.SubprocessRunner(str(stand_in)))
    smi.enable_mig(0)
    smi.create_gi(0, ["3g.20gb", "1g.5gb"], ci=True)
    before = smi.export()
    subprocess.run([str(stand_in), "--fault", "-cgi=Insufficient Resources@1"], check=True)
    result = play(tmp_path, FAILING.format(stand_in=stand_in))
    assert result.returncode != 0
    assert '"ran": [' in result.stdout
    assert "nvidia-smi mig -i 0 -gi 1,2 -dgi" in result.stdout
    assert '"restored": [' in result.stdout
    assert smi.export() == before
