"""The payload rules of what the police send: ``verification.result``.

Added to the gateway's validation (``gateway.domain.validation``) when the
police linkage loads; the rules common to every kind (resident IDs, subjects)
run first, as for every kind.

A result names its record id, the person (resident ID), the supervising unit,
a known check type and outcome, and when it was observed — a valid moment not
after today; a place region code, when given, is a 6-digit division code.
"""

from __future__ import annotations

from gateway.domain.kinds import VERIFICATION_RESULT
from gateway.domain.validation import Check, Validator, payload_rules, register_validator
from gateway.proto.silian.v1 import payloads_pb2 as pb


def _verification_result(result: pb.VerificationResult, check: Check) -> None:
    check.required("result_id", "subject.resident_id")
    check.unit()
    check.enum("check_type", "outcome")
    check.timestamp("observed_at", required=True, not_future=True)
    check.division_code("place_region_code")


#: (kind, rule) of every payload rule of this adapter, in the order they run.
RULES: tuple[tuple[str, Validator], ...] = (
    (VERIFICATION_RESULT, payload_rules(pb.VerificationResult, _verification_result)),
)


def register() -> None:
    """Add these rules to the gateway's validation (idempotent)."""
    for kind, rule in RULES:
        register_validator(kind, rule)
