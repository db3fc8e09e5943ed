"""Keys, message signatures, bearer tokens and pseudonyms: everything the
gateway and the agency connectors sign or verify goes through here."""

from __future__ import annotations

from gateway.security.jws import (
    MessageClaims,
    sign_gateway,
    sign_message,
    unverified_claims,
    verify_gateway,
    verify_message,
)
from gateway.security.keys import (
    ALGORITHM,
    KeyLookup,
    KeyRecord,
    StaticKeys,
    generate_private_key,
    jwks,
    jwks_public_keys,
    kid_for,
    load_private_pem,
    load_public_pem,
    load_public_raw,
    private_to_pem,
    public_jwk,
    public_raw,
    public_to_pem,
)
from gateway.security.pseudonyms import new_pseudonym_key, pseudonym
from gateway.security.tokens import (
    TokenClaims,
    bearer_from_metadata,
    issue_token,
    verify_token,
)

__all__ = [
    "ALGORITHM",
    "KeyLookup",
    "KeyRecord",
    "MessageClaims",
    "StaticKeys",
    "TokenClaims",
    "bearer_from_metadata",
    "generate_private_key",
    "issue_token",
    "jwks",
    "jwks_public_keys",
    "kid_for",
    "load_private_pem",
    "load_public_pem",
    "load_public_raw",
    "new_pseudonym_key",
    "private_to_pem",
    "pseudonym",
    "public_jwk",
    "public_raw",
    "public_to_pem",
    "sign_gateway",
    "sign_message",
    "unverified_claims",
    "verify_gateway",
    "verify_message",
    "verify_token",
]
