"""The demo's plan of dispositions: valid payloads, in an order the lifecycle
accepts round by round, mostly in time, and a roster change where one is due."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

from gateway.demo.disposal import plan_dispositions, time_scale
from gateway.demo.simulation import Simulation
from gateway.domain.calendar import BUREAU_TIME
from gateway.domain.deadlines import Deadlines
from gateway.domain.disposal import AlertCase, State
from gateway.domain.units import Units
from gateway.domain.validation import validate
from gateway.proto.silian.v1 import payloads_pb2 as pb

UNITS = Units.default()
#: Ten in the morning in Baoji: most of the day is left.
NOW = datetime(2026, 5, 4, 10, 0, tzinfo=BUREAU_TIME).astimezone(UTC)


def _alerts(sim: Simulation, count: int) -> list[pb.Alert]:
    types = (
        (pb.ALERT_TYPE_OUT_OF_BOUNDS, pb.SEVERITY_HIGH),
        (pb.ALERT_TYPE_NEW_OFFENCE, pb.SEVERITY_URGENT),
        (pb.ALERT_TYPE_POSSIBLE_ABSCONDING, pb.SEVERITY_HIGH),
        (pb.ALERT_TYPE_DEVICE_SEPARATION, pb.SEVERITY_HIGH),
    )
    alerts = []
    for index in range(count):
        person = sim.people[index % len(sim.people)]
        alert_type, severity = types[index % len(types)]
        alert = pb.Alert(
            alert_id=str(uuid.uuid4()),
            alert_type=alert_type,
            severity=severity,
            unit_code=person.unit,
            subject=person.subject(full=False),
            description="demo",
            evidence_mids=[str(uuid.uuid4())],
        )
        alert.raised_at.FromDatetime(NOW)
        alerts.append(alert)
    return alerts


def test_the_plan_is_valid_in_order_and_mostly_in_time() -> None:
    sim = Simulation(people=50, days=7, units=UNITS, seed=3, today=NOW.date())
    alerts = _alerts(sim, 200)
    scale = time_scale(NOW)
    deadlines = Deadlines().scaled(scale)
    cases = {
        a.alert_id: AlertCase.raised(
            a, "mid", "", NOW, deadlines.for_alert(a.alert_type, a.severity)
        )
        for a in alerts
    }
    changes: Counter[int] = Counter()
    for items in plan_dispositions(sim, alerts, Deadlines(), scale, NOW):
        steps = [i.message.alert_id for i in items if isinstance(i.message, pb.AlertDisposition)]
        assert len(set(steps)) == len(steps)  # one step of an alert per round
        for item in items:
            assert validate(item.kind, item.message, units=UNITS, today=NOW.date()) == [], item
            if isinstance(item.message, pb.AlertDisposition):
                cases[item.message.alert_id].apply(item.message, "mid", deadlines)
            else:
                assert isinstance(item.message, pb.RosterChange)
                changes[item.message.change_type] += 1
    states = Counter(case.state for case in cases.values())
    assert states[State.CLOSED] > 170 and states[State.RAISED] < 20
    in_time = [case.disposed_in_time for case in cases.values() if case.disposed_at]
    assert 0.8 < sum(in_time) / len(in_time) < 1.0  # a few late
    assert sum(case.reopened for case in cases.values()) >= 1
    assert changes[pb.ROSTER_CHANGE_TYPE_ABSCONDED] >= 1


def test_disposal_time_shrinks_with_the_day_left() -> None:
    morning = time_scale(NOW)
    evening = time_scale(NOW + timedelta(hours=12))
    assert 0 < evening < morning <= 1
