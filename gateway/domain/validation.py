"""Payload validation: the business rules a message must meet to be accepted.

``validate`` returns every violation found (never stops at the first), each
with a field path below ``payload.`` and a description a clerk can act on.

Rules common to every kind: every field within its size limit
(``gateway.domain.limits``; a payload over a limit is refused for that alone,
before any other rule runs), each ``Subject`` anywhere in the payload that has
a resident ID has a valid one (ISO 7064 MOD 11-2, real birth date), its
birth date and gender agree with the ID, and it carries no pseudonym or age
band (the gateway sets those).

The core's own rules cover the kinds the judicial bureau sends (roster
changes, verification requests, rectification reports, referrals) and the
gateway's alerts. The rules of the kinds an agency sends live in that
agency's adapter (``adapters/<agency>/validation.py``), which adds them with
``register_validator`` when its linkage loads; they are written with the same
toolkit (``Check``, ``payload_rules``). A kind whose adapter is not installed
is checked by the common rules only.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, TypeVar, cast

from google.protobuf.descriptor import EnumDescriptor
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from gateway.domain import kinds, limits
from gateway.domain.calendar import local_date
from gateway.domain.errors import FieldViolation
from gateway.domain.units import Units
from gateway.proto.silian.v1 import payloads_pb2 as pb

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARACTERS = "10X98765432"
_ID_BODY = re.compile(r"[0-9]{17}")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DIVISION_CODE = re.compile(r"[0-9]{6}")
_PATH_PART = re.compile(r"(\w+)(?:\[(\d+)\])?")
_MAX_TIMESTAMP_SECONDS = 253402300799  # 9999-12-31T23:59:59Z
_MIN_TIMESTAMP_SECONDS = -62135596800  # 0001-01-01T00:00:00Z


@dataclass(frozen=True)
class ValidationContext:
    """What rules may consult besides the message: configured units and today's date."""

    units: Units
    today: date


Validator = Callable[[Message, ValidationContext], list[FieldViolation]]
_VALIDATORS: dict[str, list[Validator]] = {}

M = TypeVar("M", bound=Message)


def register_validator(kind: str, fn: Validator) -> None:
    """Add ``fn`` to the rules of ``kind``; all rules registered for a kind run, in
    the order registered. Registering ``fn`` for ``kind`` again has no effect.

    ``fn`` returns violations whose field paths start with ``payload.``.
    """
    rules = _VALIDATORS.setdefault(kind, [])
    if fn not in rules:
        rules.append(fn)


def payload_rules(payload: type[M], rules: Callable[[M, Check], None]) -> Validator:
    """A validator running ``rules`` — which report through ``Check`` — on a payload of
    type ``payload``; TypeError for a payload of another type (a caller bug)."""

    def validator(message: Message, context: ValidationContext) -> list[FieldViolation]:
        if not isinstance(message, payload):
            raise TypeError(f"rules of {payload.__name__} got a {type(message).__name__}")
        check = Check(message, context)
        rules(message, check)
        return check.violations

    return validator


def validate(kind: str, message: Message, *, units: Units, today: date) -> list[FieldViolation]:
    """Every rule violation of ``message`` as a payload of ``kind``; empty if valid.

    TypeError if ``message`` is not the payload type of ``kind`` (a caller bug);
    InvalidMessage(UNKNOWN_KIND) if ``kind`` is not known.
    """
    expected = kinds.payload_type(kind)
    if not isinstance(message, expected):
        raise TypeError(f"{kind} payload must be {expected.__name__}, not {type(message).__name__}")
    oversized = limits.violations(message)
    if oversized:
        return oversized
    context = ValidationContext(units=units, today=today)
    violations = _subject_violations(message, context)
    for rules in _VALIDATORS.get(kind, []):
        violations.extend(rules(message, context))
    return violations


# --- resident identity numbers (居民身份证号) -----------------------------------


def check_character(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character of the first 17 digits of an ID."""
    total = sum(int(digit) * weight for digit, weight in zip(first17, _WEIGHTS, strict=True))
    return _CHECK_CHARACTERS[total % 11]


def canonical_resident_id(value: str) -> str:
    """The form used for pseudonyms and look-ups: a lower-case check ``x`` made upper-case."""
    return value.upper()


def birth_date_of(resident_id: str) -> date | None:
    """The birth date encoded in characters 7–14 of an ID, or None if they are not a date."""
    if len(resident_id) != 18 or not _ID_BODY.fullmatch(resident_id[:17]):
        return None
    return _compact_date(resident_id[6:14])


def resident_id_problem(value: str, *, today: date | None = None) -> str | None:
    """None if ``value`` is a valid resident ID, else the reason it is not.

    Valid: 18 characters, 17 digits then a check character (digit or X, ``x``
    accepted) per ISO 7064 MOD 11-2, and digits 7–14 a real date not after
    ``today`` (default: the system date).
    """
    if len(value) != 18:
        return f"must be 18 characters, got {len(value)}"
    body, check = value[:17], value[17].upper()
    if not _ID_BODY.fullmatch(body):
        return "first 17 characters must be digits"
    if check not in "0123456789X":
        return "last character must be a digit or X"
    compact = value[6:14]
    born = _compact_date(compact)
    if born is None:
        return f"birth date {compact} is not a date"
    if born > (today or date.today()):
        return f"birth date {compact} is in the future"
    expected = check_character(body)
    if check != expected:
        return f"check character should be {expected}"
    return None


def _compact_date(value: str) -> date | None:
    try:
        return date(int(value[:4]), int(value[4:6]), int(value[6:8]))
    except ValueError:
        return None


# --- subjects, wherever they appear ---------------------------------------------


def subjects(message: Message) -> Iterator[tuple[str, pb.Subject]]:
    """Every ``Subject`` set in ``message``, at any depth, with its field path.

    Paths are relative to ``message``: ``subject``, ``subjects[2]``,
    ``outer.subject``. Yielded subjects are the message's own (not copies).
    """
    return _subjects(message, "")


def _subjects(message: Message, prefix: str) -> Iterator[tuple[str, pb.Subject]]:
    for path, child in child_messages(message, prefix):
        if isinstance(child, pb.Subject):
            yield path, child
        else:
            yield from _subjects(child, f"{path}.")


def child_messages(message: Message, prefix: str = "") -> Iterator[tuple[str, Message]]:
    """The message-typed values set directly in ``message`` (singular, repeated and
    map values), each with its path (``prefix`` + ``name``, ``name[i]`` or ``name['key']``)."""
    for descriptor, value in message.ListFields():
        if descriptor.message_type is None:
            continue
        name = f"{prefix}{descriptor.name}"
        if descriptor.message_type.GetOptions().map_entry:
            if descriptor.message_type.fields_by_name["value"].message_type is not None:
                yield from ((f"{name}[{key!r}]", value[key]) for key in sorted(value))
        elif descriptor.is_repeated:
            yield from ((f"{name}[{index}]", item) for index, item in enumerate(value))
        else:
            yield name, value


def _subject_violations(message: Message, context: ValidationContext) -> list[FieldViolation]:
    check = Check(message, context)
    for path, subject in subjects(message):
        _check_subject(check, path, subject)
    return check.violations


def _check_subject(check: Check, path: str, subject: pb.Subject) -> None:
    for gateway_field in ("pseudonym", "age_band"):
        if getattr(subject, gateway_field):
            check.fail(f"{path}.{gateway_field}", "is set by the gateway; leave it empty")
    check.enum_value(f"{path}.gender", pb.Gender.DESCRIPTOR, subject.gender, required=False)
    born = check.date_value(f"{path}.birth_date", subject.birth_date, not_future=True)
    if not subject.resident_id:
        return
    problem = resident_id_problem(subject.resident_id, today=check.context.today)
    if problem:
        check.fail(f"{path}.resident_id", problem)
        return
    id_born = birth_date_of(subject.resident_id)
    if born is not None and born != id_born:
        check.fail(f"{path}.birth_date", f"does not match the resident ID's birth date {id_born}")
    id_gender = pb.GENDER_MALE if int(subject.resident_id[16]) % 2 else pb.GENDER_FEMALE
    if subject.gender in (pb.GENDER_MALE, pb.GENDER_FEMALE) and subject.gender != id_gender:
        check.fail(
            f"{path}.gender", f"does not match the resident ID ({pb.Gender.Name(id_gender)})"
        )


# --- the rule-writing toolkit ---------------------------------------------------


@dataclass
class Check:
    """Collects the violations of one payload; paths are relative to the payload
    (``subjects[2].resident_id``), the reported paths start with ``payload.``."""

    message: Message
    context: ValidationContext
    violations: list[FieldViolation] = field(default_factory=list)

    def fail(self, path: str, description: str) -> None:
        self.violations.append(FieldViolation(f"payload.{path}", description))

    def required(self, *paths: str, because: str = "") -> None:
        """Each string at ``paths`` must be non-blank."""
        for path in paths:
            if not _resolve(self.message, path)[2].strip():
                self.fail(path, f"is required{because}")

    def enum(self, *paths: str, required: bool = True, because: str = "") -> None:
        """Each enum at ``paths`` must be a known value; not the zero value if ``required``."""
        for path in paths:
            parent, name, number = _resolve(self.message, path)
            enum_type = _enum_type(parent, name)
            self.enum_value(path, enum_type, number, required=required, because=because)

    def enum_list(self, path: str) -> None:
        """The repeated enum at ``path`` must list one or more distinct, known, non-zero values."""
        parent, name, numbers = _resolve(self.message, path)
        enum_type = _enum_type(parent, name)
        if not numbers:
            self.fail(path, "must list at least one value")
        for index, number in enumerate(numbers):
            self.enum_value(f"{path}[{index}]", enum_type, number, required=True)
        self.unique(path, numbers)

    def enum_value(
        self,
        path: str,
        enum_type: EnumDescriptor,
        number: int,
        *,
        required: bool,
        because: str = "",
    ) -> None:
        if number == 0:
            if required:
                self.fail(path, f"is required{because} (must not be {enum_type.values[0].name})")
        elif number not in enum_type.values_by_number:
            self.fail(path, f"{number} is not a known {enum_type.name}")

    def iso_date(
        self, path: str, *, required: bool = False, not_future: bool = False, because: str = ""
    ) -> date | None:
        """The date at ``path`` if it is a real ``YYYY-MM-DD`` date, else None (and a violation)."""
        value = _resolve(self.message, path)[2]
        return self.date_value(
            path, value, required=required, not_future=not_future, because=because
        )

    def date_value(
        self,
        path: str,
        value: str,
        *,
        required: bool = False,
        not_future: bool = False,
        because: str = "",
    ) -> date | None:
        """``value`` (found at ``path``) as a date; None, with a violation, if it is not one."""
        if not value:
            if required:
                self.fail(path, f"is required{because}")
            return None
        if not _ISO_DATE.fullmatch(value):
            self.fail(path, f"must be a date in the form YYYY-MM-DD, got {value!r}")
            return None
        try:
            parsed = date.fromisoformat(value)
        except ValueError:
            self.fail(path, f"{value} is not a date")
            return None
        if not_future and parsed > self.context.today:
            self.fail(path, f"{value} is in the future")
        return parsed

    def period(self, start_path: str, end_path: str, *, required: bool, because: str = "") -> None:
        """Both dates valid (and present if ``required``); the end not before the start."""
        start = self.iso_date(start_path, required=required, because=because)
        end = self.iso_date(end_path, required=required, because=because)
        self.ordered(start_path, start, end_path, end)

    def ordered(self, start_path: str, start: date | None, end_path: str, end: date | None) -> None:
        if start is not None and end is not None and end < start:
            self.fail(end_path, f"must not be before {start_path} ({start})")

    def timestamp(self, path: str, *, required: bool, not_future: bool = False) -> None:
        parent, name, value = _resolve(self.message, path)
        if not parent.HasField(name):
            if required:
                self.fail(path, "is required")
            return
        moment = _timestamp_datetime(value)
        if moment is None:
            self.fail(path, "is not a valid timestamp")
        elif not_future and local_date(moment) > self.context.today:
            self.fail(path, f"{moment.isoformat()} is in the future")

    def unit(self, path: str = "unit_code") -> None:
        """A configured unit code is required at ``path``."""
        code = _resolve(self.message, path)[2]
        if not code:
            self.fail(path, "is required")
        elif code not in self.context.units:
            self.fail(path, f"{code!r} is not a configured unit code")

    def unique(self, path: str, values: Iterable[Any]) -> None:
        """Report each repetition of a value already listed at ``path``."""
        first: dict[Any, int] = {}
        for index, value in enumerate(values):
            if value in first:
                self.fail(f"{path}[{index}]", f"repeats {path}[{first[value]}]")
            else:
                first[value] = index

    def division_code(self, path: str) -> None:
        """The text at ``path``, if set, must be a 6-digit administrative division code."""
        code = _resolve(self.message, path)[2]
        if code and not _DIVISION_CODE.fullmatch(code):
            self.fail(path, f"must be a 6-digit division code, got {code!r}")

    def distinct_subjects(self, path: str, listed: Iterable[pb.Subject]) -> None:
        """No resident ID may be listed twice among the subjects at ``path``."""
        ids = [
            canonical_resident_id(subject.resident_id) or f"#{i}"
            for i, subject in enumerate(listed)
        ]
        self.unique(path, ids)


def enum_name(enum_type: Any, number: int) -> str:
    """The name of ``number`` in ``enum_type`` (a protobuf enum), or the number itself."""
    return str(enum_type.Name(number)) if number in enum_type.values() else str(number)


def _resolve(message: Message, path: str) -> tuple[Message, str, Any]:
    """(parent message, field name, value) of a path such as ``subjects[2].resident_id``
    or ``needs[1]``."""
    parent: Any = message
    value: Any = message
    name = ""
    for part in path.split("."):
        match = _PATH_PART.fullmatch(part)
        if match is None:
            raise ValueError(f"not a field path: {path!r}")
        parent, name = value, match[1]
        value = getattr(parent, name)
        if match[2] is not None:
            value = value[int(match[2])]
    return parent, name, value


def _enum_type(message: Message, name: str) -> EnumDescriptor:
    enum_type = message.DESCRIPTOR.fields_by_name[name].enum_type
    if enum_type is None:
        raise TypeError(f"{message.DESCRIPTOR.name}.{name} is not an enum field")
    return cast(EnumDescriptor, enum_type)


def _timestamp_datetime(value: Timestamp) -> datetime | None:
    valid = _MIN_TIMESTAMP_SECONDS <= value.seconds <= _MAX_TIMESTAMP_SECONDS
    if not valid or not 0 <= value.nanos < 1_000_000_000:
        return None
    return value.ToDatetime(tzinfo=UTC)


# --- the core's rules, one function per kind ----------------------------------

_LEAVE_CHANGES = frozenset(
    {
        pb.ROSTER_CHANGE_TYPE_LEAVE_GRANTED,
        pb.ROSTER_CHANGE_TYPE_LEAVE_ENDED,
        pb.ROSTER_CHANGE_TYPE_FREQUENT_TRAVEL_APPROVED,
    }
)
_NEEDS_DESTINATION = frozenset(
    {pb.ROSTER_CHANGE_TYPE_LEAVE_GRANTED, pb.ROSTER_CHANGE_TYPE_FREQUENT_TRAVEL_APPROVED}
)
# Sanctions and requests to a court or the police must say why (the
# procuratorate supervises them).
_NEEDS_REASON = frozenset(
    {
        pb.ROSTER_CHANGE_TYPE_REPRIMAND,
        pb.ROSTER_CHANGE_TYPE_WARNING,
        pb.ROSTER_CHANGE_TYPE_PUBLIC_SECURITY_PENALTY_REQUESTED,
        pb.ROSTER_CHANGE_TYPE_REVOCATION_REQUESTED,
        pb.ROSTER_CHANGE_TYPE_IMPRISONMENT_REQUESTED,
        pb.ROSTER_CHANGE_TYPE_SENTENCE_REDUCTION_REQUESTED,
    }
)


def _roster_change(change: pb.RosterChange, check: Check) -> None:
    change_type = change.change_type
    because = f" for {enum_name(pb.RosterChangeType, change_type)}"
    enrolment = change_type == pb.ROSTER_CHANGE_TYPE_ENROLMENT
    check.required("change_id", "subject.resident_id")
    check.enum("change_type")
    check.unit()
    check.iso_date("effective_date", required=True)
    check.enum("category", required=enrolment, because=because)
    check.enum(
        "supervision_level",
        required=change_type == pb.ROSTER_CHANGE_TYPE_SUPERVISION_LEVEL_CHANGED,
        because=because,
    )
    check.period("term_start_date", "term_end_date", required=enrolment, because=because)
    check.period(
        "leave_start_date",
        "leave_end_date",
        required=change_type in _LEAVE_CHANGES,
        because=because,
    )
    if enrolment:
        check.required("subject.name", because=because)
    if change_type in _NEEDS_DESTINATION:
        check.required("destination", because=because)
    if change_type == pb.ROSTER_CHANGE_TYPE_RESIDENCE_CHANGED:
        check.required("subject.address", because=because)
    if change_type in _NEEDS_REASON:
        check.required("reason", because=because)
    if change_type == pb.ROSTER_CHANGE_TYPE_PLACE_OF_EXECUTION_CHANGED:
        _check_new_unit(change, check, because)


def _check_new_unit(change: pb.RosterChange, check: Check, because: str) -> None:
    """The receiving unit: any division code, but a configured unit if inside the city."""
    code = change.new_unit_code
    if not code:
        check.fail("new_unit_code", f"is required{because}")
    elif not _DIVISION_CODE.fullmatch(code):
        check.fail("new_unit_code", f"must be a 6-digit division code, got {code!r}")
    elif code == change.unit_code:
        check.fail("new_unit_code", "must differ from unit_code")
    elif code not in check.context.units and check.context.units.in_region(code):
        check.fail("new_unit_code", f"{code} is inside the city but not a configured unit code")


def _verification_request(request: pb.VerificationRequest, check: Check) -> None:
    check.required("request_id", "reason")
    check.unit()
    if not request.subjects:
        check.fail("subjects", "must name at least one subject")
    for index in range(len(request.subjects)):
        check.required(f"subjects[{index}].resident_id")
    check.distinct_subjects("subjects", request.subjects)
    check.enum_list("check_types")
    check.timestamp("response_deadline", required=False)


def _inspection_rectification(report: pb.InspectionRectification, check: Check) -> None:
    check.required("finding_id", "actions")
    check.unit()
    check.iso_date("reported_date", required=True, not_future=True)
    for index in range(len(report.evidence_refs)):
        check.required(f"evidence_refs[{index}]")


def _service_referral(referral: pb.ServiceReferral, check: Check) -> None:
    check.required("referral_id", "subject.resident_id")
    check.unit()
    check.enum_list("needs")


#: Alerts about a finding or a campaign rather than one person.
_ALERTS_ABOUT_NO_ONE = frozenset({pb.ALERT_TYPE_FINDING_OVERDUE, pb.ALERT_TYPE_CAMPAIGN_UNANSWERED})
#: What a disposition step must say, besides the alert, officer and time.
_STEP_NEEDS: dict[int, tuple[str, ...]] = {
    pb.DISPOSITION_STEP_VERIFICATION_STARTED: ("method",),
    pb.DISPOSITION_STEP_DISPOSED: ("finding", "action"),
}


def _alert_disposition(disposition: pb.AlertDisposition, check: Check) -> None:
    check.required("disposition_id", "alert_id", "officer")
    check.unit()
    check.enum("alert_type", "step")
    check.timestamp("occurred_at", required=True, not_future=True)
    step = disposition.step
    because = f" for {enum_name(pb.DispositionStep, step)}"
    needs = _STEP_NEEDS.get(step, ())
    check.enum(*needs, because=because)
    check.enum(*(p for p in ("method", "finding", "action") if p not in needs), required=False)
    if step == pb.DISPOSITION_STEP_REOPENED:
        check.required("reason", because=because)


def _alert(alert: pb.Alert, check: Check) -> None:
    check.required("alert_id", "description")
    check.unit()
    check.enum("alert_type", "severity")
    check.timestamp("raised_at", required=True, not_future=True)
    if alert.alert_type not in _ALERTS_ABOUT_NO_ONE:
        check.required("subject.resident_id")
    if not alert.evidence_mids:
        check.fail("evidence_mids", "must list at least one message id")
    for index, mid in enumerate(alert.evidence_mids):
        if not _is_uuid(mid):
            check.fail(f"evidence_mids[{index}]", f"must be a message id (UUID), got {mid!r}")


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


register_validator(kinds.ROSTER_CHANGE, payload_rules(pb.RosterChange, _roster_change))
register_validator(
    kinds.VERIFICATION_REQUEST, payload_rules(pb.VerificationRequest, _verification_request)
)
register_validator(
    kinds.INSPECTION_RECTIFICATION,
    payload_rules(pb.InspectionRectification, _inspection_rectification),
)
register_validator(kinds.SERVICE_REFERRAL, payload_rules(pb.ServiceReferral, _service_referral))
register_validator(kinds.ALERT, payload_rules(pb.Alert, _alert))
register_validator(kinds.ALERT_DISPOSITION, payload_rules(pb.AlertDisposition, _alert_disposition))
