"""The PII vault (SPEC §3): keyed blind index + AES-GCM, kind-bound, key handling."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag

from qinqing.identity.vault import (
    KEY_VERSION,
    NONCE_BYTES,
    Vault,
    VaultKeyError,
    generate_key,
    load_or_create_key_file,
    parse_key,
)

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
NUMBER = "150602198001010023"
PHONE = "13800138000"


@pytest.fixture
def vault() -> Vault:
    return Vault(KEY)


def test_encrypt_decrypt_roundtrip(vault: Vault) -> None:
    for kind, value in [("id_number", NUMBER), ("phone", PHONE), ("name", "阿依古丽·买买提")]:
        assert vault.decrypt(kind, vault.encrypt(kind, value)) == value


def test_ciphertext_differs_each_time_and_hides_the_value(vault: Vault) -> None:
    a, b = vault.encrypt("id_number", NUMBER), vault.encrypt("id_number", NUMBER)
    assert a != b
    assert a[:1] == KEY_VERSION
    for blob in (a, b):
        assert NUMBER.encode() not in blob
        assert NUMBER not in blob.hex()


def test_index_is_deterministic_and_hides_the_value(vault: Vault) -> None:
    digest = vault.index("id_number", NUMBER)
    assert digest == vault.index("id_number", NUMBER) == Vault(KEY).index("id_number", NUMBER)
    assert len(digest) == 64
    assert int(digest, 16) >= 0
    assert NUMBER not in digest
    assert vault.index("id_number", "150602198001010031") != digest


def test_index_is_keyed(vault: Vault) -> None:
    assert Vault(OTHER_KEY).index("id_number", NUMBER) != vault.index("id_number", NUMBER)


def test_index_is_bound_to_the_kind(vault: Vault) -> None:
    assert vault.index("phone", PHONE) != vault.index("id_number", PHONE)


def test_other_key_cannot_decrypt(vault: Vault) -> None:
    blob = vault.encrypt("id_number", NUMBER)
    with pytest.raises(InvalidTag):
        Vault(OTHER_KEY).decrypt("id_number", blob)


@pytest.mark.parametrize("position", [1, 1 + NONCE_BYTES, -1])
def test_tampered_ciphertext_is_refused(vault: Vault, position: int) -> None:
    blob = bytearray(vault.encrypt("id_number", NUMBER))
    blob[position] ^= 0x01
    with pytest.raises(InvalidTag):
        vault.decrypt("id_number", bytes(blob))


def test_truncated_ciphertext_is_refused(vault: Vault) -> None:
    blob = vault.encrypt("id_number", NUMBER)
    with pytest.raises(InvalidTag):
        vault.decrypt("id_number", blob[:-1])


def test_unknown_key_version_is_refused(vault: Vault) -> None:
    blob = vault.encrypt("id_number", NUMBER)
    with pytest.raises(ValueError, match="version"):
        vault.decrypt("id_number", b"\x02" + blob[1:])


def test_a_phone_ciphertext_cannot_pass_as_an_id_number(vault: Vault) -> None:
    blob = vault.encrypt("phone", PHONE)
    with pytest.raises(InvalidTag):
        vault.decrypt("id_number", blob)
    assert vault.decrypt("phone", blob) == PHONE


def test_parse_key_accepts_urlsafe_base64_with_or_without_padding() -> None:
    b64 = base64.urlsafe_b64encode(KEY).decode()
    assert parse_key(b64) == KEY
    assert parse_key(b64.rstrip("=")) == KEY
    assert parse_key(f"  {b64}\n") == KEY


def test_parse_key_accepts_hex() -> None:
    assert parse_key(KEY.hex()) == KEY
    assert parse_key(KEY.hex().upper()) == KEY


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not a key!",
        "zz" * 32,  # 64 characters, not hex
        base64.urlsafe_b64encode(b"short").decode(),
        base64.urlsafe_b64encode(bytes(33)).decode(),
        (bytes(31)).hex(),
    ],
)
def test_parse_key_refuses_malformed_keys(text: str) -> None:
    with pytest.raises(VaultKeyError) as info:
        parse_key(text)
    assert "QINQING_SECRET_KEY" in str(info.value)


def test_generated_keys_parse_and_differ() -> None:
    a, b = generate_key(), generate_key()
    assert a != b
    assert len(parse_key(a)) == len(parse_key(b)) == 32


def test_key_file_is_created_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "data" / "secret.key"
    old_umask = os.umask(0)  # the file mode must not depend on the umask
    try:
        first = load_or_create_key_file(path)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) == 32
    assert load_or_create_key_file(path) == first
    assert Vault(load_or_create_key_file(path)).index("id_number", NUMBER) == Vault(first).index(
        "id_number", NUMBER
    )


def test_malformed_key_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    path.write_text("garbage\n")
    with pytest.raises(VaultKeyError):
        load_or_create_key_file(path)
