"""Receipts: the gateway's signed word that it stored a message."""

from __future__ import annotations

from collections.abc import Sequence

from gateway.domain.messages import NewMessage
from gateway.domain.routing import Signer
from gateway.proto.silian.v1 import envelope_pb2


def sign_receipt(
    signer: Signer, message: NewMessage, audit_index: int, recipients: Sequence[str]
) -> bytes:
    """The serialized receipt of ``message``: who sent what (digest), its
    acceptance's ``audit_index``, when, and to whom it goes — signed (JWS
    claims ``mid``, ``sub`` = sender, ``kind``, ``sha256``, ``audit_index``,
    ``iat``) by the gateway."""
    receipt = envelope_pb2.Receipt(
        mid=message.mid,
        sender=message.sender,
        kind=message.kind,
        payload_sha256=message.payload_sha256,
        audit_index=audit_index,
        recipients=list(recipients),
    )
    receipt.accepted_at.FromDatetime(message.accepted_at)
    receipt.signature = signer.sign(
        {
            "mid": message.mid,
            "sub": message.sender,
            "kind": message.kind,
            "sha256": message.payload_sha256,
            "audit_index": audit_index,
            "iat": int(message.accepted_at.timestamp()),
        }
    )
    return receipt.SerializeToString(deterministic=True)
