"""What happened in a period, read from the gateway's database: the figures the
demo prints and ``silian report`` renders.

Everything comes from stored state — the messages as their senders signed
them, the outbox rows with their delivery times, the audit checkpoints — so
the same figures can be produced again at any time, without the demo.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from sqlalchemy import func, select

from gateway.domain import kinds
from gateway.domain.units import Units
from gateway.proto.silian.v1 import payloads_pb2 as pb
from gateway.reporting.disposal import DisposalFigures, disposal_figures
from gateway.store.models import Agency, AuditCheckpoint, AuditEntry, OutboxRow, StoredMessage
from gateway.store.repository import Store

#: The bureau: the party every linkage exchanges with.
BUREAU = "judicial"

FINDING_STATES = ("open", "rectified", "overdue", "closed")


@dataclass(frozen=True)
class Flow:
    """Messages of one kind from one principal to another."""

    sender: str
    recipient: str  # "" if the message was routed to no one
    kind: str
    messages: int
    deliveries: int
    acknowledged: int

    @property
    def linkage(self) -> str:
        """The linkage is named by the party that is not the bureau."""
        return self.recipient if self.sender == BUREAU else self.sender

    @property
    def route(self) -> str:
        return f"{self.sender} → {self.recipient or '(no recipient)'}"


@dataclass(frozen=True)
class Finding:
    """An inspection finding and where it stands (open, rectified, overdue, closed)."""

    finding_id: str
    unit: str
    category: str
    issued: str
    deadline: str
    state: str


@dataclass(frozen=True)
class Latency:
    """Delivery latency, accepted_at → handed to the recipient, in seconds."""

    count: int
    p50: float
    p90: float
    p99: float
    max: float


@dataclass(frozen=True)
class Checkpoint:
    size: int
    root_hex: str
    created_at: datetime
    log_size: int


@dataclass
class PeriodSummary:
    """The figures of a period (messages accepted since ``since``; one unit if ``unit``)."""

    generated_at: datetime
    since: datetime | None
    unit: str | None
    units: Units
    partner_names: dict[str, str]
    accepted: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)
    first_accepted: datetime | None = None
    last_accepted: datetime | None = None
    flows: list[Flow] = field(default_factory=list)
    alerts: Counter[tuple[str, str]] = field(default_factory=Counter)
    findings: list[Finding] = field(default_factory=list)
    services: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    attendance: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    checks: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    latency: Latency | None = None
    undelivered: int = 0
    checkpoint: Checkpoint | None = None
    verified: str = ""
    disposal: DisposalFigures = field(default_factory=DisposalFigures)

    @property
    def deliveries(self) -> int:
        return sum(f.deliveries for f in self.flows)

    def findings_by_state(self) -> Counter[str]:
        return Counter(f.state for f in self.findings)

    def unit_name(self, code: str) -> str:
        return self.units.name(code) if code in self.units else code


def summarize(
    store: Store,
    units: Units,
    *,
    since: datetime | None = None,
    unit: str | None = None,
    now: datetime | None = None,
) -> PeriodSummary:
    """The period's figures from the database."""
    now = now or datetime.now(UTC)
    with store.transaction() as session:
        names = {a.id: a.display_name for a in session.scalars(select(Agency))}
        stored = [
            m
            for m in session.scalars(select(StoredMessage))
            if (since is None or _utc(m.accepted_at) >= since)
            and (unit is None or m.unit_code == unit)
        ]
        accepted = {(m.sender, m.mid): _utc(m.accepted_at) for m in stored}
        rows = [
            (r.sender, r.mid, r.kind, r.recipient, r.delivered_at, r.acknowledged_at)
            for r in session.scalars(select(OutboxRow).where(OutboxRow.destination == "inbox"))
            if (r.sender, r.mid) in accepted
        ]
        newest = session.scalars(
            select(AuditCheckpoint).order_by(AuditCheckpoint.size.desc()).limit(1)
        ).first()
        log_size = session.scalar(select(func.count()).select_from(AuditEntry)) or 0
        summary = PeriodSummary(now, since, unit, units, names)
        if newest is not None:
            summary.checkpoint = Checkpoint(
                newest.size, newest.root_hash.hex(), _utc(newest.created_at), log_size
            )
        summary.accepted = len(stored)
        summary.by_kind = Counter(m.kind for m in stored)
        if accepted:
            summary.first_accepted = min(accepted.values())
            summary.last_accepted = max(accepted.values())
        summary.flows = _flows(stored, rows)
        summary.latency = _latency(
            [(_utc(d) - accepted[(s, m)]).total_seconds() for s, m, _, _, d, _ in rows if d]
        )
        summary.undelivered = sum(1 for row in rows if row[5] is None)
        _payload_figures(summary, stored, now.date(), store)
        summary.disposal = disposal_figures(session, now, since=since, unit=unit)
    return summary


def _utc(moment: datetime) -> datetime:
    """Stored times as aware UTC (SQLite gives them back naive)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


Row = tuple[str, str, str, str, datetime | None, datetime | None]


def _flows(stored: list[StoredMessage], rows: list[Row]) -> list[Flow]:
    messages: Counter[tuple[str, str, str]] = Counter()
    deliveries: Counter[tuple[str, str, str]] = Counter()
    acknowledged: Counter[tuple[str, str, str]] = Counter()
    routed: set[tuple[str, str]] = set()
    for sender, mid, kind, recipient, _delivered, acked in rows:
        key = (sender, recipient, kind)
        messages[key] += 1
        deliveries[key] += 1
        acknowledged[key] += acked is not None
        routed.add((sender, mid))
    for message in stored:
        if (message.sender, message.mid) not in routed:
            messages[(message.sender, "", message.kind)] += 1
    flows = [Flow(*key, messages[key], deliveries[key], acknowledged[key]) for key in messages]
    return sorted(flows, key=lambda f: (f.linkage, f.kind, f.sender))


def _latency(seconds: list[float]) -> Latency | None:
    if not seconds:
        return None
    ordered = sorted(seconds)

    def at(share: float) -> float:
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]

    return Latency(len(ordered), at(0.5), at(0.9), at(0.99), ordered[-1])


def _payload_figures(
    summary: PeriodSummary, stored: list[StoredMessage], today: date, store: Store
) -> None:
    findings: dict[str, pb.InspectionFinding] = {}
    rectified: dict[str, datetime] = {}
    decided: dict[str, tuple[datetime, int]] = {}
    for message in sorted(stored, key=lambda m: _utc(m.accepted_at)):
        if not message.payload:  # purged under the retention rules
            continue
        payload = kinds.decode(message.kind, store.payload_of(message), allow_unknown=True)
        at = _utc(message.accepted_at)
        if isinstance(payload, pb.Alert):
            summary.alerts[(_name(pb.AlertType, payload.alert_type), payload.unit_code)] += 1
        elif isinstance(payload, pb.VerificationResult):
            summary.checks[_check_key(summary.units, payload)] += 1
        elif isinstance(payload, pb.ServiceRecord):
            key = (
                _name(pb.ServiceType, payload.service_type),
                message.sender,
                _name(pb.EventKind, payload.event_kind),
            )
            summary.services[key] += 1
            summary.attendance[key] += max(payload.attendance, len(payload.subject_pseudonyms))
        elif isinstance(payload, pb.InspectionFinding):
            findings[payload.finding_id] = payload
        elif isinstance(payload, pb.InspectionRectification):
            rectified[payload.finding_id] = at
        elif isinstance(payload, pb.InspectionClosure):
            decided[payload.finding_id] = (at, payload.decision)
    summary.findings = [
        Finding(
            finding_id,
            f.unit_code,
            _name(pb.FindingCategory, f.category),
            f.issued_date,
            f.rectification_deadline,
            _finding_state(f, rectified.get(finding_id), decided.get(finding_id), today),
        )
        for finding_id, f in sorted(findings.items())
    ]


def _finding_state(
    finding: pb.InspectionFinding,
    rectified: datetime | None,
    decided: tuple[datetime, int] | None,
    today: date,
) -> str:
    """closed; rectified (awaiting the procuratorate's review); overdue (no
    rectification after the deadline, or reopened past it); else open."""
    if decided is not None and decided[1] == pb.CLOSURE_DECISION_CLOSED:
        return "closed"
    reopened_after = decided is not None and (rectified is None or rectified <= decided[0])
    if rectified is not None and not reopened_after:
        return "rectified"
    deadline = finding.rectification_deadline
    if deadline and date.fromisoformat(deadline) < today:
        return "overdue"
    return "open"


def _check_key(units: Units, result: pb.VerificationResult) -> tuple[str, str, str]:
    code = result.place_region_code
    where = "" if not code else ("in Baoji" if units.in_region(code) else "outside Baoji")
    return (_name(pb.CheckType, result.check_type), _name(pb.CheckOutcome, result.outcome), where)


def _name(enum: type, number: int) -> str:
    """An enum value's name without its type prefix (``HOTEL_STAY``)."""
    descriptor = enum.DESCRIPTOR  # type: ignore[attr-defined]
    value = descriptor.values_by_number.get(number)
    if value is None:
        return str(number)
    prefix = "_".join(w.upper() for w in _words(descriptor.name)) + "_"
    return str(value.name).removeprefix(prefix)


def _words(camel: str) -> list[str]:
    words: list[str] = []
    for char in camel:
        if char.isupper() or not words:
            words.append(char)
        else:
            words[-1] += char
    return words
