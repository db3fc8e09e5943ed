"""Message signatures (DESIGN §3, §7) and the gateway's own signatures.

A message signature is a compact JWS, header `alg`=EdDSA and `kid`, whose
claims bind `mid`, `kind`, `iss`, `iat` (int seconds) and `sha256` (lowercase
hex SHA-256 of the payload bytes). The payload travels beside the JWS, not in
it. Any JOSE library can produce one; PyJWT verifies it."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.domain.errors import FieldViolation, InvalidMessage, Unauthenticated
from gateway.security import compact
from gateway.security.keys import ALGORITHM, KeyLookup, KeyRecord, load_public_raw

_SIGNATURE_FIELD = "envelope.signature"
_STRING_CLAIMS = ("mid", "kind", "iss", "sha256")


@dataclass(frozen=True)
class MessageClaims:
    """The claims of a message signature and the `kid` of its header."""

    mid: str
    kind: str
    iss: str
    iat: int
    sha256: str
    kid: str


def _compact_jws(key: Ed25519PrivateKey, kid: str, claims: dict[str, Any]) -> str:
    return compact.sign(key, kid, claims)


def _refuse(reason: str, field: str, message: str) -> InvalidMessage:
    return InvalidMessage(reason, message, [FieldViolation(field, message)])


def _unauthenticated(reason: str, message: str) -> Unauthenticated:
    return Unauthenticated(reason, message, [FieldViolation(_SIGNATURE_FIELD, message)])


def sign_message(
    key: Ed25519PrivateKey,
    kid: str,
    *,
    mid: str,
    kind: str,
    iss: str,
    payload: bytes,
    iat: int | None = None,
) -> str:
    """Return the compact JWS binding the message to `payload`; `iat` defaults to now."""
    claims = {
        "mid": mid,
        "kind": kind,
        "iss": iss,
        "iat": int(time.time()) if iat is None else iat,
        "sha256": hashlib.sha256(payload).hexdigest(),
    }
    return _compact_jws(key, kid, claims)


def _shape_problem(header: dict[str, Any], claims: dict[str, Any]) -> str | None:
    """Return what makes header and claims unfit for a message signature, if anything."""
    if header.get("alg") != ALGORITHM:
        return f"alg must be {ALGORITHM}, not {header.get('alg')!r}"
    if not isinstance(header.get("kid"), str) or not header["kid"]:
        return "the header has no kid"
    not_strings = [c for c in _STRING_CLAIMS if not isinstance(claims.get(c), str)]
    if not_strings:
        return f"claims {', '.join(not_strings)} must be strings"
    if type(claims.get("iat")) is not int:  # bool is an int subclass; refuse it
        return "claim iat must be an integer (seconds)"
    return None


def _parse(signature: str) -> tuple[MessageClaims, compact.Parsed]:
    try:
        parsed = compact.parse(signature)
    except compact.MalformedJws as exc:
        raise _refuse("MALFORMED_SIGNATURE", _SIGNATURE_FIELD, f"not a compact JWS: {exc}") from exc
    header, claims = parsed.header, parsed.claims
    problem = _shape_problem(header, claims)
    if problem is not None:
        raise _refuse("MALFORMED_SIGNATURE", _SIGNATURE_FIELD, problem)
    return (
        MessageClaims(
            mid=claims["mid"],
            kind=claims["kind"],
            iss=claims["iss"],
            iat=claims["iat"],
            sha256=claims["sha256"],
            kid=header["kid"],
        ),
        parsed,
    )


def unverified_claims(signature: str) -> MessageClaims:
    """Return the claims and kid of `signature` WITHOUT verifying it.

    Raises InvalidMessage("MALFORMED_SIGNATURE") on field envelope.signature
    unless it is a compact JWS with alg EdDSA, a string kid, string claims
    mid, kind, iss, sha256 and an integer iat.
    """
    return _parse(signature)[0]


def _active_key(keys: KeyLookup, agency: str, kid: str) -> KeyRecord:
    if not keys.agency_exists(agency):
        raise Unauthenticated("UNKNOWN_AGENCY", f"{agency!r} is not a registered agency")
    # The same faults as a token's unknown or revoked key, with the same status.
    record = keys.key(agency, kid)
    if record is None:
        raise _unauthenticated("UNKNOWN_KEY", f"{agency} has no key {kid!r}")
    if record.revoked:
        raise _unauthenticated("REVOKED_KEY", f"key {kid!r} of {agency} is revoked")
    return record


def verify_message(
    signature: str,
    keys: KeyLookup,
    *,
    mid: str,
    kind: str,
    sender: str,
    payload: bytes,
    now: float,
    max_skew_seconds: int,
    require_fresh: bool = True,
) -> MessageClaims:
    """Return the claims of `signature` once it proves that `sender` signed
    this `mid`, `kind` and `payload` within `max_skew_seconds` of `now`
    (with ``require_fresh=False`` the time is left to the caller: see
    ``check_fresh``; a retry of a known message is answered whenever it comes).

    Checks run in this order; the first failure raises InvalidMessage with
    its reason and field, except UNKNOWN_AGENCY, UNKNOWN_KEY and REVOKED_KEY
    which are Unauthenticated (as for a token):
    MALFORMED_SIGNATURE (envelope.signature), SENDER_MISMATCH (envelope.sender),
    CLAIMS_MISMATCH (envelope.mid or envelope.kind), UNKNOWN_AGENCY, UNKNOWN_KEY,
    REVOKED_KEY (envelope.signature), BAD_SIGNATURE (envelope.signature), DIGEST_MISMATCH
    (envelope.payload), IAT_OUT_OF_RANGE (envelope.signature).
    """
    claims, parsed = _parse(signature)
    if claims.iss != sender:
        raise _refuse(
            "SENDER_MISMATCH",
            "envelope.sender",
            f"signed by {claims.iss!r} but sent as {sender!r}",
        )
    for name, signed, stated in (("mid", claims.mid, mid), ("kind", claims.kind, kind)):
        if signed != stated:
            raise _refuse(
                "CLAIMS_MISMATCH",
                f"envelope.{name}",
                f"signed {name} {signed!r} differs from the envelope's {stated!r}",
            )
    record = _active_key(keys, claims.iss, claims.kid)
    if not compact.verifies(parsed, load_public_raw(record.public)):
        raise _refuse("BAD_SIGNATURE", _SIGNATURE_FIELD, f"does not verify with key {claims.kid!r}")
    if claims.sha256 != hashlib.sha256(payload).hexdigest():
        raise _refuse(
            "DIGEST_MISMATCH", "envelope.payload", "the payload is not the one that was signed"
        )
    if require_fresh:
        check_fresh(claims, now, max_skew_seconds)
    return claims


def is_fresh(claims: MessageClaims, now: float, max_skew_seconds: int) -> bool:
    """Whether the signature's `iat` is within `max_skew_seconds` of `now`."""
    return abs(now - claims.iat) <= max_skew_seconds


def check_fresh(claims: MessageClaims, now: float, max_skew_seconds: int) -> None:
    """Raise InvalidMessage("IAT_OUT_OF_RANGE") on envelope.signature unless
    the signature is fresh (see ``is_fresh``)."""
    if not is_fresh(claims, now, max_skew_seconds):
        raise _refuse(
            "IAT_OUT_OF_RANGE",
            _SIGNATURE_FIELD,
            f"iat {claims.iat} is more than {max_skew_seconds}s from the gateway's clock",
        )


def sign_gateway(key: Ed25519PrivateKey, kid: str, claims: dict[str, Any]) -> str:
    """Return a compact JWS (alg EdDSA, header kid) over arbitrary `claims`,
    as the gateway signs receipts and deliveries."""
    return _compact_jws(key, kid, claims)


def verify_gateway(token: str, public: bytes) -> dict[str, Any]:
    """Return the claims of `token` if it is an EdDSA JWS made with the key
    whose raw public bytes are `public`; else raise InvalidMessage("BAD_SIGNATURE").

    Only the signature is checked: a receipt stays verifiable for ever, so no
    time claim is enforced.
    """
    try:
        parsed = compact.parse(token)
    except compact.MalformedJws as exc:
        raise InvalidMessage("BAD_SIGNATURE", f"not signed by the gateway key: {exc}") from exc
    if not compact.verifies(parsed, load_public_raw(public)):
        raise InvalidMessage("BAD_SIGNATURE", "not signed by the gateway key: bad signature")
    return parsed.claims
