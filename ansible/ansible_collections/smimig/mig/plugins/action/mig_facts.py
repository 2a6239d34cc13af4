"""Action plugin: a node's NVIDIA MIG state as facts. smimig parses on the controller; the node runs nothing but
nvidia-smi, through Ansible's connection. Documentation: plugins/modules/mig_facts.py.
"""

from __future__ import annotations

from ansible.plugins.action import ActionBase
from ansible_collections.smimig.mig.plugins.plugin_utils.node import DEFAULT_NVIDIA_SMI, ConnectionRunner, facts

ARGUMENT_SPEC = {"nvidia_smi": {"type": "str", "default": DEFAULT_NVIDIA_SMI}}


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(ARGUMENT_SPEC)

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        _, params = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        try:
            import smimig
        except ImportError:
            result.update(failed=True, msg="smimig runs on the controller: pip install smimig where Ansible runs")
            return result
        host = (task_vars or {}).get("inventory_hostname")
        runner = ConnectionRunner(self, params["nvidia_smi"], host)
        result.update(facts(smimig.Smi(runner=runner)))
        return result
