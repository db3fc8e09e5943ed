"""The payload rules of what both partners send: ``service.record``.

Added to the gateway's validation (``gateway.domain.validation``) when the
NGO's or the detox centre's linkage loads (once, however many load).

A record names its id, unit, a known service type, event kind and outcome,
and the day of the service (not after today). The people served are listed
by pseudonym, each once: an individual event (个别) lists exactly one and
counts at most one attendee; a group event (集体) counts at least one
attendee and no fewer than it lists. A duration is at most a day, and
required unless nobody came (SERVICE_OUTCOME_NO_SHOW).
"""

from __future__ import annotations

from gateway.domain.kinds import SERVICE_RECORD
from gateway.domain.validation import Check, Validator, payload_rules, register_validator
from gateway.proto.silian.v1 import payloads_pb2 as pb


def _service_record(record: pb.ServiceRecord, check: Check) -> None:
    check.required("record_id")
    check.unit()
    check.enum("service_type", "event_kind", "outcome")
    check.iso_date("service_date", required=True, not_future=True)
    for index in range(len(record.subject_pseudonyms)):
        check.required(f"subject_pseudonyms[{index}]")
    check.unique("subject_pseudonyms", record.subject_pseudonyms)
    _check_attendance(record, check)
    _check_duration(record, check)


def _check_attendance(record: pb.ServiceRecord, check: Check) -> None:
    listed = len(record.subject_pseudonyms)
    if record.event_kind == pb.EVENT_KIND_GROUP:
        if record.attendance < 1:
            check.fail("attendance", "must be at least 1 for a group event")
        elif record.attendance < listed:
            check.fail("attendance", f"is less than the {listed} subject_pseudonyms listed")
    elif record.event_kind == pb.EVENT_KIND_INDIVIDUAL:
        if listed != 1:
            check.fail(
                "subject_pseudonyms", "must list exactly one subject for an individual event"
            )
        if record.attendance > 1:
            check.fail("attendance", "must be 0 or 1 for an individual event")


def _check_duration(record: pb.ServiceRecord, check: Check) -> None:
    if record.duration_minutes > 24 * 60:
        check.fail("duration_minutes", "must be at most 1440 (one day)")
    elif record.duration_minutes == 0 and record.outcome != pb.SERVICE_OUTCOME_NO_SHOW:
        check.fail("duration_minutes", "is required unless the outcome is SERVICE_OUTCOME_NO_SHOW")


#: (kind, rule) of every payload rule of the partners, in the order they run.
RULES: tuple[tuple[str, Validator], ...] = (
    (SERVICE_RECORD, payload_rules(pb.ServiceRecord, _service_record)),
)


def register() -> None:
    """Add these rules to the gateway's validation (idempotent)."""
    for kind, rule in RULES:
        register_validator(kind, rule)
