"""Recipient views (minimization) and route conditions, named in the policy.

A *view* turns a payload into what one recipient may see. ``apply_view``
hands the view a private copy, so the sender's message is never changed.

* ``full`` — the payload as sent.
* ``pseudonymous`` — every ``Subject`` (at any depth) is replaced by one that
  holds only the recipient's pseudonym of the resident ID and a 10-year age
  band; and every field named in ``PSEUDONYMOUS_CLEARED_FIELDS`` is cleared
  wherever it appears. The list is a deny-list of free text and identifying
  details; a unit test fails when a payload gains a string field that is in
  neither this list nor the test's list of fields known to be safe.

A *condition* decides whether a route applies to one message for one
recipient. The service layer evaluates ``CONDITIONS[route.when](message, ctx)``
on the sender's payload before applying the route's view; a message whose
condition is false is not routed to that recipient.

* ``referred`` — the message names at least one subject, and every subject it
  names has been referred to the recipient (``ViewContext.is_referred``).
* ``drug_related`` / ``not_drug_related`` — the payload's ``drug_related`` flag
  (roster.change, service.referral).
* ``supervision_relevant`` — an alert the procuratorate supervises: a new
  offence or a finding past its rectification deadline.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import date
from typing import Protocol, TypeVar

from google.protobuf.message import Message

from gateway.domain import kinds
from gateway.domain.validation import birth_date_of, canonical_resident_id, child_messages, subjects
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

    def resolve_pseudonym(self, pseudonym: str) -> str | None:
        """The resident ID behind a pseudonym the gateway issued (to any partner), if any."""
        ...


View = Callable[[Message, ViewContext], Message]
Condition = Callable[[Message, ViewContext], bool]

VIEWS: dict[str, View] = {}
CONDITIONS: dict[str, Condition] = {}
_CONDITION_KINDS: dict[str, frozenset[str] | None] = {}
F = TypeVar("F", View, Condition)

PSEUDONYMOUS_CLEARED_FIELDS = frozenset(
    {
        "offence",
        "address",
        "notes",
        "reason",
        "officer",
        "destination",
        "details",
        "place",
        "place_region_code",
        "police_reference",
        "finding",
        "legal_basis",
        "recommendation",
        "actions",
        "evidence_refs",
        "description",
    }
)


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
    copy = type(message)()
    copy.CopyFrom(message)
    return view(copy, ctx)


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
    for _, subject in subjects(message):
        _minimize_subject(subject, ctx)
    for part in _with_descendants(message):
        for name in PSEUDONYMOUS_CLEARED_FIELDS.intersection(part.DESCRIPTOR.fields_by_name):
            part.ClearField(name)
    return message


def _minimize_subject(subject: pb.Subject, ctx: ViewContext) -> None:
    resident_id = canonical_resident_id(subject.resident_id)
    pseudonym = ctx.pseudonym(resident_id) if resident_id else ""
    band = age_band(resident_id, ctx.today)
    subject.Clear()
    subject.pseudonym = pseudonym
    subject.age_band = band


def _with_descendants(message: Message) -> Iterator[Message]:
    yield message
    for _, child in child_messages(message):
        yield from _with_descendants(child)


def _referred(message: Message, ctx: ViewContext) -> bool:
    ids = [canonical_resident_id(subject.resident_id) for _, subject in subjects(message)]
    return bool(ids) and all(resident_id and ctx.is_referred(resident_id) for resident_id in ids)


def _drug_related(message: Message, ctx: ViewContext) -> bool:
    return isinstance(message, pb.RosterChange | pb.ServiceReferral) and message.drug_related


def _not_drug_related(message: Message, ctx: ViewContext) -> bool:
    return isinstance(message, pb.RosterChange | pb.ServiceReferral) and not message.drug_related


_SUPERVISION_RELEVANT_ALERTS = frozenset({pb.ALERT_TYPE_NEW_OFFENCE, pb.ALERT_TYPE_FINDING_OVERDUE})


def _supervision_relevant(message: Message, ctx: ViewContext) -> bool:
    return isinstance(message, pb.Alert) and message.alert_type in _SUPERVISION_RELEVANT_ALERTS


register_view("full", _full)
register_view("pseudonymous", _pseudonymous)
register_condition("referred", _referred)
_FLAGGED_KINDS = (kinds.ROSTER_CHANGE, kinds.SERVICE_REFERRAL)
register_condition("drug_related", _drug_related, for_kinds=_FLAGGED_KINDS)
register_condition("not_drug_related", _not_drug_related, for_kinds=_FLAGGED_KINDS)
register_condition("supervision_relevant", _supervision_relevant, for_kinds=[kinds.ALERT])
