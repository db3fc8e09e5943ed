"""The harness's payload factories (``gateway.testing``) and the benchmark's
load mix make payloads the gateway's validation accepts, unique per call."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pytest
from google.protobuf.message import Message

from benchmarks.throughput.mix import LANES, LoadPayloads
from gateway import testing
from gateway.domain import kinds, validation
from gateway.domain.units import Units

UNITS = Units.default()

FACTORIES: dict[str, tuple[str, Callable[[], Message]]] = {
    "enrolment": (kinds.ROSTER_CHANGE, testing.enrolment),
    "verification_result": (kinds.VERIFICATION_RESULT, testing.verification_result),
    "verification_hit": (kinds.VERIFICATION_RESULT, testing.verification_hit),
    "referral": (kinds.SERVICE_REFERRAL, testing.referral),
    "inspection_finding": (kinds.INSPECTION_FINDING, testing.inspection_finding),
    "service_record": (
        kinds.SERVICE_RECORD,
        lambda: testing.service_record("P-AAAAAAAAAAAAAAAAAAAA"),
    ),
}


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_every_factory_makes_a_valid_payload(name: str) -> None:
    kind, make = FACTORIES[name]
    assert validation.validate(kind, make(), units=UNITS, today=date.today()) == []


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_each_call_is_a_new_record(name: str) -> None:
    _, make = FACTORIES[name]
    assert make() != make()


def test_resident_ids_are_valid_and_of_their_unit_and_birth_date() -> None:
    person = testing.resident_id("610331", birth=date(1988, 8, 8))
    assert person.startswith("61033119880808")
    assert validation.birth_date_of(person) == date(1988, 8, 8)
    assert person[17] == validation.check_character(person[:17])
    assert int(person[16]) % 2 == 1  # a man


def test_a_seed_gives_the_same_people() -> None:
    assert testing.Payloads(7).resident_id() == testing.Payloads(7).resident_id()


@pytest.mark.parametrize("kind", [lane[1] for lane in LANES])
def test_the_benchmark_load_sends_valid_payloads_naming_its_roster_pool(kind: str) -> None:
    load = LoadPayloads(seed=3)
    message = load.for_kind(kind)
    assert validation.validate(kind, message, units=UNITS, today=date.today()) == []
    if kind == kinds.VERIFICATION_RESULT:
        assert message.subject.resident_id in load.pool  # type: ignore[attr-defined]


def test_every_load_process_has_the_same_roster_pool() -> None:
    assert LoadPayloads(seed=1).pool == LoadPayloads(seed=2).pool
