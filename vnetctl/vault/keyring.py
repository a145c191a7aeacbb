"""The vault passwords of a run, and decrypting with them.

Passwords come, as ansible-playbook takes them, from `--vault-id [LABEL@]SOURCE`
(repeatable), `--vault-password-file FILE` (repeatable: label `default`),
`--ask-vault-pass` (a prompt on the terminal, label `default`), and the environment
(`ANSIBLE_VAULT_IDENTITY_LIST`, `ANSIBLE_VAULT_PASSWORD_FILE`: `configured_sources`).
SOURCE is `prompt`, a file (its text, surrounding whitespace stripped), or an
executable: it is run and its standard output is the password (a name ending in
`-client`, with or without an extension, is run with `--vault-id LABEL`); its stderr
and the terminal stay the operator's, so it may ask for a passphrase.

A vault text with a label (format 1.2) is tried with the passwords of that label first,
then with every other, as Ansible does.
"""

from __future__ import annotations

import getpass
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from vnetctl.errors import InputError
from vnetctl.vault import cipher

DEFAULT_LABEL = "default"
SCRIPT_TIMEOUT = 300  # seconds: a script may wait for a passphrase typed by the operator


class VaultPassword:
    """One password and where it came from; repr and str never show it."""

    __slots__ = ("label", "source", "_value")

    def __init__(self, label: str, source: str, value: bytes):
        self.label, self.source, self._value = label, source, value

    def reveal(self) -> bytes:
        return self._value

    def __repr__(self) -> str:
        return f"VaultPassword({self.label!r}, {self.source!r}, '***')"

    __str__ = __repr__

    def __reduce__(self) -> object:
        raise TypeError("a vault password cannot be pickled")


@dataclass(frozen=True)
class Source:
    label: str
    where: str  # "prompt" or a path


def parse_vault_id(text: str) -> Source:
    """`LABEL@SOURCE` or `SOURCE` (label `default`)."""
    label, at, where = text.partition("@")
    if not at:
        label, where = DEFAULT_LABEL, text
    if not where or not label:
        raise InputError(f"--vault-id {text!r}: expected [LABEL@]SOURCE (a file, a script "
                         "or 'prompt')")  # fmt: skip
    return Source(label, where)


def configured_sources(env: Mapping[str, str], config_password_file: str | None = None,
                       config_identities: list[str] | None = None,
                       ) -> tuple[list[Source], list[Source]]:  # fmt: skip
    """What the environment (and ansible.cfg's vault_password_file and
    vault_identity_list, passed in by the reader of ansible.cfg) adds: identities before
    the command line's, password files after it, as Ansible orders them."""
    if "ANSIBLE_VAULT_IDENTITY_LIST" in env:
        listed = env["ANSIBLE_VAULT_IDENTITY_LIST"].split(",")
    else:
        listed = list(config_identities or [])
    identities = [parse_vault_id(t.strip()) for t in listed if t.strip()]
    password_file = env.get("ANSIBLE_VAULT_PASSWORD_FILE") or config_password_file
    files = [Source(DEFAULT_LABEL, password_file)] if password_file else []
    return identities, files


def sources(vault_ids: list[str], password_files: list[str], ask: bool,
            env: Mapping[str, str] | None = None, config_password_file: str | None = None,
            config_identities: list[str] | None = None) -> list[Source]:  # fmt: skip
    """Every password source of a run, in the order they are tried."""
    before, after = configured_sources(os.environ if env is None else env,
                                       config_password_file, config_identities)  # fmt: skip
    given = [parse_vault_id(v) for v in vault_ids]
    files = [Source(DEFAULT_LABEL, f) for f in password_files]
    prompt = [Source(DEFAULT_LABEL, "prompt")] if ask else []
    return [*before, *given, *files, *after, *prompt]


class Keyring:
    """The passwords of a run."""

    def __init__(self, passwords: list[VaultPassword] | None = None):
        self.passwords = list(passwords or [])

    def __bool__(self) -> bool:
        return bool(self.passwords)

    def decrypt(self, text: str) -> str:
        """The plaintext of a vault text; VaultError saying why not."""
        try:
            envelope = cipher.parse(text)
        except cipher.VaultFormatError as exc:
            raise VaultError(str(exc)) from None
        labelled = f" (vault id {envelope.label!r})" if envelope.label else ""
        if not self.passwords:
            raise VaultError(f"vault-encrypted{labelled} and no vault password was given: use "
                             "--vault-password-file, --vault-id or --ask-vault-pass")  # fmt: skip
        ordered = sorted(self.passwords, key=lambda p: p.label != envelope.label)
        for password in ordered:
            try:
                plain = cipher.decrypt(envelope, password.reveal())
            except cipher.WrongPassword:
                continue
            try:
                return plain.decode("utf-8")
            except UnicodeDecodeError:
                raise VaultError("decrypted, but the text is not UTF-8") from None
        tried = ", ".join(f"{p.label}@{p.source}" for p in self.passwords)
        raise VaultError(f"vault-encrypted{labelled}: none of the vault passwords given "
                         f"decrypts it (wrong password? tried {tried})")  # fmt: skip


class VaultError(Exception):
    """A vault text that cannot be decrypted; the caller names the file and line."""


def load(wanted: list[Source], prompt=getpass.getpass) -> Keyring:
    """Read every source (prompting once per `prompt` source) into a Keyring. A password
    file may itself be vault-encrypted with a password read before it."""
    keyring = Keyring()
    for source in wanted:
        if source.where == "prompt":
            value = _prompted(source, prompt)
            shown = "prompt"
        else:
            value, shown = _from_file(source, keyring)
        if not value:
            raise InputError(f"vault password for id {source.label!r} from {shown} is empty")
        keyring.passwords.append(VaultPassword(source.label, shown, value))
    return keyring


def tty_available() -> bool:
    try:
        with open("/dev/tty", "rb"):
            return True
    except OSError:
        return False


def _prompted(source: Source, prompt) -> bytes:
    if not tty_available():
        raise InputError("a vault password prompt needs a terminal: none here (use "
                         "--vault-password-file or --vault-id LABEL@FILE)")  # fmt: skip
    text = "Vault password: " if source.label == DEFAULT_LABEL else (
        f"Vault password ({source.label}): ")  # fmt: skip
    return prompt(text).encode("utf-8")


def _is_client(path: Path) -> bool:
    stem = path.name.rpartition(".")[0] if "." in path.name else path.name
    return stem.endswith("-client")


def _from_file(source: Source, keyring: Keyring) -> tuple[bytes, str]:
    path = Path(os.path.expanduser(source.where))
    if path.is_file() and os.access(path, os.X_OK):
        return _from_script(source, path), f"script {path}"
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"vault password file {path}: file not found") from None
    except OSError as exc:
        raise InputError(f"vault password file {path}: cannot read: {exc.strerror}") from None
    if cipher.is_vault(data):
        try:
            data = keyring.decrypt(data.decode("ascii", "replace")).encode("utf-8")
        except VaultError as exc:
            raise InputError(f"vault password file {path}: {exc}") from None
    return data.strip(), f"file {path}"


def _from_script(source: Source, path: Path) -> bytes:
    argv = [str(path), "--vault-id", source.label] if _is_client(path) else [str(path)]
    try:
        done = subprocess.run(argv, stdout=subprocess.PIPE, timeout=SCRIPT_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        raise InputError(f"vault password script {path}: no answer in {SCRIPT_TIMEOUT}s") from None
    except OSError as exc:
        raise InputError(f"vault password script {path}: cannot run: {exc.strerror}") from None
    if done.returncode != 0:
        raise InputError(f"vault password script {path} (vault id {source.label!r}) exited "
                         f"with {done.returncode}")  # fmt: skip
    return done.stdout.strip(b"\r\n")


_CURRENT = Keyring()


def use(keyring: Keyring) -> None:
    """The passwords files are decrypted with from now on in this process."""
    global _CURRENT
    _CURRENT = keyring


def current() -> Keyring:
    return _CURRENT
