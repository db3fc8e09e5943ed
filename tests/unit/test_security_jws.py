from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwcrypto import jwk, jws

from gateway.domain.errors import FieldViolation, GatewayError, InvalidMessage, Unauthenticated
from gateway.security import (
    KeyRecord,
    MessageClaims,
    StaticKeys,
    generate_private_key,
    kid_for,
    public_raw,
    sign_gateway,
    sign_message,
    unverified_claims,
    verify_gateway,
    verify_message,
)

NOW = 1_750_000_000
SKEW = 300
MID = str(uuid.uuid4())
KIND = "verification.result"
PAYLOAD = b"\x0a\x07police\x12\x03hit"

CURRENT = generate_private_key()
NEXT = generate_private_key()  # rotation: registered before CURRENT is retired
RETIRED = generate_private_key()


def _kid(key: Ed25519PrivateKey) -> str:
    return kid_for(public_raw(key))


KEYS = StaticKeys(
    {
        "police": [
            KeyRecord("police", _kid(CURRENT), public_raw(CURRENT), revoked=False),
            KeyRecord("police", _kid(NEXT), public_raw(NEXT), revoked=False),
            KeyRecord("police", _kid(RETIRED), public_raw(RETIRED), revoked=True),
        ],
        "judicial": [],
    }
)


def _sign(key: Ed25519PrivateKey = CURRENT, **overrides: Any) -> str:
    fields: dict[str, Any] = {
        "mid": MID,
        "kind": KIND,
        "iss": "police",
        "payload": PAYLOAD,
        "iat": NOW,
    }
    return sign_message(key, overrides.pop("kid", _kid(key)), **{**fields, **overrides})


def _verify(signature: str, **overrides: Any) -> MessageClaims:
    envelope: dict[str, Any] = {
        "mid": MID,
        "kind": KIND,
        "sender": "police",
        "payload": PAYLOAD,
        "now": NOW,
        "max_skew_seconds": SKEW,
    }
    return verify_message(signature, KEYS, **{**envelope, **overrides})


def _refusal(signature: str, **overrides: Any) -> GatewayError:
    with pytest.raises(GatewayError) as caught:
        _verify(signature, **overrides)
    return caught.value


def _claims(**overrides: Any) -> dict[str, Any]:
    claims = {
        "mid": MID,
        "kind": KIND,
        "iss": "police",
        "iat": NOW,
        "sha256": hashlib.sha256(PAYLOAD).hexdigest(),
    }
    return {k: v for k, v in {**claims, **overrides}.items() if v is not None}


def test_a_signed_message_verifies_and_yields_its_claims() -> None:
    claims = _verify(_sign())

    assert claims == MessageClaims(
        mid=MID,
        kind=KIND,
        iss="police",
        iat=NOW,
        sha256=hashlib.sha256(PAYLOAD).hexdigest(),
        kid=_kid(CURRENT),
    )


def test_signature_carries_the_five_claims_and_no_payload_or_exp() -> None:
    signature = _sign()

    assert jwt.get_unverified_header(signature)["alg"] == "EdDSA"
    assert jwt.decode(signature, options={"verify_signature": False}) == _claims()


def test_pyjwt_verifies_the_gateways_signatures_with_the_public_key() -> None:
    claims = {"iss": "gateway", "mid": MID, "sub": "police", "iat": NOW}
    token = sign_gateway(CURRENT, "g1", claims)

    assert jwt.get_unverified_header(token)["kid"] == "g1"
    assert jwt.decode(token, CURRENT.public_key(), algorithms=["EdDSA"]) == claims


def test_unverified_claims_reads_a_signature_without_keys() -> None:
    assert unverified_claims(_sign(NEXT)).kid == _kid(NEXT)


def test_a_jws_made_by_jwcrypto_verifies() -> None:
    token = jws.JWS(json.dumps(_claims()).encode())
    token.add_signature(
        jwk.JWK.from_pyca(CURRENT),
        alg="EdDSA",
        protected=json.dumps({"alg": "EdDSA", "kid": _kid(CURRENT)}),
    )

    claims = _verify(token.serialize(compact=True))

    assert (claims.mid, claims.kid) == (MID, _kid(CURRENT))


def test_both_keys_of_a_rotation_are_accepted() -> None:
    assert _verify(_sign(CURRENT)).kid == _kid(CURRENT)
    assert _verify(_sign(NEXT)).kid == _kid(NEXT)


def _foreign_jws(claims: dict[str, Any], header: dict[str, Any], alg: str = "EdDSA") -> str:
    keys: dict[str, Any] = {
        "EdDSA": CURRENT,
        "HS256": "a-shared-secret-of-32-bytes-or-more",
        "none": None,
    }
    return jwt.encode(claims, keys[alg], algorithm=alg, headers=header)


@pytest.mark.parametrize(
    "signature",
    [
        pytest.param("not-a-jws", id="not-a-jws"),
        pytest.param("", id="empty"),
        pytest.param(_foreign_jws(_claims(), {"kid": _kid(CURRENT)}, alg="HS256"), id="alg-hs256"),
        pytest.param(_foreign_jws(_claims(), {"kid": _kid(CURRENT)}, alg="none"), id="alg-none"),
        pytest.param(_foreign_jws(_claims(), {}), id="no-kid"),
        pytest.param(_foreign_jws(_claims(sha256=None), {"kid": "k"}), id="no-sha256"),
        pytest.param(_foreign_jws(_claims(mid=7), {"kid": "k"}), id="mid-not-a-string"),
        pytest.param(_foreign_jws(_claims(iat=str(NOW)), {"kid": "k"}), id="iat-a-string"),
        pytest.param(_foreign_jws(_claims(iat=NOW + 0.5), {"kid": "k"}), id="iat-a-float"),
        pytest.param(_foreign_jws(_claims(iat=True), {"kid": "k"}), id="iat-a-bool"),
        pytest.param("a.b.c.d", id="four-parts"),
        pytest.param("e30.e30.!!", id="signature-not-base64url"),
        pytest.param("WzFd.e30.AA", id="header-a-json-array"),
        pytest.param("e30.bm90IGpzb24.AA", id="claims-not-json"),
        pytest.param("e30.e30.AA\u00e9", id="not-ascii"),
    ],
)
def test_a_malformed_signature_is_refused(signature: str) -> None:
    refusal = _refusal(signature)

    assert isinstance(refusal, InvalidMessage)
    assert refusal.reason == "MALFORMED_SIGNATURE"
    assert [v.field for v in refusal.violations] == ["envelope.signature"]


def test_a_signature_by_another_agency_than_the_sender_is_refused() -> None:
    refusal = _refusal(_sign(), sender="judicial")

    assert refusal.reason == "SENDER_MISMATCH"
    assert [v.field for v in refusal.violations] == ["envelope.sender"]


@pytest.mark.parametrize(
    ("envelope", "field"),
    [({"mid": str(uuid.uuid4())}, "envelope.mid"), ({"kind": "alert"}, "envelope.kind")],
)
def test_a_signature_over_another_mid_or_kind_is_refused(
    envelope: dict[str, str], field: str
) -> None:
    refusal = _refusal(_sign(), **envelope)

    assert refusal.reason == "CLAIMS_MISMATCH"
    assert [v.field for v in refusal.violations] == [field]


def test_a_message_from_an_unknown_agency_is_unauthenticated() -> None:
    refusal = _refusal(_sign(iss="courts"), sender="courts")

    assert isinstance(refusal, Unauthenticated)
    assert refusal.reason == "UNKNOWN_AGENCY"


def test_a_signature_under_an_unregistered_kid_is_refused() -> None:
    refusal = _refusal(_sign(generate_private_key()))

    assert isinstance(refusal, Unauthenticated)
    assert refusal.reason == "UNKNOWN_KEY"


def test_a_signature_by_a_revoked_key_is_refused() -> None:
    refusal = _refusal(_sign(RETIRED))

    assert isinstance(refusal, Unauthenticated)
    assert refusal.reason == "REVOKED_KEY"


def test_a_signature_by_another_key_under_a_registered_kid_is_refused() -> None:
    forged = _sign(generate_private_key(), kid=_kid(CURRENT))

    refusal = _refusal(forged)

    assert refusal.reason == "BAD_SIGNATURE"
    assert [v.field for v in refusal.violations] == ["envelope.signature"]


def test_a_signature_with_altered_claims_is_refused() -> None:
    header, _, signature = _sign().split(".")
    altered = jwt.utils.base64url_encode(json.dumps(_claims(iat=NOW + 1)).encode()).decode()

    assert _refusal(f"{header}.{altered}.{signature}").reason == "BAD_SIGNATURE"


def test_a_payload_other_than_the_signed_one_is_refused() -> None:
    refusal = _refusal(_sign(), payload=PAYLOAD + b"\x00")

    assert refusal.reason == "DIGEST_MISMATCH"
    assert refusal.violations == [
        FieldViolation("envelope.payload", "the payload is not the one that was signed")
    ]


@pytest.mark.parametrize("offset", [SKEW + 1, -(SKEW + 1)], ids=["too-old", "from-the-future"])
def test_a_signature_issued_beyond_the_allowed_skew_is_refused(offset: int) -> None:
    refusal = _refusal(_sign(iat=NOW + offset))

    assert refusal.reason == "IAT_OUT_OF_RANGE"
    assert [v.field for v in refusal.violations] == ["envelope.signature"]


def test_a_signature_issued_exactly_at_the_skew_limit_is_accepted() -> None:
    assert _verify(_sign(iat=NOW - SKEW)).iat == NOW - SKEW


def test_sender_mismatch_is_reported_before_an_unknown_key() -> None:
    assert _refusal(_sign(generate_private_key()), sender="judicial").reason == "SENDER_MISMATCH"


def test_a_gateway_signature_round_trips_its_claims() -> None:
    gateway = generate_private_key()
    claims = {"mid": MID, "iss": "gateway", "sub": "police", "audit_index": 41, "iat": NOW}

    token = sign_gateway(gateway, _kid(gateway), claims)

    assert verify_gateway(token, public_raw(gateway)) == claims
    assert jwt.get_unverified_header(token)["kid"] == _kid(gateway)


def test_an_old_gateway_receipt_still_verifies() -> None:
    gateway = generate_private_key()
    claims = {"mid": MID, "iat": 1, "exp": 2}

    assert verify_gateway(sign_gateway(gateway, "g1", claims), public_raw(gateway)) == claims


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(sign_gateway(generate_private_key(), "g1", {"mid": MID}), id="other-key"),
        pytest.param("garbage", id="not-a-jws"),
    ],
)
def test_a_receipt_not_signed_by_the_gateway_is_refused(token: str) -> None:
    with pytest.raises(InvalidMessage) as caught:
        verify_gateway(token, public_raw(CURRENT))

    assert caught.value.reason == "BAD_SIGNATURE"
