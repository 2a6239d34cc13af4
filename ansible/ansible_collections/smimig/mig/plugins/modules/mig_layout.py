#!/usr/bin/python
"""Documentation of the ``smimig.mig.mig_layout`` action (plugins/action/mig_layout.py does the work), kept here
for ansible-doc as collections do for their action plugins."""

from __future__ import annotations

DOCUMENTATION = r"""
module: mig_layout
short_description: Bring NVIDIA MIG GPUs to a layout
description:
  - Plans a MIG layout with smimig on the controller and runs only C(nvidia-smi) on the node, through Ansible's
    connection; the node needs nothing installed beyond nvidia-smi and a shell.
  - Only the needed steps run; a second run with the same layout reports ok.
  - When a step fails part-way the starting layout is restored (unless rollback is false) and the failure
    says what ran and what was restored.
  - nvidia-smi's changes need root, so use C(become) (the task's become applies to each nvidia-smi call).
options:
  layout:
    description: Desired state per GPU index, as smimig.Layout takes it (a list of profiles, [] for MIG on with
      no instances, null for MIG off).
    type: dict
  mig_parted_config:
    description: Path on the controller (beside the playbook, in a role's files/, or absolute) of a mig-parted
      config file, used instead of I(layout); resolved for the node's GPUs as mig-parted resolves it.
    type: path
  config:
    description: Which config of I(mig_parted_config); needed only when the file has several.
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
    description: The nvidia-smi binary on the node (a name on its PATH, or a path).
    type: str
    default: nvidia-smi
supports_check_mode: true
notes:
  - smimig must be installed where Ansible runs (the controller), not on the nodes.
"""

EXAMPLES = r"""
- smimig.mig.mig_layout:
    layout: {0: ["3g.40gb", "2g.20gb", "1g.10gb", "1g.10gb"], 1: []}
  become: true
- smimig.mig.mig_layout:
    mig_parted_config: config-default.yaml   # on the controller
    config: all-1g.10gb
  become: true
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
ran:
  description: On a failed apply, the steps that ran before it failed.
  type: list
  returned: failure
restored:
  description: On a failed apply, the steps the rollback ran.
  type: list
  returned: failure
"""


def main():
    raise SystemExit("smimig.mig.mig_layout runs on the controller as an action plugin (plugins/action)")


if __name__ == "__main__":
    main()
