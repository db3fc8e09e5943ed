"""Retention: whose data the gateway may keep no longer.

A person's supervision ends with a release (解除矫正: term served, pardoned) or a
termination (终止矫正: revoked, imprisoned, died). Once that end lies more than
the retention period behind today — and they were not enrolled again since —
the payloads that name them (and only them) are purged. The audit log is never
touched: it holds digests, so it stays complete and verifiable.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from gateway.proto.silian.v1 import payloads_pb2 as pb

#: The bureau's default: keep a person's exchanged data five years after
#: supervision ended (setting ``retention_years``; align it with the archive rules).
DEFAULT_RETENTION_YEARS = 5

ENDING = frozenset(
    {
        pb.ROSTER_CHANGE_TYPE_RELEASED_TERM_SERVED,
        pb.ROSTER_CHANGE_TYPE_RELEASED_PARDONED,
        pb.ROSTER_CHANGE_TYPE_TERMINATED_REVOKED,
        pb.ROSTER_CHANGE_TYPE_TERMINATED_IMPRISONED,
        pb.ROSTER_CHANGE_TYPE_TERMINATED_DEATH,
    }
)


@dataclass(frozen=True)
class RosterEvent:
    """A roster change as retention sees it: whose (subject key), what, from when."""

    subject_key: str
    change_type: int
    effective: date


def cutoff(today: date, years: int) -> date:
    """The day ``years`` before ``today`` (28 February for a 29 February)."""
    try:
        return today.replace(year=today.year - years)
    except ValueError:
        return today.replace(year=today.year - years, day=28)


def expired(events: Iterable[RosterEvent], today: date, years: int) -> set[str]:
    """Subject keys of the people whose supervision last ended before
    ``cutoff(today, years)`` and who were not enrolled again after it."""
    ended: dict[str, date] = {}
    enrolled: dict[str, date] = {}
    for event in events:
        if event.change_type in ENDING:
            ended[event.subject_key] = max(event.effective, ended.get(event.subject_key, date.min))
        elif event.change_type == pb.ROSTER_CHANGE_TYPE_ENROLMENT:
            enrolled[event.subject_key] = max(
                event.effective, enrolled.get(event.subject_key, date.min)
            )
    limit = cutoff(today, years)
    return {key for key, end in ended.items() if end < limit and enrolled.get(key, date.min) <= end}
