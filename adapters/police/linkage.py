"""The police linkage's rules, run by the gateway (entry point ``silian.linkages``).

On ``roster.change`` it keeps the roster (``adapters.police.roster``). On
``verification.result`` it refuses a result about someone not on the roster on
the day observed (NOT_FOUND, reason SUBJECT_NOT_ON_ROSTER), records successful
checks, and raises alerts whose evidence is the result's message id:

- OUT_OF_BOUNDS (越界, high): a hit whose place code lies outside the city with
  no approved absence covering that day (China Standard Time);
- NEW_OFFENCE (urgent): a hit of a new offence, detention or arrest record;
- DEVICE_SEPARATION (人机分离, high): a device–person separation hit.

A "hit" is outcome HIT; a successful check is outcome HIT or NO_HIT (ANOMALY:
the check itself failed, e.g. an unanswered video roll-call). The sweep raises
POSSIBLE_ABSCONDING (possible 脱管, high) once per silence for a person on the
roster, not known to have absconded, without a successful check for
``silence_days`` days (env ``SILIAN_POLICE_SILENCE_DAYS``, default 7), counted
from the later of the last successful check and the enrolment (or the end of
an absconding); its evidence is that message.

Importing this module (as the entry point does) adds the police's payload
rules (``adapters.police.validation``) to the gateway's.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import date, datetime, timedelta

from adapters.police import AGENCY, validation
from adapters.police.labels import CHECK_TYPES
from adapters.police.roster import Supervised
from gateway.domain.calendar import BUREAU_TIME
from gateway.domain.errors import FieldViolation, NotFound
from gateway.domain.kinds import ROSTER_CHANGE, VERIFICATION_RESULT
from gateway.domain.linkage import Accepted, AlertDraft, LinkageContext
from gateway.proto.silian.v1 import payloads_pb2 as pb

DEFAULT_SILENCE_DAYS = 7
SILENCE_DAYS_ENV = "SILIAN_POLICE_SILENCE_DAYS"
_NEW_OFFENCE_CHECKS = frozenset(
    {pb.CHECK_TYPE_NEW_OFFENCE, pb.CHECK_TYPE_DETENTION, pb.CHECK_TYPE_ARREST}
)
_SUCCESSFUL = frozenset({pb.CHECK_OUTCOME_HIT, pb.CHECK_OUTCOME_NO_HIT})
_PREFIX = "subject:"

validation.register()


def silence_days_from_env() -> int:
    """``SILIAN_POLICE_SILENCE_DAYS`` (default 7); ValueError unless a positive integer."""
    text = os.environ.get(SILENCE_DAYS_ENV, str(DEFAULT_SILENCE_DAYS))
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"{SILENCE_DAYS_ENV} must be a whole number of days ≥ 1, got {text!r}")
    return int(text)


class PoliceLinkage:
    """Roster tracking, verification-result rules and the silence sweep."""

    name = AGENCY
    kinds = frozenset({ROSTER_CHANGE, VERIFICATION_RESULT})

    def __init__(self, silence_days: int | None = None) -> None:
        days = silence_days if silence_days is not None else silence_days_from_env()
        self.silence = timedelta(days=days)

    def on_accepted(self, accepted: Accepted, ctx: LinkageContext) -> list[AlertDraft]:
        if isinstance(accepted.message, pb.RosterChange):
            _track(accepted.message, accepted, ctx)
            return []
        if isinstance(accepted.message, pb.VerificationResult):
            return _check(accepted.message, accepted.mid, ctx)
        return []

    def state_keys(self, accepted: Accepted, subject_key: Callable[[str], str]) -> list[str]:
        """The roster entry ``on_accepted`` reads, so a batch reads them in one query."""
        subject = getattr(accepted.message, "subject", None)
        if subject is None or not subject.resident_id:
            return []
        return [_state_key(subject_key, subject.resident_id)]

    def sweep(self, ctx: LinkageContext) -> list[AlertDraft]:
        today = ctx.today
        drafts = []
        for key, value in ctx.items(_PREFIX):
            person = Supervised.from_state(value)
            since, evidence = person.silence()
            if (
                not person.on_roster(today)
                or person.absconded
                or ctx.now - since < self.silence
                or person.silence_alerted_for == since.isoformat()
            ):
                continue
            person.silence_alerted_for = since.isoformat()
            ctx.put(key, person.to_state())
            drafts.append(_silence_alert(person, since, evidence, ctx.now))
        return drafts


def _state_key(subject_key: Callable[[str], str], resident_id: str) -> str:
    return _PREFIX + subject_key(resident_id.upper())


def _track(change: pb.RosterChange, accepted: Accepted, ctx: LinkageContext) -> None:
    key = _state_key(ctx.subject_key, change.subject.resident_id)
    value = ctx.get(key)
    person = Supervised.from_state(value) if value else None
    if change.change_type == pb.ROSTER_CHANGE_TYPE_ENROLMENT:
        if person is None or person.left_on:
            person = Supervised.enrol(change, accepted.mid, accepted.accepted_at)
        else:
            person.unit_code = change.unit_code
    elif person is None:
        return  # not enrolled through the gateway: nothing to track
    else:
        person.apply(change, accepted.mid, accepted.accepted_at, ctx.units)
    ctx.put(key, person.to_state())


def _check(result: pb.VerificationResult, mid: str, ctx: LinkageContext) -> list[AlertDraft]:
    observed_at = result.observed_at.ToDatetime(tzinfo=BUREAU_TIME)
    day = observed_at.date()
    key = _state_key(ctx.subject_key, result.subject.resident_id)
    value = ctx.get(key)
    person = Supervised.from_state(value) if value else None
    if person is None or not person.on_roster(day):
        raise NotFound(
            "SUBJECT_NOT_ON_ROSTER",
            f"no one with this resident ID was under community corrections on {day}",
            [
                FieldViolation(
                    "payload.subject.resident_id",
                    f"is not on the roster on {day} (never enrolled, or released)",
                )
            ],
        )
    if result.outcome in _SUCCESSFUL:
        person.checked(observed_at, mid)
        ctx.put(key, person.to_state())
    if result.outcome != pb.CHECK_OUTCOME_HIT:
        return []
    return [
        draft
        for draft in (
            _out_of_bounds(result, person, day, mid, ctx),
            _new_offence(result, person, mid),
            _device_separation(result, person, mid),
        )
        if draft is not None
    ]


def _alert(
    alert_type: int, severity: int, person: Supervised, description: str, evidence: list[str]
) -> AlertDraft:
    return AlertDraft(
        alert_type=alert_type,
        severity=severity,
        unit_code=person.unit_code,
        description=description,
        evidence_mids=evidence,
        subject=pb.Subject(resident_id=person.resident_id, name=person.name),
    )


def _hit_text(result: pb.VerificationResult) -> str:
    observed = result.observed_at.ToDatetime(tzinfo=BUREAU_TIME).strftime("%Y-%m-%d %H:%M")
    text = f"{CHECK_TYPES.label(result.check_type)} hit at {observed}"
    if result.place:
        text += f", {result.place}"
    if result.place_region_code:
        text += f" ({result.place_region_code})"
    if result.police_reference:
        text += f"; police reference {result.police_reference}"
    return text


def _out_of_bounds(
    result: pb.VerificationResult, person: Supervised, day: date, mid: str, ctx: LinkageContext
) -> AlertDraft | None:
    code = result.place_region_code
    if not code or ctx.units.in_region(code) or person.absence_covering(day):
        return None
    return _alert(
        pb.ALERT_TYPE_OUT_OF_BOUNDS,
        pb.SEVERITY_HIGH,
        person,
        f"越界 out of bounds: {_hit_text(result)} — outside the city, "
        f"with no approved leave covering {day}",
        [mid],
    )


def _new_offence(result: pb.VerificationResult, person: Supervised, mid: str) -> AlertDraft | None:
    if result.check_type not in _NEW_OFFENCE_CHECKS:
        return None
    return _alert(
        pb.ALERT_TYPE_NEW_OFFENCE,
        pb.SEVERITY_URGENT,
        person,
        f"new offence record: {_hit_text(result)}",
        [mid],
    )


def _device_separation(
    result: pb.VerificationResult, person: Supervised, mid: str
) -> AlertDraft | None:
    if result.check_type != pb.CHECK_TYPE_DEVICE_SEPARATION:
        return None
    return _alert(
        pb.ALERT_TYPE_DEVICE_SEPARATION,
        pb.SEVERITY_HIGH,
        person,
        f"人机分离 device–person separation: {_hit_text(result)}",
        [mid],
    )


def _silence_alert(person: Supervised, since: datetime, evidence: str, now: datetime) -> AlertDraft:
    days = (now - since).days
    since_text = since.astimezone(BUREAU_TIME).strftime("%Y-%m-%d %H:%M")
    return _alert(
        pb.ALERT_TYPE_POSSIBLE_ABSCONDING,
        pb.SEVERITY_HIGH,
        person,
        f"possible 脱管: no successful police check for {days} days (since {since_text})",
        [evidence],
    )
