"""The payload rules of what the procuratorate sends — ``inspection.finding`` and
``inspection.closure`` — and the length of a finding id in every message of the
finding lifecycle (the bureau's ``inspection.rectification`` too: the linkage
keys a finding's state by it).

Added to the gateway's validation (``gateway.domain.validation``) when the
procuratorate linkage loads, after the core's own rules of those kinds.

- A finding names its inspection, id, unit, a known category and severity,
  the finding itself and the day issued (not after today); a correction of a
  violation (纠正违法) its legal basis; a written finding (检察建议, 纠正违法) a
  rectification deadline, not before the day issued. People concerned are
  named by resident ID, each once.
- A closure names the finding, unit, decision and day decided (not after
  today); a reopening (重新整改) says why.
- A finding id is at most ``MAX_FINDING_ID`` characters.
"""

from __future__ import annotations

from google.protobuf.message import Message

from gateway.domain.errors import FieldViolation
from gateway.domain.kinds import INSPECTION_CLOSURE, INSPECTION_FINDING, INSPECTION_RECTIFICATION
from gateway.domain.validation import (
    Check,
    ValidationContext,
    Validator,
    enum_name,
    payload_rules,
    register_validator,
)
from gateway.proto.silian.v1 import payloads_pb2 as pb

MAX_FINDING_ID = 128
# Written findings (检察建议, 纠正违法) set a deadline; an oral correction need not.
_WRITTEN_FINDINGS = frozenset(
    {pb.FINDING_CATEGORY_PROCURATORIAL_SUGGESTION, pb.FINDING_CATEGORY_CORRECTION_OF_VIOLATION}
)


def _inspection_finding(finding: pb.InspectionFinding, check: Check) -> None:
    category = finding.category
    because = f" for {enum_name(pb.FindingCategory, category)}"
    check.required("inspection_id", "finding_id", "finding")
    check.unit()
    check.enum("category", "severity")
    if category == pb.FINDING_CATEGORY_CORRECTION_OF_VIOLATION:
        check.required("legal_basis", because=because)
    issued = check.iso_date("issued_date", required=True, not_future=True)
    deadline = check.iso_date(
        "rectification_deadline", required=category in _WRITTEN_FINDINGS, because=because
    )
    check.ordered("issued_date", issued, "rectification_deadline", deadline)
    for index in range(len(finding.subjects)):
        check.required(f"subjects[{index}].resident_id")
    check.distinct_subjects("subjects", finding.subjects)


def _inspection_closure(closure: pb.InspectionClosure, check: Check) -> None:
    check.required("finding_id")
    check.unit()
    check.enum("decision")
    check.iso_date("decided_date", required=True, not_future=True)
    if closure.decision == pb.CLOSURE_DECISION_REOPENED:
        check.required("reason", because=" to reopen a finding")


def _finding_id_length(message: Message, context: ValidationContext) -> list[FieldViolation]:
    finding_id = str(getattr(message, "finding_id", ""))
    if len(finding_id) <= MAX_FINDING_ID:
        return []
    return [FieldViolation("payload.finding_id", f"must be at most {MAX_FINDING_ID} characters")]


#: (kind, rule) of every payload rule of this adapter, in the order they run.
RULES: tuple[tuple[str, Validator], ...] = (
    (INSPECTION_FINDING, payload_rules(pb.InspectionFinding, _inspection_finding)),
    (INSPECTION_CLOSURE, payload_rules(pb.InspectionClosure, _inspection_closure)),
    (INSPECTION_FINDING, _finding_id_length),
    (INSPECTION_RECTIFICATION, _finding_id_length),
    (INSPECTION_CLOSURE, _finding_id_length),
)


def register() -> None:
    """Add these rules to the gateway's validation (idempotent)."""
    for kind, rule in RULES:
        register_validator(kind, rule)
