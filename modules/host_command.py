#!/usr/bin/python3
# WANT_JSON
"""A command on the host, as an argv (no shell): the playbook's `command` task.

For what vnetctl's modules do not manage: a command runs in the host's play process
where it stands in the task list, is changed when it ran, and fails on a non-zero exit
(a `failed_when` in the task decides instead; `changed_when` likewise; both read its
`rc`, `stdout`, `stderr` under its `register` name, as a later task's `when` may).
`creates` (a path that exists: nothing to do) and `removes` (a path that does not
exist: nothing to do) make it idempotent. In check mode it never runs, so it is never
part of drift: it is skipped, saying whether it would have run.

Not shipped in the Ansible collection: Ansible has its own `command`.
"""

import os
import sys

try:  # under ansible-playbook (and Mitogen), module_utils/vnet_host.py travels along
    from ansible.module_utils.vnet_host import HOST_LIBRARY as host
except ImportError:  # vnetctl's runner preloads vnet_host
    import vnet_host as host

RESOURCE = "command"
NOT_PERSISTED = "a command is an action, not a state: nothing to write for boot"
ARGUMENT_SPEC = {
    "argv": {"type": "list", "elements": "str", "required": True},
    "creates": {"type": "str"},
    "removes": {"type": "str"},
    "timeout": {"type": "int", "default": 120, "range": [1, 3600]},
}
MAX_OUTPUT = 64 * 1024  # of stdout and of stderr each, kept in the result


def resource_name(params):
    return " ".join(params["argv"][:3])


def _why_not(params):
    """Why the command has nothing to do (creates / removes), or None."""
    if params.get("creates") and os.path.exists(params["creates"]):
        return "did not run: %s exists" % params["creates"]
    if params.get("removes") and not os.path.exists(params["removes"]):
        return "did not run: %s does not exist" % params["removes"]
    return None


def _kept(text):
    return text if len(text) <= MAX_OUTPUT else text[:MAX_OUTPUT] + "\n[... cut at 64 KiB]"


def run(params, check, facts):
    argv = params["argv"]
    if not argv or not argv[0] or any("\0" in word for word in argv):
        raise host.ModuleError("argv: a non-empty list of words without NUL characters")
    why_not = _why_not(params)
    result = {"changed": False, "failed": False, "cmd": argv, "resource": "command " +
              resource_name(params)}  # fmt: skip
    if why_not is not None:
        return dict(result, msg=why_not, rc=0, stdout="", stderr="")
    if check:  # never run: a check (and drift) changes nothing and reads no command
        return dict(result, skipped=True, msg="skipped in check mode (it would run)")
    code, out, err = host.run_status(argv, timeout=params["timeout"])
    out, err = _kept(out.rstrip("\n")), _kept(err.rstrip("\n"))
    result.update(changed=True, rc=code, stdout=out, stderr=err, stdout_lines=out.splitlines(),
                  stderr_lines=err.splitlines(), msg="rc=%d" % code)  # fmt: skip
    if code != 0:
        result.update(failed=True, msg="non-zero return code %d: %s" % (code, (err or out)[-500:]))
    return result


if __name__ == "__main__":
    host.ansible_main(sys.modules[__name__])
