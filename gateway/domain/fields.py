"""Field names of silian.v1 payloads grouped by what they hold, for the rules
that treat a group alike wherever it appears: the size limits
(``gateway.domain.limits``) and the pseudonymous views' allow-list
(``gateway.domain.views``)."""

from __future__ import annotations

#: The ids of the records agencies exchange (a change, request, result …).
RECORD_IDS = (
    "change_id",
    "request_id",
    "result_id",
    "inspection_id",
    "finding_id",
    "referral_id",
    "record_id",
    "alert_id",
)

#: Unit codes and ISO dates of events (not of people: a birth date is identity).
UNIT_CODES_AND_DATES = (
    "unit_code",
    "new_unit_code",
    "effective_date",
    "term_start_date",
    "term_end_date",
    "leave_start_date",
    "leave_end_date",
    "issued_date",
    "rectification_deadline",
    "reported_date",
    "decided_date",
    "service_date",
)
