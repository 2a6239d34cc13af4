#!/usr/bin/python
"""Ansible module: a node's NVIDIA MIG state as facts, through smimig."""

from __future__ import annotations

DOCUMENTATION = r"""
module: mig_facts
short_description: Gather a node's NVIDIA MIG state
description:
  - Sets C(smimig_mig) with the GPUs, their MIG mode, GPU instances, compute instances and MIG devices
    (with the UUIDs that go into CUDA_VISIBLE_DEVICES). smimig must be installed on the target.
options:
  nvidia_smi:
    description: The nvidia-smi binary to run (default from SMIMIG_NVIDIA_SMI or PATH).
    type: path
supports_check_mode: true
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

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.smimig.mig.plugins.module_utils.plain import plain


def main():
    module = AnsibleModule(argument_spec={"nvidia_smi": {"type": "path"}}, supports_check_mode=True)
    try:
        import smimig
    except ImportError:
        module.fail_json(msg="smimig is not installed on the target: add ansible.builtin.pip: {name: smimig}")
    if module.params["nvidia_smi"]:
        os.environ["SMIMIG_NVIDIA_SMI"] = module.params["nvidia_smi"]
    smi = smimig.Smi()
    try:
        facts = {
            "gpus": plain(list(smi.list_gpus())),
            "modes": plain(list(smi.mig_mode())),
            "gis": plain(list(smi.list_gis())),
            "cis": plain(list(smi.list_cis())),
            "devices": plain(list(smi.devices())),
            "layout": smi.export().to_dict(),
        }
    except smimig.SmimigError as error:
        module.fail_json(msg=str(error))
    module.exit_json(changed=False, ansible_facts={"smimig_mig": facts})


if __name__ == "__main__":
    main()
