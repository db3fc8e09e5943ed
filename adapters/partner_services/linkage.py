"""Gateway-side rules for a partner agency's service records (帮扶服务记录).

For every ``service.record`` its agency sends, inside the transaction that
stores it:

* every pseudonym in ``subject_pseudonyms`` must be one the gateway issued to
  this agency for a person referred to it; otherwise the record is refused
  with NOT_FOUND (``UNKNOWN_PSEUDONYM``), naming each offending entry — a
  partner cannot report on people it was not given, nor guess pseudonyms of
  the other partner (their keys differ);
* a record id (记录编号) is submitted once: the same ``record_id`` in another
  message is refused with ALREADY_EXISTS (``RECORD_EXISTS``), so the bureau's
  counts of sessions are not inflated by a file imported twice with another
  tool. (The connectors derive the message id from the record id, so a
  re-import returns the original receipts instead.)

The linkage keeps, per record id, the message id and service date. It raises
no alerts and has no time-driven rules.
"""

from __future__ import annotations

from gateway.domain.errors import Conflict, FieldViolation, NotFound
from gateway.domain.kinds import SERVICE_RECORD
from gateway.domain.linkage import Accepted, AlertDraft, LinkageContext
from gateway.proto.silian.v1 import payloads_pb2 as pb


class PartnerServiceLinkage:
    """The service-record rules of one partner agency; ``name`` is its principal id."""

    kinds = frozenset({SERVICE_RECORD})

    def __init__(self, agency: str) -> None:
        self.name = agency

    def on_accepted(self, accepted: Accepted, ctx: LinkageContext) -> list[AlertDraft]:
        """Refuse a record of this agency naming an unknown pseudonym or a known record id."""
        record = accepted.message
        if accepted.sender != self.name or not isinstance(record, pb.ServiceRecord):
            return []
        self._check_people(record, ctx)
        key = f"record/{record.record_id}"
        earlier = ctx.get(key)
        if earlier is not None and earlier["mid"] != accepted.mid:
            raise Conflict(
                "RECORD_EXISTS",
                f"record {record.record_id!r} was already submitted in message {earlier['mid']}",
                [FieldViolation("payload.record_id", "already submitted in another message")],
            )
        ctx.put(key, {"mid": accepted.mid, "service_date": record.service_date})
        return []

    def _check_people(self, record: pb.ServiceRecord, ctx: LinkageContext) -> None:
        referred = ctx.referred_among(self.name, list(record.subject_pseudonyms))
        unknown = [
            FieldViolation(
                f"payload.subject_pseudonyms[{index}]",
                f"{pseudonym} is not the pseudonym of a person referred to {self.name}",
            )
            for index, pseudonym in enumerate(record.subject_pseudonyms)
            if pseudonym not in referred
        ]
        if unknown:
            raise NotFound(
                "UNKNOWN_PSEUDONYM",
                f"record {record.record_id!r} names people never referred to {self.name}",
                unknown,
            )

    def sweep(self, ctx: LinkageContext) -> list[AlertDraft]:
        """No time-driven rules."""
        return []
