#!/usr/bin/python
"""Ansible module: bring a node's NVIDIA MIG state to a layout, through smimig."""

from __future__ import annotations

DOCUMENTATION = r"""
module: mig_layout
short_description: Bring NVIDIA MIG GPUs to a layout
description:
  - Plans and applies a MIG layout with smimig on the target (smimig must be installed there).
  - Only the needed steps run; a second run with the same layout reports ok.
  - When a step fails part-way the starting layout is restored (unless rollback is false) and the failure
    says what ran and what was restored.
options:
  layout:
    description: Desired state per GPU index, as smimig.Layout takes it (a list of profiles, [] for MIG on with
      no instances, null for MIG off).
    type: dict
  mig_parted_config:
    description: Path (on the target) of a mig-parted config file, used with I(config) instead of I(layout).
    type: path
  config:
    description: Which config of I(mig_parted_config).
    type: str
  force:
    description: Destroy instances even when processes run on them.
    type: bool
    default: false
  rollback:
    description: Restore the starting layout when a step fails.
    type: bool
    default: true
  nvidia_smi:
    description: The nvidia-smi binary to run (default from SMIMIG_NVIDIA_SMI or PATH).
    type: path
supports_check_mode: true
"""

EXAMPLES = r"""
- smimig.mig.mig_layout:
    layout: {0: ["3g.40gb", "2g.20gb", "1g.10gb", "1g.10gb"], 1: []}
- smimig.mig.mig_layout:
    mig_parted_config: /etc/nvidia-mig-manager/config.yaml
    config: all-1g.10gb
"""

RETURN = r"""
steps:
  description: The nvidia-smi commands that ran (or would run, in check mode).
  type: list
  returned: always
devices:
  description: The MIG devices afterwards, with GPU/GI/CI ids and UUIDs.
  type: list
  returned: success
pending:
  description: GPUs whose MIG mode change waits for a reset or for processes to end.
  type: list
  returned: success
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.smimig.mig.plugins.module_utils.plain import plain


def main():
    module = AnsibleModule(
        argument_spec={
            "layout": {"type": "dict"},
            "mig_parted_config": {"type": "path"},
            "config": {"type": "str"},
            "force": {"type": "bool", "default": False},
            "rollback": {"type": "bool", "default": True},
            "nvidia_smi": {"type": "path"},
        },
        mutually_exclusive=[("layout", "mig_parted_config")],
        required_one_of=[("layout", "mig_parted_config")],
        required_together=[("mig_parted_config", "config")],
        supports_check_mode=True,
    )
    try:
        import smimig
    except ImportError:
        module.fail_json(msg="smimig is not installed on the target: add ansible.builtin.pip: {name: smimig}")
    params = module.params
    if params["nvidia_smi"]:
        os.environ["SMIMIG_NVIDIA_SMI"] = params["nvidia_smi"]
    smi = smimig.Smi()
    try:
        if params["layout"] is not None:
            layout = smimig.Layout.from_dict(params["layout"])
        else:
            layout = smi.load_layout(params["mig_parted_config"], config=params["config"])
        before = smi.export()
        plan = smi.plan(layout)
        steps = [str(step) for step in plan.steps]
        diff = {"before": before.to_yaml(), "after": layout.to_yaml()}
        if module.check_mode or plan.is_noop:
            module.exit_json(
                changed=not plan.is_noop,
                steps=steps,
                plan=str(plan),
                diff=diff,
                devices=plain(list(smi.devices())),
                pending=[],
            )
        result = smi.apply(layout, force=params["force"], rollback=params["rollback"])
    except smimig.ApplyError as error:
        module.fail_json(
            msg=str(error),
            ran=[str(step) for step in error.ran],
            restored=[str(step) for step in error.restored],
            state=error.state.to_dict() if error.state is not None else None,
        )
    except smimig.SmimigError as error:
        module.fail_json(msg=str(error))
    except ValueError as error:
        module.fail_json(msg=str(error))
    module.exit_json(
        changed=result.changed,
        steps=[str(step) for step in result.ran],
        diff=diff,
        devices=plain(list(smi.devices())),
        pending=[plain(change) for change in result.pending],
    )


if __name__ == "__main__":
    main()
