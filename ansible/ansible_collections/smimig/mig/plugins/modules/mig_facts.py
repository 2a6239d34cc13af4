#!/usr/bin/python
"""Documentation of the ``smimig.mig.mig_facts`` action (plugins/action/mig_facts.py does the work), kept here
for ansible-doc as collections do for their action plugins."""

from __future__ import annotations

DOCUMENTATION = r"""
module: mig_facts
short_description: Gather a node's NVIDIA MIG state
description:
  - Sets C(smimig_mig) with the GPUs, their MIG mode, GPU instances, compute instances and MIG devices
    (with the UUIDs that go into CUDA_VISIBLE_DEVICES).
  - smimig parses on the controller; the node runs only C(nvidia-smi), through Ansible's connection.
options:
  nvidia_smi:
    description: The nvidia-smi binary on the node (a name on its PATH, or a path).
    type: str
    default: nvidia-smi
supports_check_mode: true
notes:
  - smimig must be installed where Ansible runs (the controller), not on the nodes.
"""

EXAMPLES = r"""
- smimig.mig.mig_facts:
- ansible.builtin.debug:
    var: smimig_mig.devices
"""

RETURN = r"""
ansible_facts:
  description: C(smimig_mig) with gpus, modes, gis, cis, devices and layout.
  type: dict
  returned: always
"""


def main():
    raise SystemExit("smimig.mig.mig_facts runs on the controller as an action plugin (plugins/action)")


if __name__ == "__main__":
    main()
