from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwcrypto import jwk

from gateway.security import (
    KeyRecord,
    StaticKeys,
    generate_private_key,
    jwks,
    kid_for,
    load_private_pem,
    load_public_pem,
    load_public_raw,
    private_to_pem,
    public_jwk,
    public_raw,
    public_to_pem,
)


def test_private_key_survives_a_pem_round_trip() -> None:
    key = generate_private_key()

    loaded = load_private_pem(private_to_pem(key))

    assert public_raw(loaded) == public_raw(key)


def test_public_key_survives_pem_and_raw_round_trips() -> None:
    key = generate_private_key()
    raw = public_raw(key)

    assert len(raw) == 32
    assert load_public_pem(public_to_pem(key)) == raw
    assert load_public_pem(public_to_pem(raw)) == raw
    assert public_raw(load_public_raw(raw)) == raw
    assert public_to_pem(key.public_key()) == public_to_pem(raw)


def test_a_non_ed25519_private_key_is_refused_with_a_clear_error() -> None:
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )

    with pytest.raises(ValueError, match="Ed25519"):
        load_private_pem(pem)


def test_an_encrypted_private_key_is_refused_with_a_clear_error() -> None:
    pem = generate_private_key().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )

    with pytest.raises(ValueError, match="unencrypted"):
        load_private_pem(pem)


def test_a_non_ed25519_public_key_is_refused_with_a_clear_error() -> None:
    pem = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )

    with pytest.raises(ValueError, match="Ed25519"):
        load_public_pem(pem)


def test_a_raw_key_of_the_wrong_length_is_refused() -> None:
    with pytest.raises(ValueError):
        load_public_raw(b"\x01" * 31)
    with pytest.raises(ValueError):
        kid_for(b"\x01" * 33)


def test_kid_is_the_rfc7638_thumbprint_jwcrypto_computes() -> None:
    key = generate_private_key()

    expected = jwk.JWK.from_pyca(key.public_key()).thumbprint()

    assert kid_for(public_raw(key)) == expected


def test_kid_matches_the_rfc8037_thumbprint_example() -> None:
    # RFC 8037 appendix A.2 and A.3
    public = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")

    assert kid_for(public) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


def test_public_jwk_is_a_usable_okp_key_named_by_its_thumbprint() -> None:
    raw = public_raw(generate_private_key())

    document = public_jwk(raw)
    imported = jwk.JWK(**document)

    assert document["kid"] == kid_for(raw)
    assert (document["kty"], document["crv"], document["alg"], document["use"]) == (
        "OKP",
        "Ed25519",
        "EdDSA",
        "sig",
    )
    assert imported.thumbprint() == document["kid"]


def test_jwks_lists_each_key_under_the_given_kid_in_order() -> None:
    first, second = public_raw(generate_private_key()), public_raw(generate_private_key())

    document = jwks([(first, "2025-01"), (second, "2025-07")])

    assert [k["kid"] for k in document["keys"]] == ["2025-01", "2025-07"]
    assert document["keys"][1] == public_jwk(second, "2025-07")


def test_static_keys_answer_for_registered_agencies_and_keys() -> None:
    record = KeyRecord("police", "k1", public_raw(generate_private_key()), revoked=False)
    keys = StaticKeys({"police": [record], "ngo": []})

    assert keys.key("police", "k1") == record
    assert keys.key("police", "k2") is None
    assert keys.key("detox", "k1") is None
    assert keys.agency_exists("ngo")
    assert not keys.agency_exists("detox")


def test_static_keys_refuse_a_record_filed_under_another_agency() -> None:
    record = KeyRecord("police", "k1", public_raw(generate_private_key()), revoked=False)

    with pytest.raises(ValueError, match="filed under"):
        StaticKeys({"ngo": [record]})
