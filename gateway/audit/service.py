"""What auditors ask of the audit log: checkpoints, proofs, entries, and who
received one person's data. Plain methods over the store; the gRPC servicer
(``gateway.rpc.audit_servicer``) and ``silian audit`` translate to and from them.

Requests that cannot be answered raise GatewayErrors: InvalidMessage with a
field violation for impossible sizes, indexes, filters or subjects;
PermissionDenied for an entry a restricted caller is not the actor of;
NotFound for an unknown subject or before the first checkpoint.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select

from gateway.audit import checkpoints, tree
from gateway.audit import log as audit_log
from gateway.domain import events
from gateway.domain.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidMessage,
    NotFound,
    PermissionDenied,
)
from gateway.domain.events import AuditEvent
from gateway.domain.policy import Policy
from gateway.domain.validation import canonical_resident_id, resident_id_problem
from gateway.store.models import AuditCheckpoint, AuditEntry
from gateway.store.repository import Store

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
#: A page token is the index of the next entry: ASCII digits that fit a BIGINT.
_PAGE_TOKEN = re.compile(r"[0-9]{1,18}")
FEED = "feed"
_ACCESS_EVENTS = (
    events.ACCEPTED,
    events.ROUTED,
    events.PUBLISHED,
    events.DELIVERED,
    events.ACKNOWLEDGED,
)


@dataclass(frozen=True)
class Entry:
    """One audit entry, decoded from its canonical bytes (which stay authoritative)."""

    index: int
    time: datetime
    event: str
    actor: str
    mid: str
    kind: str
    detail: dict[str, str | int]
    entry: bytes

    @classmethod
    def decode(cls, index: int, entry: bytes) -> Entry:
        document = json.loads(entry)
        return cls(
            index=index,
            time=datetime.fromisoformat(document["time"]),
            event=document["event"],
            actor=document["actor"],
            mid=document["mid"],
            kind=document["kind"],
            detail=document["detail"],
            entry=entry,
        )


@dataclass(frozen=True)
class EntryFilter:
    """ListEntries' filters; each one given must match."""

    since: datetime | None = None
    until: datetime | None = None
    actor: str = ""
    kind: str = ""
    mid: str = ""
    event: str = ""


@dataclass(frozen=True)
class Step:
    """The audit entry that records one step of a delivery."""

    index: int
    time: datetime


@dataclass
class SubjectAccess:
    """One recipient's receipt of one message naming the person."""

    mid: str
    sender: str
    kind: str
    recipient: str
    route_id: str = ""
    purpose: str = ""
    view: str = ""
    policy_sha256: str = ""
    steps: dict[str, Step] = field(default_factory=dict)  # event -> first entry of it


class AuditService:
    """Answers auditors from the store (and records who looked up whom)."""

    def __init__(self, store: Store, policy: Policy, subject_key: Callable[[str], str]) -> None:
        self.store = store
        self.policy = policy
        self.subject_key = subject_key

    def checkpoint(self) -> AuditCheckpoint:
        """The newest checkpoint; NotFound before the first one is made."""
        with self.store.transaction() as session:
            found = checkpoints.latest(session)
        if found is None:
            raise NotFound("NO_CHECKPOINT", "no checkpoint has been made yet; try again shortly")
        return found

    def inclusion_proof(
        self, index: int, size: int, actor: str | None = None
    ) -> tuple[bytes, list[bytes]]:
        """The entry at ``index`` and its inclusion proof in the tree of ``size``.

        With ``actor`` set (a partner agency), only an entry of that actor is proved.
        """
        if size < 1:
            raise _bad_request("tree_size", "must be at least 1")
        if index >= size:
            raise _bad_request("leaf_index", f"must be less than tree_size ({size})")
        with _tree_errors("tree_size"), self.store.transaction() as session:
            proof = tree.inclusion_proof(session, index, size)
            row = session.get(AuditEntry, index)
            if row is None:
                raise FailedPrecondition(
                    "AUDIT_TREE_DAMAGED", f"audit entry {index} is missing from the database"
                )
            if actor is not None and row.actor != actor:
                raise PermissionDenied(
                    "NOT_YOUR_ENTRY",
                    f"audit entry {index} is not an entry of {actor!r}",
                    [FieldViolation("leaf_index", "not an entry the caller is the actor of")],
                )
            return row.entry, proof

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        """The consistency proof between the trees of ``first`` and ``second`` entries."""
        if first < 1:
            raise _bad_request("first_tree_size", "must be at least 1")
        if first > second:
            raise _bad_request(
                "first_tree_size", f"must not be larger than second_tree_size ({second})"
            )
        with _tree_errors("second_tree_size"), self.store.transaction() as session:
            return tree.consistency_proof(session, first, second)

    def entries(
        self, where: EntryFilter, page_size: int = 0, page_token: str = ""
    ) -> tuple[list[Entry], str]:
        """A page of entries matching ``where``, oldest first, and the next page's token."""
        if page_size < 0 or page_size > MAX_PAGE_SIZE:
            raise _bad_request("page_size", f"must be between 1 and {MAX_PAGE_SIZE}")
        if page_token and not _PAGE_TOKEN.fullmatch(page_token):
            raise _bad_request("page_token", "is not a token this service gave")
        limit = page_size or DEFAULT_PAGE_SIZE
        query = select(AuditEntry.idx, AuditEntry.entry).where(
            AuditEntry.idx >= int(page_token or 0)
        )
        if where.since is not None:
            query = query.where(AuditEntry.created_at >= where.since)
        if where.until is not None:
            query = query.where(AuditEntry.created_at < where.until)
        for column, value in (
            (AuditEntry.actor, where.actor),
            (AuditEntry.kind, where.kind),
            (AuditEntry.mid, where.mid),
            (AuditEntry.event, where.event),
        ):
            if value:
                query = query.where(column == value)
        with self.store.transaction() as session:
            rows = session.execute(query.order_by(AuditEntry.idx).limit(limit + 1)).all()
        page = [Entry.decode(index, entry) for index, entry in rows[:limit]]
        return page, str(rows[limit].idx) if len(rows) > limit else ""

    def subject_access_log(self, subject: str, actor: str) -> list[SubjectAccess]:
        """Every recipient of every message naming the person with resident ID or
        pseudonym ``subject``, oldest first. The look-up itself is audited
        (``subject.queried`` by ``actor``, with the subject's keyed hash only)."""
        key = self.subject_key(self._resident_id(subject))
        audit_log.record(
            self.store, [AuditEvent(events.SUBJECT_QUERIED, actor, detail={"subject_key": key})]
        )
        messages = set(self.store.messages_about(key))
        if not messages:
            return []
        with self.store.transaction() as session:
            rows = session.execute(
                select(AuditEntry.idx, AuditEntry.entry)
                .where(
                    AuditEntry.mid.in_(sorted({mid for _, mid in messages})),
                    AuditEntry.event.in_(_ACCESS_EVENTS),
                )
                .order_by(AuditEntry.idx)
            ).all()
        return self._accesses((Entry.decode(i, e) for i, e in rows), messages)

    def _resident_id(self, subject: str) -> str:
        subject = subject.strip()
        if resident_id_problem(subject) is None:
            return canonical_resident_id(subject)
        if subject.startswith("P-"):
            resident_id = self.store.resident_id_of_pseudonym(subject)
            if resident_id is None:
                raise NotFound(
                    "UNKNOWN_SUBJECT",
                    "no recipient knows anyone by that pseudonym",
                    [FieldViolation("subject", "unknown pseudonym")],
                )
            return resident_id
        raise _bad_request("subject", "is neither a valid resident ID nor a pseudonym (P-…)")

    def _accesses(
        self, entries: Iterable[Entry], messages: set[tuple[str, str]]
    ) -> list[SubjectAccess]:
        accesses: dict[tuple[str, str, str], SubjectAccess] = {}
        sender_of: dict[str, str] = {}  # mid -> sender of its latest acceptance
        kind_of: dict[tuple[str, str], str] = {}
        for entry in entries:
            if entry.event == events.ACCEPTED:
                sender_of[entry.mid] = entry.actor
                kind_of[(entry.actor, entry.mid)] = entry.kind
                continue
            sender = str(entry.detail.get("sender") or sender_of.get(entry.mid, ""))
            if (sender, entry.mid) not in messages:
                continue
            recipient = str(entry.detail.get("recipient") or entry.actor)
            access = accesses.setdefault(
                (sender, entry.mid, recipient),
                self._access(sender, entry, recipient, kind_of.get((sender, entry.mid))),
            )
            if entry.event == events.ROUTED:
                access.policy_sha256 = str(entry.detail.get("policy_sha256", ""))
            access.steps.setdefault(entry.event, Step(entry.index, entry.time))
        return list(accesses.values())

    def _access(self, sender: str, entry: Entry, recipient: str, kind: str | None) -> SubjectAccess:
        if recipient == FEED:
            return SubjectAccess(
                entry.mid,
                sender,
                kind or entry.kind,
                FEED,
                route_id=FEED,
                purpose="the judicial bureau's own systems (silian.feed)",
                view=FEED,
            )
        route_id = str(entry.detail.get("policy", ""))
        route = self.policy.route(route_id)
        return SubjectAccess(
            entry.mid,
            sender,
            kind or entry.kind,
            recipient,
            route_id=route_id,
            purpose=route.purpose if route else "",
            view=str(entry.detail.get("view", "")),
        )


def _bad_request(name: str, problem: str) -> InvalidMessage:
    return InvalidMessage("BAD_AUDIT_REQUEST", f"{name} {problem}", [FieldViolation(name, problem)])


@contextmanager
def _tree_errors(size_field: str) -> Iterator[None]:
    """A size beyond the log is a bad ``size_field``; a damaged stored tree is
    FailedPrecondition(AUDIT_TREE_DAMAGED)."""
    try:
        yield
    except tree.BeyondLog as exc:
        raise _bad_request(size_field, str(exc)) from None
    except tree.MissingNode as exc:
        raise FailedPrecondition("AUDIT_TREE_DAMAGED", str(exc)) from None
