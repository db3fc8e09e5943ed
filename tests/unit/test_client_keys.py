"""Keys on the agency side: the gateway's public keys, which every delivery is
checked against — a JWKS file (option or setting), else the gateway key in the
data directory, else none — and the agency's own private key files."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from gateway.client.keys import gateway_keys
from gateway.config import Settings
from gateway.security import generate_private_key, jwks, kid_for, private_to_pem, public_raw
from gateway.security.keyfiles import load_agency_key, write_new_key


def _jwks_file(path: Path, *keys: bytes) -> Path:
    path.write_text(json.dumps(jwks((key, kid_for(key)) for key in keys)))
    return path


def test_the_jwks_option_wins_over_the_setting_and_the_data_directory(tmp_path: Path) -> None:
    old, new = (public_raw(generate_private_key()) for _ in range(2))
    settings = Settings(data_dir=tmp_path, gateway_jwks=str(_jwks_file(tmp_path / "s.jwks", old)))
    settings.keys_dir.mkdir()
    settings.gateway_key_file.write_bytes(private_to_pem(generate_private_key()))
    assert gateway_keys(settings, _jwks_file(tmp_path / "o.jwks", old, new)) == (old, new)
    assert gateway_keys(settings) == (old,)


def test_on_the_gateways_machine_the_key_comes_from_the_data_directory(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert gateway_keys(settings) == ()  # nothing to check against: no check
    key = generate_private_key()
    settings.keys_dir.mkdir()
    settings.gateway_key_file.write_bytes(private_to_pem(key))
    assert gateway_keys(settings) == (public_raw(key),)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("not json", "Expecting value"),
        ('{"keys": []}', "the JWK Set holds no key"),
        ('{"keys": [{"kty": "RSA"}]}', "keys[0] is not an Ed25519 public key"),
        ('{"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "AAAA"}]}', "keys[0]: x is not"),
    ],
)
def test_a_file_that_is_no_jwks_of_ed25519_keys_is_named_with_its_problem(
    tmp_path: Path, content: str, problem: str
) -> None:
    path = tmp_path / "gateway.jwks"
    path.write_text(content)
    with pytest.raises(ValueError) as caught:
        gateway_keys(replace(Settings(data_dir=tmp_path), gateway_jwks=str(path)))
    assert str(caught.value).startswith(f"gateway JWKS {path}: ")
    assert problem in str(caught.value)


def test_the_newest_agency_key_is_used_unless_one_is_named(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    with pytest.raises(ValueError, match=r"no private key for 'police' .*; pass --key FILE"):
        load_agency_key(settings, "police")
    first, _, first_path = write_new_key(settings, "police")
    assert oct(first_path.stat().st_mode & 0o777) == "0o600"
    assert public_raw(load_agency_key(settings, "police")) == public_raw(first)
    assert public_raw(load_agency_key(settings, "police", first_path)) == public_raw(first)
