"""The PII vault: a keyed blind index for look-up and AES-GCM for display.

A database dump alone reveals neither ID numbers nor phones (docs/guide.md §3). Two
sub-keys are derived from the one master key with HKDF, so the index key and
the encryption key are independent. The field kind is bound into both the
index and the ciphertext (as associated data), so a phone's ciphertext cannot
be passed off as an ID number's.
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

NONCE_BYTES = 12
KEY_VERSION = b"\x01"


class VaultKeyError(Exception):
    """The secret key is missing or malformed."""


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
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(generate_key() + "\n")
    return parse_key(path.read_text())


class Vault:
    def __init__(self, master_key: bytes) -> None:
        self._index_key = _derive(master_key, b"qinqing blind index v1")
        self._aead = AESGCM(_derive(master_key, b"qinqing pii encryption v1"))

    def index(self, kind: str, value: str) -> str:
        """Deterministic keyed digest for equality look-up (hex, 64 chars)."""
        mac = hmac.new(self._index_key, kind.encode() + b"\x00" + value.encode(), hashlib.sha256)
        return mac.hexdigest()

    def encrypt(self, kind: str, value: str) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return KEY_VERSION + nonce + self._aead.encrypt(nonce, value.encode(), kind.encode())

    def decrypt(self, kind: str, blob: bytes) -> str:
        if blob[:1] != KEY_VERSION:
            raise ValueError("unknown vault key version")
        nonce, sealed = blob[1 : 1 + NONCE_BYTES], blob[1 + NONCE_BYTES :]
        return self._aead.decrypt(nonce, sealed, kind.encode()).decode()
