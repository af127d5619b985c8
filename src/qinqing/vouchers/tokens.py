"""Voucher tokens: ``base64url(16 random bytes) "." base64url(MAC)``.

The random part names nothing; the MAC (HMAC-SHA256, truncated to 128 bits)
proves the service made it, so a forged or mistyped token is refused before
any database read. The MAC key is a sub-key of ``QINQING_SECRET_KEY``: an
HMAC, under the vault's HKDF-derived blind-index key, of a label used for
nothing else. What the database keeps is another keyed hash of the random part
(:func:`lookup_hash`), never the token.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets

from qinqing.identity.vault import Vault

RANDOM_BYTES = 16
MAC_BYTES = 16
_B64 = r"[A-Za-z0-9_-]{22}"
SHAPE = re.compile(rf"({_B64})\.({_B64})")
_KEY_KIND = "voucher-mac-key"
_HASH_KIND = "voucher-token"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "==")


def _mac(vault: Vault, random_part: bytes) -> bytes:
    key = bytes.fromhex(vault.index(_KEY_KIND, "v1"))
    return hmac.new(key, random_part, hashlib.sha256).digest()[:MAC_BYTES]


def new_token(vault: Vault) -> tuple[str, str]:
    """A fresh token and the hash to store for it."""
    random_part = secrets.token_bytes(RANDOM_BYTES)
    token = f"{_b64(random_part)}.{_b64(_mac(vault, random_part))}"
    return token, lookup_hash(vault, random_part)


def lookup_hash(vault: Vault, random_part: bytes) -> str:
    return vault.index(_HASH_KIND, _b64(random_part))


def verify(vault: Vault, token: str) -> str | None:
    """The look-up hash of a genuine token, or None for anything we did not sign."""
    m = SHAPE.fullmatch(token)
    if m is None:
        return None
    try:
        random_part, mac = _unb64(m.group(1)), _unb64(m.group(2))
    except (ValueError, binascii.Error):
        return None
    if len(random_part) != RANDOM_BYTES or not hmac.compare_digest(mac, _mac(vault, random_part)):
        return None
    # Base64 has several spellings of the same bytes in the last character; only
    # the canonical one is ours.
    if _b64(random_part) != m.group(1) or _b64(mac) != m.group(2):
        return None
    return lookup_hash(vault, random_part)
