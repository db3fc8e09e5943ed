"""Whose data retention purges: supervision ended before the cutoff, and no
enrolment since."""

from __future__ import annotations

from datetime import date

from gateway.domain.retention import RosterEvent, cutoff, expired
from gateway.proto.silian.v1 import payloads_pb2 as pb

TODAY = date(2026, 12, 1)
ENROLLED = pb.ROSTER_CHANGE_TYPE_ENROLMENT
RELEASED = pb.ROSTER_CHANGE_TYPE_RELEASED_TERM_SERVED
DIED = pb.ROSTER_CHANGE_TYPE_TERMINATED_DEATH


def test_the_cutoff_is_the_same_day_years_before() -> None:
    assert cutoff(TODAY, 5) == date(2021, 12, 1)
    assert cutoff(date(2028, 2, 29), 5) == date(2023, 2, 28)


def test_released_before_the_cutoff_is_expired_and_after_it_is_not() -> None:
    events = [
        RosterEvent("old", ENROLLED, date(2015, 1, 1)),
        RosterEvent("old", RELEASED, date(2016, 1, 1)),
        RosterEvent("edge", RELEASED, date(2021, 12, 1)),  # exactly five years: kept
        RosterEvent("recent", RELEASED, date(2025, 1, 1)),
        RosterEvent("dead", DIED, date(2019, 6, 1)),
    ]
    assert expired(events, TODAY, 5) == {"old", "dead"}


def test_someone_enrolled_again_after_release_is_kept() -> None:
    events = [
        RosterEvent("again", RELEASED, date(2016, 1, 1)),
        RosterEvent("again", ENROLLED, date(2024, 1, 1)),
        RosterEvent("never released", ENROLLED, date(2010, 1, 1)),
    ]
    assert expired(events, TODAY, 5) == set()


def test_the_latest_end_counts() -> None:
    events = [
        RosterEvent("twice", RELEASED, date(2012, 1, 1)),
        RosterEvent("twice", ENROLLED, date(2013, 1, 1)),
        RosterEvent("twice", RELEASED, date(2023, 1, 1)),
    ]
    assert expired(events, TODAY, 5) == set()
    assert expired(events, TODAY, 1) == {"twice"}
