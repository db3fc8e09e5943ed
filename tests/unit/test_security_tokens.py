from __future__ import annotations

import inspect
import uuid
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.domain.errors import Unauthenticated
from gateway.security import (
    KeyRecord,
    StaticKeys,
    TokenClaims,
    bearer_from_metadata,
    generate_private_key,
    issue_token,
    kid_for,
    public_raw,
    verify_token,
)
from gateway.security.tokens import VerifiedTokens, _pyjwt_reason

NOW = 1_750_000_000
LEEWAY = 30
GATEWAY = "silian-gateway"

CURRENT = generate_private_key()
NEXT = generate_private_key()
RETIRED = generate_private_key()


def _kid(key: Ed25519PrivateKey) -> str:
    return kid_for(public_raw(key))


KEYS = StaticKeys(
    {
        "ngo": [
            KeyRecord("ngo", _kid(CURRENT), public_raw(CURRENT), revoked=False),
            KeyRecord("ngo", _kid(NEXT), public_raw(NEXT), revoked=False),
            KeyRecord("ngo", _kid(RETIRED), public_raw(RETIRED), revoked=True),
        ]
    }
)


def _issue(key: Ed25519PrivateKey = CURRENT, **overrides: Any) -> str:
    fields: dict[str, Any] = {"issuer": "ngo", "audience": GATEWAY, "now": NOW}
    return issue_token(key, overrides.pop("kid", _kid(key)), **{**fields, **overrides})


def _craft(claims: dict[str, Any], header: dict[str, Any] | None = None, alg: str = "EdDSA") -> str:
    """A token with exactly these claims, signed by CURRENT unless alg says otherwise."""
    keys: dict[str, Any] = {"EdDSA": CURRENT, "HS256": "a-shared-secret-of-32-bytes-or-more"}
    headers = {"kid": _kid(CURRENT)} if header is None else header
    return jwt.encode(claims, keys[alg], algorithm=alg, headers=headers)


def _claims(**overrides: Any) -> dict[str, Any]:
    claims = {"iss": "ngo", "aud": GATEWAY, "iat": NOW, "exp": NOW + 300}
    return {k: v for k, v in {**claims, **overrides}.items() if v is not None}


def _verify(token: str | None, **overrides: Any) -> TokenClaims:
    options: dict[str, Any] = {"audience": GATEWAY, "leeway_seconds": LEEWAY, "now": NOW}
    return verify_token(token, KEYS, **{**options, **overrides})


def _reason(token: str | None, **overrides: Any) -> str:
    with pytest.raises(Unauthenticated) as caught:
        _verify(token, **overrides)
    return caught.value.reason


def test_an_issued_token_verifies_as_its_agency() -> None:
    claims = _verify(_issue())

    assert claims == TokenClaims(
        issuer="ngo", kid=_kid(CURRENT), expires_at=NOW + 300, subject="ngo"
    )


def test_an_issued_token_carries_a_unique_id_and_the_requested_lifetime() -> None:
    first, second = (
        jwt.decode(_issue(ttl_seconds=60), options={"verify_signature": False}) for _ in range(2)
    )

    assert first["exp"] - first["iat"] == 60
    assert uuid.UUID(first["jti"]) != uuid.UUID(second["jti"])


def test_a_token_names_its_subject_when_given_one() -> None:
    assert _verify(_issue(subject="ngo-frontend-1")).subject == "ngo-frontend-1"


def test_without_an_explicit_clock_a_fresh_token_verifies() -> None:
    token = issue_token(CURRENT, _kid(CURRENT), issuer="ngo", audience=GATEWAY)

    assert verify_token(token, KEYS, audience=GATEWAY, leeway_seconds=LEEWAY).issuer == "ngo"


def test_both_keys_of_a_rotation_are_accepted() -> None:
    assert _verify(_issue(CURRENT)).kid == _kid(CURRENT)
    assert _verify(_issue(NEXT)).kid == _kid(NEXT)


@pytest.mark.parametrize("token", [None, ""], ids=["none", "empty"])
def test_a_call_without_a_token_is_refused(token: str | None) -> None:
    assert _reason(token) == "MISSING_TOKEN"


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("not-a-jwt", id="not-a-jwt"),
        pytest.param(_craft(_claims(), alg="HS256"), id="alg-hs256"),
        pytest.param(_craft(_claims(), header={}), id="no-kid"),
        pytest.param(_craft(_claims(iss=None)), id="no-iss"),
        pytest.param(_craft(_claims(exp=None)), id="no-exp"),
        pytest.param(_craft(_claims(iat=None)), id="no-iat"),
        pytest.param(_craft(_claims(exp=str(NOW + 300))), id="exp-a-string"),
        pytest.param(_craft(_claims(nbf=True)), id="nbf-a-bool"),
        pytest.param(_craft(_claims(aud=None)), id="no-aud"),
        pytest.param(_craft(_claims(sub=42)), id="sub-not-a-string"),
    ],
)
def test_a_malformed_token_is_refused(token: str) -> None:
    assert _reason(token) == "MALFORMED_TOKEN"


def test_a_token_from_an_unknown_agency_is_refused() -> None:
    assert _reason(_issue(issuer="courts")) == "UNKNOWN_AGENCY"


def test_a_token_under_an_unregistered_kid_is_refused() -> None:
    assert _reason(_issue(generate_private_key())) == "UNKNOWN_KEY"


def test_a_token_signed_by_a_revoked_key_is_refused() -> None:
    assert _reason(_issue(RETIRED)) == "REVOKED_KEY"


def test_a_token_signed_by_another_key_under_a_registered_kid_is_refused() -> None:
    assert _reason(_issue(generate_private_key(), kid=_kid(CURRENT))) == "BAD_TOKEN_SIGNATURE"


def test_an_expired_token_is_refused() -> None:
    assert _reason(_issue(ttl_seconds=60), now=NOW + 60 + LEEWAY) == "EXPIRED_TOKEN"


def test_a_token_expired_within_the_leeway_is_accepted() -> None:
    assert _verify(_issue(ttl_seconds=60), now=NOW + 60 + LEEWAY - 1).issuer == "ngo"


def test_a_token_for_another_audience_is_refused() -> None:
    assert _reason(_issue(audience="someone-else")) == "WRONG_AUDIENCE"


def test_a_token_whose_audience_list_names_the_gateway_is_accepted() -> None:
    assert _verify(_craft(_claims(aud=["other", GATEWAY]))).issuer == "ngo"


def test_a_token_living_longer_than_allowed_is_refused() -> None:
    assert _reason(_issue(ttl_seconds=601)) == "TOKEN_LIFETIME_TOO_LONG"


def test_a_token_expiring_too_far_ahead_of_now_is_not_yet_valid() -> None:
    token = _craft(_claims(iat=NOW + 500, exp=NOW + 1000))

    assert _reason(token) == "TOKEN_NOT_YET_VALID"


def test_a_token_issued_in_the_future_is_refused() -> None:
    assert _reason(_issue(now=NOW + LEEWAY + 1)) == "TOKEN_NOT_YET_VALID"


def test_a_token_issued_an_hour_ahead_is_not_yet_valid() -> None:
    assert _reason(_issue(now=NOW + 3600)) == "TOKEN_NOT_YET_VALID"


def test_a_token_issued_within_the_leeway_ahead_is_accepted() -> None:
    assert _verify(_issue(now=NOW + LEEWAY)).issuer == "ngo"


def test_a_token_not_valid_before_a_future_time_is_refused() -> None:
    assert _reason(_craft(_claims(nbf=NOW + LEEWAY + 1))) == "TOKEN_NOT_YET_VALID"


def test_every_pyjwt_error_maps_to_a_token_reason() -> None:
    errors = [
        cls
        for cls in vars(jwt.exceptions).values()
        if inspect.isclass(cls) and issubclass(cls, jwt.PyJWTError)
    ]
    reasons = {cls.__name__: _pyjwt_reason(cls) for cls in errors}

    assert set(reasons.values()) == {"MALFORMED_TOKEN", "BAD_TOKEN_SIGNATURE", "WRONG_AUDIENCE"}
    assert reasons["InvalidSignatureError"] == "BAD_TOKEN_SIGNATURE"
    assert reasons["InvalidAudienceError"] == "WRONG_AUDIENCE"
    assert reasons["DecodeError"] == "MALFORMED_TOKEN"


@pytest.mark.parametrize(
    ("metadata", "token"),
    [
        ([("authorization", "Bearer abc.def.ghi")], "abc.def.ghi"),
        ([("x-request-id", "1"), ("authorization", "bearer  abc.def.ghi ")], "abc.def.ghi"),
        ([("Authorization", b"BEARER abc.def.ghi")], "abc.def.ghi"),
        ([("authorization", "Basic dXNlcjpwYXNz")], None),
        ([("authorization", "Bearer ")], None),
        ([("authorization", "Bearer")], None),
        ([("x-request-id", "1")], None),
        ([], None),
    ],
)
def test_bearer_token_is_read_from_the_authorization_metadata(
    metadata: list[tuple[str, str | bytes]], token: str | None
) -> None:
    assert bearer_from_metadata(metadata) == token


# --- a token verified once is not verified again (VerifiedTokens) -----------


def test_a_remembered_token_is_still_refused_once_its_key_is_revoked() -> None:
    key = generate_private_key()
    before = StaticKeys({"ngo": [KeyRecord("ngo", _kid(key), public_raw(key), revoked=False)]})
    after = StaticKeys({"ngo": [KeyRecord("ngo", _kid(key), public_raw(key), revoked=True)]})
    verified = VerifiedTokens()
    token = _issue(key)
    assert verify_token(token, before, **_options(verified)).issuer == "ngo"
    with pytest.raises(Unauthenticated) as refused:
        verify_token(token, after, **_options(verified))
    assert refused.value.reason == "REVOKED_KEY"


def test_a_remembered_token_still_expires() -> None:
    verified = VerifiedTokens()
    token = _issue(ttl_seconds=60)
    assert _verify(token, verified=verified).issuer == "ngo"
    assert _reason(token, verified=verified, now=NOW + 60 + LEEWAY) == "EXPIRED_TOKEN"


def test_a_token_that_failed_is_not_remembered() -> None:
    verified = VerifiedTokens()
    forged = _issue(generate_private_key(), kid=_kid(CURRENT))
    for _ in range(2):
        assert _reason(forged, verified=verified) == "BAD_TOKEN_SIGNATURE"


def test_verified_tokens_keep_at_most_their_size() -> None:
    verified = VerifiedTokens(size=2)
    tokens = [_issue() for _ in range(3)]
    for token in tokens:
        _verify(token, verified=verified)
    assert [verified.get(t) is not None for t in tokens] == [False, True, True]


def _options(verified: VerifiedTokens) -> dict[str, Any]:
    return {"audience": GATEWAY, "leeway_seconds": LEEWAY, "now": NOW, "verified": verified}
