"""Ansible command-line flags vnetctl does not have: one line naming what to use instead,
rather than the whole usage (an Ansible user types them out of habit)."""

from __future__ import annotations

INVENTORY_SECRET = "set {var} in the inventory or a vars file (a secret: never printed)"

NEAREST = {
    "--step": "preview with --check --diff, then narrow the run with --start-at-task NAME "
    "and --tags",
    "--become-password-file": INVENTORY_SECRET.format(var="ansible_become_password"),
    "-k": INVENTORY_SECRET.format(var="ansible_password") + ", or use an SSH key",
    "--ask-pass": INVENTORY_SECRET.format(var="ansible_password") + ", or use an SSH key",
    "--connection-password-file": INVENTORY_SECRET.format(var="ansible_password"),
    "--private-key": "use -e ansible_ssh_private_key_file=PATH (or set it in the inventory)",
    "--key-file": "use -e ansible_ssh_private_key_file=PATH (or set it in the inventory)",
    "-c": "use --transport (asyncssh or paramiko); vnetctl always connects over SSH",
    "--connection": "use --transport (asyncssh or paramiko); vnetctl always connects over SSH",
    "-T": "use -e ansible_timeout=SECONDS for the connect timeout (--timeout is per play)",
    "--become-method": "vnetctl becomes root with sudo only: use -b / --become",
    "-M": "vnetctl runs its own modules only (modules/); there is no module path",
    "--module-path": "vnetctl runs its own modules only (modules/); there is no module path",
    "--ssh-common-args": "put the options in ~/.ssh/config: vnetctl reads it for Host entries",
    "--ssh-extra-args": "put the options in ~/.ssh/config: vnetctl reads it for Host entries",
    "--force-handlers": "vnetctl has no handlers: a task's changes are applied or rolled back",
    "--flush-cache": "vnetctl keeps no fact cache: facts are read on every run",
}


def nearest(message: str) -> str | None:
    """For argparse's 'unrecognized arguments: ...' message: the hint for the first
    Ansible flag among them, as one line; None if none is one."""
    prefix = "unrecognized arguments: "
    if not message.startswith(prefix):
        return None
    for word in message[len(prefix) :].split():
        flag = word.split("=", 1)[0]
        if flag in NEAREST:
            return f"{flag} is an ansible-playbook option vnetctl does not have: {NEAREST[flag]}"
    return None
