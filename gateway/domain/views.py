"""Recipient views (minimization) and route conditions, named in the policy.

A *view* turns a payload into what one recipient may see. Views are built by
allow-list: ``apply_view`` hands the view a new message into which only the
fields the ``.proto`` declares were copied (``declared_copy``: unknown fields,
at any depth, never reach a view), so the sender's message is never changed
and nothing the gateway does not know can pass through.

* ``full`` — the payload as sent (its declared fields).
* ``pseudonymous`` — a new message holding only the fields named in
  ``PSEUDONYMOUS_KEPT_FIELDS`` (at any depth), in which every ``Subject`` is
  one that holds only the recipient's pseudonym of the resident ID and a
  10-year age band. A field added to the ``.proto`` is therefore not shown to
  partners until it is listed; a unit test fails when a kept field is free
  text not known to be safe.

A *condition* decides whether a route applies to one message for one
recipient. The service layer evaluates ``CONDITIONS[route.when](message, ctx)``
on the sender's payload before applying the route's view; a message whose
condition is false is not routed to that recipient.

* ``referred`` — the message names at least one subject, and every subject it
  names has been referred to the recipient (``ViewContext.is_referred``).
* ``drug_related`` / ``not_drug_related`` — the payload's ``drug_related`` flag
  (roster.change, service.referral).
* ``supervision_relevant`` — an alert the procuratorate supervises: a new
  offence, a finding past its rectification deadline, an alert not disposed
  in time or a disposition's roster change missing; and the dispositions of
  such alerts, or of any alert found to be absconding or an offence, or
  answered with a request for a penalty or a revocation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import date
from typing import Any, Protocol, TypeVar

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from gateway.domain import kinds
from gateway.domain.fields import RECORD_IDS, UNIT_CODES_AND_DATES
from gateway.domain.validation import birth_date_of, canonical_resident_id, subjects
from gateway.proto.silian.v1 import payloads_pb2 as pb


class ViewContext(Protocol):
    """What views and conditions need to know about the recipient, supplied by the caller."""

    @property
    def recipient(self) -> str:
        """Principal id of the recipient."""
        ...

    @property
    def today(self) -> date:
        """The date ages are computed at."""
        ...

    def pseudonym(self, resident_id: str) -> str:
        """The recipient's pseudonym of an upper-case resident ID (HMAC, key per recipient)."""
        ...

    def is_referred(self, resident_id: str) -> bool:
        """Whether the subject with this upper-case resident ID was referred to the recipient."""
        ...

    def resolve_pseudonyms(self, pseudonyms: Sequence[str]) -> dict[str, str]:
        """The resident ID behind each of ``pseudonyms`` the gateway issued (to any
        partner), looked up at once; pseudonyms it never issued are left out."""
        ...


View = Callable[[Message, ViewContext], Message]
Condition = Callable[[Message, ViewContext], bool]

VIEWS: dict[str, View] = {}
CONDITIONS: dict[str, Condition] = {}
_CONDITION_KINDS: dict[str, frozenset[str] | None] = {}
F = TypeVar("F", View, Condition)

M = TypeVar("M", bound=Message)

#: The fields of silian.v1 payloads a pseudonymous view keeps, wherever they appear:
#: ids, codes, dates, enums and flags — never free text, places or identity
#: (people appear only as ``Subject`` pseudonyms and age bands).
PSEUDONYMOUS_KEPT_FIELDS = frozenset(
    {
        # ids and references
        *RECORD_IDS,
        "evidence_mids",
        "subject_pseudonyms",
        "provider",
        # units and dates
        *UNIT_CODES_AND_DATES,
        "raised_at",
        "observed_at",
        "response_deadline",
        # facts as enums, flags and counts
        "change_type",
        "category",
        "supervision_level",
        "drug_related",
        "check_types",
        "check_type",
        "outcome",
        "severity",
        "decision",
        "needs",
        "service_type",
        "event_kind",
        "duration_minutes",
        "attendance",
        "alert_type",
        "action",  # ServiceReferral: refer or close
        # people, minimized
        "subject",
        "subjects",
    }
)
_PAYLOAD_PACKAGE = "silian.v1"


def register_view(name: str, fn: View) -> None:
    """Make view ``name`` available to policies.

    ``fn`` receives a private copy of the payload, which it may modify, and
    returns the recipient's view. ValueError if ``name`` is taken by another view.
    """
    _register(VIEWS, "view", name, fn)


def apply_view(name: str, message: Message, ctx: ViewContext) -> Message:
    """The view ``name`` of ``message`` for ``ctx.recipient``; ``message`` is not changed.

    ValueError if no view ``name`` is registered.
    """
    view = VIEWS.get(name)
    if view is None:
        raise ValueError(f"unknown view {name!r}")
    return view(declared_copy(message), ctx)


def declared_copy(message: M) -> M:
    """A new message holding the fields of ``message`` its type declares, at any
    depth; unknown fields (a newer ``.proto``, or smuggled bytes) are left behind.
    (protobuf's C copy, then its recursive discard of unknown fields: fifty
    times cheaper than ``copy_fields``, on the path of every full view.)"""
    copy = type(message)()
    copy.CopyFrom(message)
    copy.DiscardUnknownFields()
    return copy


def copy_fields(
    message: M,
    keep: Callable[[FieldDescriptor], bool],
    replace: Callable[[Message], Message | None] = lambda part: None,
) -> M:
    """A new message of ``message``'s type with the declared fields ``keep``
    accepts, at any depth. ``replace(part)`` may return the value to put in place
    of a nested message ``part`` (None: copy it the same way)."""
    target = type(message)()
    for field, value in message.ListFields():
        if not keep(field):
            continue
        slot = getattr(target, field.name)
        if field.message_type is None:
            if field.is_repeated:
                slot.extend(value)
            else:
                setattr(target, field.name, value)
        elif field.message_type.GetOptions().map_entry:
            _copy_map(slot, value, field.message_type, keep, replace)
        elif field.is_repeated:
            for item in value:
                slot.add().MergeFrom(_nested(item, keep, replace))
        else:
            slot.SetInParent()
            slot.MergeFrom(_nested(value, keep, replace))
    return target


def _nested(
    part: Message,
    keep: Callable[[FieldDescriptor], bool],
    replace: Callable[[Message], Message | None],
) -> Message:
    replaced = replace(part)
    return replaced if replaced is not None else copy_fields(part, keep, replace)


def _copy_map(
    target: Any,
    entries: Any,
    entry: Any,
    keep: Callable[[FieldDescriptor], bool],
    replace: Callable[[Message], Message | None],
) -> None:
    if entry.fields_by_name["value"].message_type is None:
        target.update(entries)
        return
    for key in entries:
        target[key].MergeFrom(_nested(entries[key], keep, replace))


def containing_type(field: FieldDescriptor) -> str:
    """The full name of the message type declaring ``field``."""
    return field.containing_type.full_name if field.containing_type is not None else ""


def register_condition(name: str, fn: Condition, *, for_kinds: Iterable[str] | None = None) -> None:
    """Make condition ``name`` available to routes of ``for_kinds`` (None: any kind).

    ValueError if ``name`` is taken by another condition.
    """
    _register(CONDITIONS, "condition", name, fn)
    _CONDITION_KINDS[name] = None if for_kinds is None else frozenset(for_kinds)


def condition_applies_to(name: str, kind: str) -> bool:
    """Whether condition ``name`` is registered and meaningful for messages of ``kind``."""
    if name not in CONDITIONS:
        return False
    applicable = _CONDITION_KINDS[name]
    return applicable is None or kind in applicable


def _register(registry: dict[str, F], what: str, name: str, fn: F) -> None:
    existing = registry.get(name)
    if existing is not None and existing is not fn:
        raise ValueError(f"{what} {name!r} is already registered")
    registry[name] = fn


def age_band(resident_id: str, today: date) -> str:
    """The 10-year age band ("30-39") at ``today`` of the ID's birth date; "" if unknown."""
    born = birth_date_of(resident_id)
    if born is None or born > today:
        return ""
    age = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    low = age // 10 * 10
    return f"{low}-{low + 9}"


def _full(message: Message, ctx: ViewContext) -> Message:
    return message


def _pseudonymous(message: Message, ctx: ViewContext) -> Message:
    def replace(part: Message) -> Message | None:
        return _minimized_subject(part, ctx) if isinstance(part, pb.Subject) else None

    return copy_fields(message, pseudonymous_keeps, replace)


def pseudonymous_keeps(field: FieldDescriptor) -> bool:
    """Whether the pseudonymous view keeps ``field`` (fields of messages outside
    the payload package, such as Timestamp's, are kept whole)."""
    in_payloads = containing_type(field).startswith(f"{_PAYLOAD_PACKAGE}.")
    return not in_payloads or field.name in PSEUDONYMOUS_KEPT_FIELDS


def _minimized_subject(subject: pb.Subject, ctx: ViewContext) -> pb.Subject:
    resident_id = canonical_resident_id(subject.resident_id)
    pseudonym = ctx.pseudonym(resident_id) if resident_id else ""
    return pb.Subject(pseudonym=pseudonym, age_band=age_band(resident_id, ctx.today))


def _referred(message: Message, ctx: ViewContext) -> bool:
    ids = [canonical_resident_id(subject.resident_id) for _, subject in subjects(message)]
    return bool(ids) and all(resident_id and ctx.is_referred(resident_id) for resident_id in ids)


def _drug_related(message: Message, ctx: ViewContext) -> bool:
    return isinstance(message, pb.RosterChange | pb.ServiceReferral) and message.drug_related


def _not_drug_related(message: Message, ctx: ViewContext) -> bool:
    return isinstance(message, pb.RosterChange | pb.ServiceReferral) and not message.drug_related


_SUPERVISION_RELEVANT_ALERTS = frozenset(
    {
        pb.ALERT_TYPE_NEW_OFFENCE,
        pb.ALERT_TYPE_FINDING_OVERDUE,
        pb.ALERT_TYPE_DISPOSAL_OVERDUE,
        pb.ALERT_TYPE_ROSTER_CHANGE_MISSING,
    }
)
#: Dispositions the procuratorate supervises whatever the alert: absconding or an
#: offence confirmed, a penalty or a revocation requested.
_SUPERVISION_RELEVANT_FINDINGS = frozenset(
    {pb.DISPOSITION_FINDING_ABSCONDING_CONFIRMED, pb.DISPOSITION_FINDING_OFFENCE_CONFIRMED}
)
_SUPERVISION_RELEVANT_ACTIONS = frozenset(
    {pb.DISPOSITION_ACTION_PENALTY_REQUESTED, pb.DISPOSITION_ACTION_REVOCATION_REQUESTED}
)


def _supervision_relevant(message: Message, ctx: ViewContext) -> bool:
    if isinstance(message, pb.AlertDisposition):
        return (
            message.alert_type in _SUPERVISION_RELEVANT_ALERTS
            or message.finding in _SUPERVISION_RELEVANT_FINDINGS
            or message.action in _SUPERVISION_RELEVANT_ACTIONS
        )
    return isinstance(message, pb.Alert) and message.alert_type in _SUPERVISION_RELEVANT_ALERTS


register_view("full", _full)
register_view("pseudonymous", _pseudonymous)
register_condition("referred", _referred)
_FLAGGED_KINDS = (kinds.ROSTER_CHANGE, kinds.SERVICE_REFERRAL)
register_condition("drug_related", _drug_related, for_kinds=_FLAGGED_KINDS)
register_condition("not_drug_related", _not_drug_related, for_kinds=_FLAGGED_KINDS)
register_condition(
    "supervision_relevant",
    _supervision_relevant,
    for_kinds=[kinds.ALERT, kinds.ALERT_DISPOSITION],
)
