"""The demo's simulation: valid payloads at the report's volumes."""

from __future__ import annotations

from collections import Counter
from datetime import date

from gateway.demo.simulation import Known, Simulation
from gateway.domain import kinds
from gateway.domain.units import Units
from gateway.domain.validation import validate

TODAY = date(2026, 11, 27)


def _simulation(people: int = 2000, days: int = 30) -> Simulation:
    return Simulation(people=people, days=days, units=Units.default(), seed=3, today=TODAY)


def _known(simulation: Simulation) -> dict[str, list[Known]]:
    return {
        partner: [
            Known(f"P-{partner}-{index}", p.unit)
            for index, p in enumerate(simulation.people)
            if p.partner == partner
        ]
        for partner in ("ngo", "detox")
    }


def test_every_simulated_message_is_valid() -> None:
    simulation = _simulation(people=300, days=10)
    outgoing = [
        *simulation.enrolments(),
        *simulation.referrals(),
        *(item for day in simulation.period(_known(simulation)) for item in day),
    ]
    units = Units.default()
    for item in outgoing:
        assert kinds.payload_type(item.kind) is type(item.message)
        assert validate(item.kind, item.message, units=units, today=TODAY) == [], item.message


def test_a_month_has_the_reports_volumes() -> None:
    simulation = _simulation()
    period = [item for day in simulation.period(_known(simulation)) for item in day]
    by_kind = Counter(item.kind for item in period)
    assert 2300 <= by_kind["verification.result"] <= 2650  # 60,000 in two years
    assert 350 <= by_kind["service.record"] <= 550  # ~5,400 services a year
    assert by_kind["inspection.finding"] >= 1
    assert {p.unit for p in simulation.people} == set(Units.default().codes())


def test_the_same_seed_gives_the_same_people() -> None:
    assert _simulation(people=50).people == _simulation(people=50).people
