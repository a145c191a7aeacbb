"""The ansible-vault envelope and its AES256 cipher, from the published format.

A vault text is a header line and a body:

    $ANSIBLE_VAULT;1.1;AES256            (format 1.1: no vault id)
    $ANSIBLE_VAULT;1.2;AES256;LABEL      (format 1.2: the vault id it was encrypted for)
    <hex lines>

The body, its lines joined, is the hex form of three lines of hex: the 32-byte salt, the
HMAC-SHA256 of the ciphertext, and the ciphertext. PBKDF2-HMAC-SHA256 of the password and
the salt (10000 iterations) gives 80 bytes: the AES-256 key, the HMAC key and the 16-byte
initial counter of AES-256-CTR. The plaintext is padded to AES's block as PKCS#7 does.

The HMAC is checked before anything is decrypted, in constant time: a wrong password is
`WrongPassword`, never garbage text.
"""

from __future__ import annotations

import binascii
import hmac
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

MAGIC = "$ANSIBLE_VAULT;"
ITERATIONS = 10000
SALT_BYTES = 32


class VaultFormatError(ValueError):
    """Not a vault text vnetctl can read (the message says what is wrong with it)."""


class WrongPassword(ValueError):
    """The HMAC does not match: this password did not encrypt this text."""


@dataclass(frozen=True)
class Envelope:
    version: str  # "1.1" or "1.2"
    label: str | None  # the vault id of format 1.2
    salt: bytes
    mac: bytes
    ciphertext: bytes


def is_vault(text: str | bytes) -> bool:
    head = text.lstrip()[: len(MAGIC)]
    return (head.decode("ascii", "replace") if isinstance(head, bytes) else head) == MAGIC


def parse(text: str) -> Envelope:
    lines = [line.strip() for line in text.strip().splitlines()]
    if not lines or not lines[0].startswith(MAGIC):
        raise VaultFormatError("no $ANSIBLE_VAULT header")
    fields = [f.strip() for f in lines[0].split(";")]
    version, cipher = (fields + ["", ""])[1:3]
    if version not in ("1.1", "1.2"):
        raise VaultFormatError(f"vault format {version!r} is not one vnetctl reads (1.1, 1.2)")
    if cipher != "AES256":
        raise VaultFormatError(f"vault cipher {cipher!r} is not one vnetctl reads (AES256)")
    label = fields[3] if version == "1.2" and len(fields) > 3 and fields[3] else None
    try:
        inner = binascii.unhexlify("".join(lines[1:])).decode("ascii").split("\n")
        if len(inner) != 3:
            raise ValueError
        salt, mac, ciphertext = (binascii.unhexlify(part) for part in inner)
    except (ValueError, binascii.Error):
        raise VaultFormatError("the vault body is not the hex layout of salt, HMAC and "
                               "ciphertext (damaged or cut short?)") from None  # fmt: skip
    if len(salt) != SALT_BYTES or len(mac) != 32 or not ciphertext:
        raise VaultFormatError("the vault body's salt, HMAC or ciphertext has a wrong length")
    return Envelope(version, label, salt, mac, ciphertext)


def _keys(password: bytes, salt: bytes) -> tuple[bytes, bytes, bytes]:
    kdf = PBKDF2HMAC(algorithm=hashes.SHA256(), length=80, salt=salt, iterations=ITERATIONS)
    derived = kdf.derive(password)
    return derived[:32], derived[32:64], derived[64:]


def decrypt(envelope: Envelope, password: bytes) -> bytes:
    """The plaintext; WrongPassword when the HMAC says this password is not the one."""
    key, mac_key, counter = _keys(password, envelope.salt)
    expected = hmac.new(mac_key, envelope.ciphertext, "sha256").digest()
    if not hmac.compare_digest(expected, envelope.mac):
        raise WrongPassword("HMAC mismatch")
    decryptor = Cipher(algorithms.AES(key), modes.CTR(counter)).decryptor()
    padded = decryptor.update(envelope.ciphertext) + decryptor.finalize()
    unpadder = padding.PKCS7(algorithms.AES.block_size).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise VaultFormatError("the decrypted text is not padded as the format says") from None
