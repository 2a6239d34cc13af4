"""Action plugin: bring a node's NVIDIA MIG state to a layout. smimig plans on the controller; the node runs
nothing but nvidia-smi, through Ansible's connection (and ``become``). Documentation: plugins/modules/mig_layout.py.
"""

from __future__ import annotations

from ansible.errors import AnsibleError
from ansible.plugins.action import ActionBase
from ansible_collections.smimig.mig.plugins.plugin_utils.node import (
    DEFAULT_NVIDIA_SMI,
    ConnectionRunner,
    layout_result,
    use_host_lock,
)

ARGUMENT_SPEC = {
    "layout": {"type": "dict"},
    "mig_parted_config": {"type": "path"},
    "config": {"type": "str"},
    "force": {"type": "bool", "default": False},
    "rollback": {"type": "bool", "default": True},
    "nvidia_smi": {"type": "str", "default": DEFAULT_NVIDIA_SMI},
}


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(ARGUMENT_SPEC)

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        _, params = self.validate_argument_spec(
            argument_spec=ARGUMENT_SPEC,
            mutually_exclusive=[("layout", "mig_parted_config")],
            required_one_of=[("layout", "mig_parted_config")],
        )
        try:
            import smimig
        except ImportError:
            result.update(failed=True, msg="smimig runs on the controller: pip install smimig where Ansible runs")
            return result
        path = None
        if params["mig_parted_config"] is not None:
            try:  # a file on the controller: beside the playbook, in a role's files/, or an absolute path
                path = self._find_needle("files", params["mig_parted_config"])
            except AnsibleError as error:
                result.update(failed=True, msg=str(error))
                return result
        host = (task_vars or {}).get("inventory_hostname")
        runner = ConnectionRunner(self, params["nvidia_smi"], host)
        use_host_lock(host)
        result.update(layout_result(smimig.Smi(runner=runner), params, bool(self._task.check_mode), path))
        return result
