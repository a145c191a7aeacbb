"""Vault passwords and the become password, as ansible-playbook takes them.

`--vault-id [LABEL@]SOURCE`, `--vault-password-file FILE`, `-J/--ask-vault-pass`, with
ANSIBLE_VAULT_PASSWORD_FILE and ANSIBLE_VAULT_IDENTITY_LIST (vnetctl.vault.keyring);
`-K/--ask-become-pass`: sudo's password, asked once on the terminal, below every
variable that sets one (as -u and -b are).
"""

from __future__ import annotations

import argparse
import getpass

from vnetctl.ansible_cfg import ansible_config
from vnetctl.errors import InputError
from vnetctl.secrets import registry
from vnetctl.vault import keyring


def add_secret_options(parser: argparse.ArgumentParser) -> None:
    group = add_vault_options(parser, "vault and become passwords")
    group.add_argument(
        "-K",
        "--ask-become-pass",
        action="store_true",
        help="ask for sudo's password on the terminal (ansible_become_password wins)",
    )


def add_vault_options(parser: argparse.ArgumentParser, title: str = "vault passwords"):
    """--vault-id, --vault-password-file, -J: also for commands that contact no host
    (`inventory` reads vault files as ansible-inventory does)."""
    group = parser.add_argument_group(title)
    group.add_argument(
        "--vault-id",
        action="append",
        default=[],
        metavar="[LABEL@]SOURCE",
        help="a vault password: SOURCE is a file, an executable that prints it, or "
        "'prompt' (repeatable; LABEL picks it first for files encrypted for that id)",
    )
    group.add_argument(
        "--vault-password-file",
        "--vault-pass-file",
        action="append",
        default=[],
        metavar="FILE",
        help="a vault password file, or an executable that prints the password (repeatable; "
        "also $ANSIBLE_VAULT_PASSWORD_FILE)",
    )
    group.add_argument(
        "-J",
        "--ask-vault-pass",
        action="store_true",
        help="ask for the vault password on the terminal",
    )
    return group


def use_vault_passwords(args: argparse.Namespace) -> None:
    """Read every vault password source of `args` and the environment, for the files
    loaded from now on. Bad or missing sources are InputError: no host is contacted."""
    wanted = keyring.sources(
        getattr(args, "vault_id", None) or [],
        getattr(args, "vault_password_file", None) or [],
        bool(getattr(args, "ask_vault_pass", False)),
        config_password_file=ansible_config().get("vault_password_file"),
        config_identities=ansible_config().get("vault_identity_list"),
    )
    keyring.use(keyring.load(wanted))


def asked_become_password(args: argparse.Namespace) -> str | None:
    """-K: the password typed at the prompt (pinned as a secret of the run), or None."""
    if not getattr(args, "ask_become_pass", False):
        return None
    if not keyring.tty_available():
        raise InputError("-K/--ask-become-pass needs a terminal: none here (set "
                         "ansible_become_password in a vault file instead)")  # fmt: skip
    typed = getpass.getpass("BECOME password: ")
    if not typed:
        raise InputError("-K/--ask-become-pass: the password is empty")
    registry().pin(typed)
    return typed
