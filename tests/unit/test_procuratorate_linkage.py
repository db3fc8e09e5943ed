"""The finding lifecycle and deadlines, as the gateway enforces them (a real
LinkageContext on in-memory SQLite)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
from google.protobuf.message import Message
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from adapters.procuratorate.findings import TRANSITIONS, State, Step
from adapters.procuratorate.linkage import ProcuratorateLinkage
from adapters.procuratorate.validation import MAX_FINDING_ID
from gateway.domain import kinds, validation
from gateway.domain.errors import FailedPrecondition
from gateway.domain.linkage import Accepted, AlertDraft
from gateway.domain.units import Units
from gateway.proto.silian.v1 import payloads_pb2 as pb
from gateway.security.atrest import DataKeys
from gateway.store.linkage_state import StoredLinkageContext, flush
from gateway.store.models import Base
from gateway.store.sealed import INFO_KEY

ISSUED_AT = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
DEADLINE = "2026-03-31"


@pytest.fixture
def session() -> Iterator[Session]:
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with Session(engine, info={INFO_KEY: DataKeys.ephemeral()}) as session:
        yield session
    engine.dispose()


class Desk:
    """Sends findings, rectifications and closures through the linkage."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.linkage = ProcuratorateLinkage()

    def context(self, now: datetime) -> StoredLinkageContext:
        return StoredLinkageContext(
            self.session, "procuratorate", subject_key=str, units=Units.default(), now=now
        )

    def send(self, kind: str, message: Message, at: datetime = ISSUED_AT) -> str:
        mid = str(uuid.uuid4())
        context = self.context(at)
        assert self.linkage.on_accepted(Accepted(kind, "x", mid, message, at), context) == []
        flush(self.session, context.overlay, at)  # as the gateway does once the hook accepted
        return mid

    def issue(
        self,
        finding_id: str = "JC-2026-001",
        deadline: str = DEADLINE,
        category: int = pb.FINDING_CATEGORY_PROCURATORIAL_SUGGESTION,
    ) -> str:
        finding = pb.InspectionFinding(
            inspection_id="XH-2026-01",
            finding_id=finding_id,
            unit_code="610302",
            category=category,  # type: ignore[arg-type]
            severity=pb.SEVERITY_MEDIUM,
            finding="未按规定开展走访",
            issued_date="2026-03-02",
            rectification_deadline=deadline,
        )
        return self.send(kinds.INSPECTION_FINDING, finding)

    def rectify(self, finding_id: str = "JC-2026-001", at: datetime = ISSUED_AT) -> str:
        report = pb.InspectionRectification(
            finding_id=finding_id,
            unit_code="610302",
            actions="补齐走访记录",
            reported_date="2026-03-20",
        )
        return self.send(kinds.INSPECTION_RECTIFICATION, report, at)

    def decide(
        self, decision: int, finding_id: str = "JC-2026-001", at: datetime = ISSUED_AT
    ) -> str:
        closure = pb.InspectionClosure(
            finding_id=finding_id,
            unit_code="610302",
            decision=decision,  # type: ignore[arg-type]
            reason="整改不到位",
            decided_date="2026-03-25",
        )
        return self.send(kinds.INSPECTION_CLOSURE, closure, at)

    def sweep(self, now: datetime) -> list[AlertDraft]:
        context = self.context(now)
        drafts = self.linkage.sweep(context)
        flush(self.session, context.overlay, now)
        return drafts


@pytest.fixture
def desk(session: Session) -> Desk:
    return Desk(session)


CLOSE, REOPEN = pb.CLOSURE_DECISION_CLOSED, pb.CLOSURE_DECISION_REOPENED


def test_a_finding_goes_issued_rectified_closed(desk: Desk) -> None:
    desk.issue()
    desk.rectify()
    desk.decide(CLOSE)
    state = desk.context(ISSUED_AT).get("finding:JC-2026-001")
    assert state is not None and state["state"] == State.CLOSED
    assert [event["state"] for event in state["history"]] == [
        "ISSUED",
        "RECTIFICATION_REPORTED",
        "CLOSED",
    ]


def test_a_reopened_finding_needs_a_new_rectification_before_closing(desk: Desk) -> None:
    desk.issue()
    desk.rectify()
    desk.decide(REOPEN)
    with pytest.raises(FailedPrecondition, match="is REOPENED; a closure is allowed only"):
        desk.decide(CLOSE)
    desk.rectify()
    desk.rectify()  # a supplementary report is welcome
    desk.decide(CLOSE)


@pytest.mark.parametrize("decision", [CLOSE, REOPEN])
def test_a_decision_before_any_rectification_is_out_of_order(desk: Desk, decision: int) -> None:
    desk.issue()
    with pytest.raises(FailedPrecondition) as raised:
        desk.decide(decision)
    assert raised.value.reason == "FINDING_OUT_OF_ORDER"
    assert [v.field for v in raised.value.violations] == ["payload.finding_id"]


def test_nothing_follows_a_closed_finding(desk: Desk) -> None:
    desk.issue()
    desk.rectify()
    desk.decide(CLOSE)
    for step in (desk.rectify, lambda: desk.decide(CLOSE), lambda: desk.decide(REOPEN)):
        with pytest.raises(FailedPrecondition, match="is CLOSED"):
            step()


def test_steps_on_an_unknown_finding_are_refused(desk: Desk) -> None:
    for step in (desk.rectify, lambda: desk.decide(CLOSE)):
        with pytest.raises(FailedPrecondition) as raised:
            step()
        assert raised.value.reason == "UNKNOWN_FINDING"


def test_a_finding_id_is_issued_once(desk: Desk) -> None:
    desk.issue()
    with pytest.raises(FailedPrecondition) as raised:
        desk.issue()
    assert raised.value.reason == "FINDING_EXISTS"


def test_the_transition_table_has_no_way_out_of_closed() -> None:
    assert not [pair for pair in TRANSITIONS if pair[0] == State.CLOSED]
    assert {step for _, step in TRANSITIONS} == set(Step)


# --- deadlines ------------------------------------------------------------------------


def _cst(day: str, hour: int) -> datetime:
    """``hour`` o'clock Beijing time on ``day``, in UTC."""
    return datetime.fromisoformat(f"{day}T{hour:02d}:00:00+08:00").astimezone(UTC)


def test_a_finding_past_its_deadline_without_rectification_alerts_once(desk: Desk) -> None:
    issued = desk.issue()
    assert desk.sweep(_cst(DEADLINE, 23)) == []
    (alert,) = desk.sweep(_cst("2026-04-01", 0))
    assert (alert.alert_type, alert.severity) == (pb.ALERT_TYPE_FINDING_OVERDUE, pb.SEVERITY_HIGH)
    assert list(alert.evidence_mids) == [issued] and alert.unit_code == "610302"
    assert alert.subject is None
    assert "JC-2026-001" in alert.description and DEADLINE in alert.description
    assert desk.sweep(_cst("2026-05-01", 0)) == []


def test_a_finding_rectified_in_time_or_without_deadline_never_alerts(desk: Desk) -> None:
    desk.issue("A")
    desk.rectify("A")
    desk.issue("B", deadline="", category=pb.FINDING_CATEGORY_ORAL_CORRECTION)
    assert desk.sweep(_cst("2026-06-01", 12)) == []


def test_a_finding_reopened_after_its_deadline_is_overdue_with_the_reopening_as_evidence(
    desk: Desk,
) -> None:
    issued = desk.issue()
    desk.rectify()
    reopened = desk.decide(REOPEN, at=_cst("2026-04-03", 10))
    (alert,) = desk.sweep(_cst("2026-04-03", 11))
    assert list(alert.evidence_mids) == [issued, reopened]
    desk.rectify(at=_cst("2026-04-05", 10))
    assert desk.sweep(_cst("2026-04-06", 10)) == []


def test_finding_ids_longer_than_the_limit_are_refused_by_validation() -> None:
    closure = pb.InspectionClosure(
        finding_id="F" * (MAX_FINDING_ID + 1),
        unit_code="610302",
        decision=CLOSE,
        decided_date="2026-03-01",
    )
    violations = validation.validate(
        kinds.INSPECTION_CLOSURE, closure, units=Units.default(), today=date(2026, 3, 2)
    )
    assert [v.field for v in violations] == ["payload.finding_id"]


def test_the_state_read_ahead_is_the_finding_named(desk: Desk) -> None:
    closure = pb.InspectionClosure(finding_id="JC-7")
    accepted = Accepted(kinds.INSPECTION_CLOSURE, "procuratorate", "m", closure, ISSUED_AT)
    assert desk.linkage.state_keys(accepted, str) == ["finding:JC-7"]
