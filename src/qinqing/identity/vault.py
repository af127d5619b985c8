"""The PII vault: a keyed blind index for look-up and AES-GCM for display.

A database dump alone reveals neither ID numbers nor phones. Every sub-key is
derived from the one master key with HKDF under its own label, so the index
key, the field encryption key, the key for stored API answers, the audit-chain
MAC key and the key-check key are independent. The field kind is bound into
both the index and the ciphertext (as associated data), so a phone's
ciphertext cannot be passed off as an ID number's.

Each ciphertext starts with a key-version byte (the version the database's
key-check table assigned to the master key, see ``identity.keys``), so a key
rotation can tell rows already re-encrypted from rows still under the old key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from qinqing.kit.db import private_dir

NONCE_BYTES = 12
KEY_VERSION = b"\x01"  # the first key of a database
_KEY_CHECK_TEXT = b"qinqing key check: this database's master key"


class VaultKeyError(Exception):
    """The secret key is missing or malformed."""


class VaultVersionError(ValueError):
    """A ciphertext was made under another key version than this vault's."""


def _derive(master: bytes, label: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=label).derive(master)


def parse_key(text: str) -> bytes:
    """Accept 32 bytes as urlsafe base64 (what we generate) or 64 hex digits."""
    text = text.strip()
    try:
        raw = bytes.fromhex(text) if len(text) == 64 else base64.urlsafe_b64decode(text + "==")
    except (ValueError, binascii.Error):
        raise VaultKeyError("QINQING_SECRET_KEY is not base64 or hex") from None
    if len(raw) != 32:
        raise VaultKeyError("QINQING_SECRET_KEY must encode exactly 32 bytes")
    return raw


def generate_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


def load_or_create_key_file(path: Path) -> bytes:
    """The embedded default's key: created once with mode 0600, then reused."""
    if path.exists():
        return parse_key(path.read_text())

    private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(generate_key() + "\n")
    return parse_key(path.read_text())


class Vault:
    def __init__(self, master_key: bytes, version: int = 1) -> None:
        if not 1 <= version <= 255:
            raise ValueError("key version must be 1..255")
        self.version = version
        self._index_key = _derive(master_key, b"qinqing blind index v1")
        self._aead = AESGCM(_derive(master_key, b"qinqing pii encryption v1"))
        self._answers = AESGCM(_derive(master_key, b"qinqing stored answers v1"))
        self._audit_key = _derive(master_key, b"qinqing audit chain v1")
        self._check_key = _derive(master_key, b"qinqing key check v1")

    def key_check(self) -> str:
        """A value that identifies the master key without revealing it (hex HMAC of a
        constant under a sub-key of its own)."""
        return hmac.new(self._check_key, _KEY_CHECK_TEXT, hashlib.sha256).hexdigest()

    def audit_mac(self, data: bytes) -> str:
        """The audit chain's keyed hash (hex HMAC-SHA256)."""
        return hmac.new(self._audit_key, data, hashlib.sha256).hexdigest()

    def seal(self, context: str, data: bytes) -> bytes:
        """AES-GCM under the stored-answers sub-key, bound to ``context`` (e.g. the
        idempotency caller and key, so a sealed answer cannot be moved to another row)."""
        nonce = os.urandom(NONCE_BYTES)
        return self._prefix() + nonce + self._answers.encrypt(nonce, data, context.encode())

    def unseal(self, context: str, blob: bytes) -> bytes:
        self._check_version(blob)
        nonce, sealed = blob[1 : 1 + NONCE_BYTES], blob[1 + NONCE_BYTES :]
        return self._answers.decrypt(nonce, sealed, context.encode())

    def _prefix(self) -> bytes:
        return bytes([self.version])

    def _check_version(self, blob: bytes) -> None:
        if blob[:1] != self._prefix():
            raise VaultVersionError("ciphertext under another vault key version")

    def index(self, kind: str, value: str) -> str:
        """Deterministic keyed digest for equality look-up (hex, 64 chars)."""
        mac = hmac.new(self._index_key, kind.encode() + b"\x00" + value.encode(), hashlib.sha256)
        return mac.hexdigest()

    def encrypt(self, kind: str, value: str) -> bytes:
        return self.encrypt_bytes(kind, value.encode())

    def decrypt(self, kind: str, blob: bytes) -> str:
        return self.decrypt_bytes(kind, blob).decode()

    def encrypt_bytes(self, kind: str, data: bytes) -> bytes:
        """As :meth:`encrypt`, for a file (a guardianship proof) rather than a text."""
        nonce = os.urandom(NONCE_BYTES)
        return self._prefix() + nonce + self._aead.encrypt(nonce, data, kind.encode())

    def decrypt_bytes(self, kind: str, blob: bytes) -> bytes:
        self._check_version(blob)
        nonce, sealed = blob[1 : 1 + NONCE_BYTES], blob[1 + NONCE_BYTES :]
        return self._aead.decrypt(nonce, sealed, kind.encode())


def blob_version(blob: bytes) -> int:
    """The key version a ciphertext was made under (its first byte)."""
    return blob[0]
