"""Before ``Receive`` hands a delivery over: is it the gateway's own, for this agency?

The broker is not trusted (DESIGN §6a): anyone able to publish into an inbox
could slip in a forged, altered, misaddressed or unparsable message. Each one
taken from an inbox is checked against the gateway's own signature and the
agency it is for; what fails is not handed over but dead-lettered by the
caller, with an audit entry and a log line.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import structlog
from google.protobuf.message import DecodeError

from gateway.audit import log as audit_log
from gateway.domain import events, kinds
from gateway.domain.events import AuditEvent
from gateway.proto.silian.v1 import envelope_pb2
from gateway.security import pseudonyms
from gateway.security.deliveries import delivery_problem
from gateway.service.refusals import is_uuid
from gateway.store.repository import Store

log = structlog.get_logger(__name__)

#: Longest reason kept (the claims it quotes come from whoever forged the message).
_REASON_CHARS = 200


class Handover:
    """Checks the messages of agencies' inboxes against the gateway's public key."""

    def __init__(
        self, store: Store, gateway_public: bytes, pseudonym_key: Callable[[str], bytes]
    ) -> None:
        self._store = store
        self._keys = (gateway_public,)
        self._pseudonym_key = pseudonym_key

    def check(self, agency: str, mid: str, kind: str, body: bytes) -> envelope_pb2.Delivery | None:
        """The delivery in ``body`` if the gateway signed it for ``agency``;
        otherwise None, once the refusal is audited and logged (the caller
        dead-letters the message).

        ``mid`` is the AMQP ``message_id``: the message's own mid, which a
        minimized delivery does not show (it carries the agency's delivery id,
        ``pseudonyms.delivery_mid``). The delivery must be the one of that
        message, so the caller may record its hand-over under ``mid``."""
        try:
            delivery = envelope_pb2.Delivery.FromString(body)
        except DecodeError:
            reason = "the message is not a Delivery"
        else:
            problem = delivery_problem(delivery, agency, self._keys) or self._mismatch(
                agency, mid, delivery
            )
            if problem is None:
                return delivery
            reason = problem[:_REASON_CHARS]
        self._quarantine(agency, mid, kind, body, reason)
        return None

    def _mismatch(self, agency: str, mid: str, delivery: envelope_pb2.Delivery) -> str | None:
        if delivery.mid == mid:
            return None
        key = self._pseudonym_key(agency)
        if delivery.mid == pseudonyms.delivery_mid(key, delivery.sender, mid):
            return None
        return f"the delivery is not the one of message {mid!r}"

    def _quarantine(self, agency: str, mid: str, kind: str, body: bytes, reason: str) -> None:
        claimed_mid = mid if is_uuid(mid) and len(mid) <= 36 else ""
        claimed_kind = kind if kind in kinds.known_kinds() else ""
        digest = hashlib.sha256(body).hexdigest()
        log.warning(
            "delivery.quarantined",
            agency=agency,
            mid=claimed_mid,
            kind=claimed_kind,
            body_sha256=digest,
            reason=reason,
        )
        event = AuditEvent(
            events.QUARANTINED,
            "gateway",
            mid=claimed_mid,
            kind=claimed_kind,
            detail={"recipient": agency, "reason": reason, "body_sha256": digest},
        )
        try:
            audit_log.record(self._store, [event])
        except Exception as err:  # the message is dead-lettered all the same; say so
            log.error("delivery.quarantine_unaudited", agency=agency, error=repr(err))
