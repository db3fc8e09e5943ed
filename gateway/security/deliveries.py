"""Is this delivery one the gateway signed for this agency? The one check,
made by the gateway before ``Receive`` hands a delivery over (the broker is not
trusted) and by the agency's inbox reader on every delivery it receives.

The gateway's delivery signature is a compact JWS whose claims name the
addressee (``sub``), the delivery's ``mid`` and ``kind``, its sender (``snd``)
and the SHA-256 of its payload (``sha256``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from gateway.domain.errors import InvalidMessage
from gateway.proto.silian.v1 import envelope_pb2
from gateway.security.jws import verify_gateway

#: The claims compared with the delivery, and what each names (for the reason).
_SIGNED = (
    ("sub", "addressee"),
    ("mid", "message id"),
    ("kind", "kind"),
    ("snd", "sender"),
    ("sha256", "payload digest"),
)


def delivery_problem(
    delivery: envelope_pb2.Delivery, agency: str, gateway_keys: Sequence[bytes]
) -> str | None:
    """Why ``delivery`` is not one the gateway signed for ``agency``; None if it is.

    The signature must verify with one of ``gateway_keys`` (raw Ed25519 public
    keys), its claims must match the delivery — addressee ``sub`` = ``agency``,
    ``mid``, ``kind``, sender ``snd``, ``sha256`` = the SHA-256 of the payload —
    and the delivery's ``recipient``, when set, must be ``agency``."""
    claims = _gateway_claims(delivery.signature, gateway_keys)
    if claims is None:
        return "the gateway's signature does not verify"
    stated = {
        "sub": agency,
        "mid": delivery.mid,
        "kind": delivery.kind,
        "snd": delivery.sender,
        "sha256": hashlib.sha256(delivery.payload).hexdigest(),
    }
    for claim, what in _SIGNED:
        if claims.get(claim) != stated[claim]:
            signed = claims.get(claim)
            return f"the gateway signed {what} {signed!r}, the delivery has {stated[claim]!r}"
    if delivery.recipient and delivery.recipient != agency:
        return f"the delivery is addressed to {delivery.recipient!r}, not {agency!r}"
    return None


def _gateway_claims(signature: str, gateway_keys: Sequence[bytes]) -> dict[str, Any] | None:
    for public in gateway_keys:
        try:
            return verify_gateway(signature, public)
        except InvalidMessage:
            continue
    return None
