"""The collection's shared controller-side code: smimig runs where Ansible runs; only nvidia-smi runs on the node.

``ConnectionRunner`` is smimig's Runner seam over Ansible's own connection to the node (ssh, local, anything an
inventory names): each call runs ``nvidia-smi`` with its arguments quoted for the node's shell, with ``become``
when the play asks for it. ``layout_result`` and ``facts`` are what the action plugins return, given a client.
"""

from __future__ import annotations

import json
import shlex

DEFAULT_NVIDIA_SMI = "nvidia-smi"
EXIT_MARKER = "smimig-nvidia-smi-exit="


class ConnectionRunner:
    """smimig's Runner over an action plugin's connection: ``run(args)`` runs ``nvidia-smi ARGS`` on the node.

    The command line is ``LC_ALL=C LANG=C nvidia-smi 'arg' …`` (every argument quoted, the C locale as smimig's
    parsers expect), run by ``_low_level_execute_command`` with ``sudoable=True``: the task's ``become`` applies.
    nvidia-smi's exit code comes back as a last line of output and the command itself exits 0: Ansible's ssh
    connection takes an exit code of 255 for ssh failing, and nvidia-smi exits 255 for some of its own errors.
    """

    def __init__(self, action, executable=DEFAULT_NVIDIA_SMI, host=None):
        self.action = action
        self.executable = executable
        self.host = host or "the node"

    def command(self, args):
        quoted = " ".join(shlex.quote(part) for part in [self.executable, *args])
        return f"LC_ALL=C LANG=C {quoted}; printf '\\n{EXIT_MARKER}%d\\n' $?"

    def run(self, args):
        from smimig import NvidiaSmiNotFound, RunResult

        # Some input (a newline nvidia-smi never reads) keeps Ansible's ssh connection from allocating a terminal
        # for become, which would merge standard error into standard output and end each line with CR LF.
        answer = self.action._low_level_execute_command(self.command(args), sudoable=True, in_data="\n")
        stdout, stderr = answer.get("stdout", ""), answer.get("stderr", "")
        returncode = int(answer.get("rc", 1))
        before, marker, after = stdout.rpartition("\n" + EXIT_MARKER)
        if marker and after.strip().isdigit():
            stdout, returncode = before, int(after.strip())
        if returncode in (126, 127):  # the node's shell: not found / not executable
            detail = stderr.strip().splitlines()[-1] if stderr.strip() else "not found"
            raise NvidiaSmiNotFound(f"{self.host}:{self.executable}", f"on {self.host}: {detail}")
        return RunResult((self.executable, *args), returncode, stdout, stderr)


def use_host_lock(host):
    """Make this process's node lock the one of ``host``: Ansible runs each host's task in a process of its own,
    and smimig's node lock (``$SMIMIG_LOCK_FILE``, else one per machine) would otherwise make the hosts of a play
    wait for each other on the controller. Each host gets a lock file of its own beside the default one."""
    import os
    import re

    from smimig.locking import LOCK_ENV, default_lock_path

    name = re.sub(r"[^A-Za-z0-9._-]", "_", host or "node")
    os.environ[LOCK_ENV] = str(default_lock_path().with_name(f"smimig-host-{name}.lock"))


def plain(value):
    """attrs models to dicts, tuples to lists, recursively: Ansible's results are JSON."""
    import attrs

    if attrs.has(type(value)):
        return {key: plain(item) for key, item in attrs.asdict(value, recurse=False).items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    return value


def layout_result(smi, params, check_mode, mig_parted_path=None):
    """What ``smimig.mig.mig_layout`` returns for one node: ``changed``, ``steps``, ``devices``, ``pending``,
    ``diff`` (before and after as layouts), ``plan``; on failure ``failed``, ``msg`` and, when steps ran, ``ran``,
    ``restored`` and ``state``. Check mode plans and changes nothing."""
    import smimig

    try:
        if params.get("layout") is not None:
            # Ansible's own str and dict subclasses (2.19's tagged values) as plain data, which YAML can write
            layout = smimig.Layout.from_dict(json.loads(json.dumps(params["layout"])))
        else:
            layout = smi.load_layout(mig_parted_path, config=params.get("config"))
        before = smi.export()
        plan = smi.plan(layout)
        diff = {"before": before.to_yaml(), "after": layout.to_yaml()}
        if check_mode or plan.is_noop:
            return {
                "changed": not plan.is_noop,
                "steps": [str(step) for step in plan.steps],
                "plan": str(plan),
                "diff": diff,
                "devices": plain(list(smi.devices())),
                "pending": [],
            }
        result = smi.apply(layout, force=bool(params.get("force")), rollback=params.get("rollback", True))
        return {
            "changed": result.changed,
            "steps": [str(step) for step in result.ran],
            "diff": diff,
            "devices": plain(list(smi.devices())),
            "pending": [plain(change) for change in result.pending],
        }
    except smimig.ApplyError as error:
        return {
            "failed": True,
            "changed": bool(error.ran),
            "msg": str(error),
            "ran": [str(step) for step in error.ran],
            "restored": [str(step) for step in error.restored],
            "state": error.state.to_dict() if error.state is not None else None,
        }
    except (smimig.SmimigError, ValueError) as error:
        return {"failed": True, "changed": False, "msg": str(error)}


def facts(smi):
    """What ``smimig.mig.mig_facts`` sets as ``smimig_mig``: GPUs, modes, GIs, CIs, MIG devices and the layout."""
    import smimig

    try:
        gathered = {
            "gpus": plain(list(smi.list_gpus())),
            "modes": plain(list(smi.mig_mode())),
            "gis": plain(list(smi.list_gis())),
            "cis": plain(list(smi.list_cis())),
            "devices": plain(list(smi.devices())),
            "layout": smi.export().to_dict(),
        }
    except smimig.SmimigError as error:
        return {"failed": True, "changed": False, "msg": str(error)}
    return {"changed": False, "ansible_facts": {"smimig_mig": gathered}}
