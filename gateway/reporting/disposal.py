"""Alert disposal figures (闭环) of a period, per unit: alerts raised, the
disposal rate (处置率), median times to verification and to disposal, open
and overdue alerts; and the verification campaigns with their completion.

The disposal rate counts the alerts that are *due*: disposed, or past their
disposal deadline without a disposal. An alert still inside its deadline
counts against no one yet; an alert the gateway raised about disposal itself
(no deadline) is not counted.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from gateway.domain.campaigns import Campaign
from gateway.domain.disposal import OPEN_STATES, AlertCase
from gateway.store import disposal as stored


@dataclass
class UnitDisposal:
    """The disposal figures of one unit (or of all: ``unit`` "")."""

    unit: str
    raised: int = 0
    due: int = 0
    disposed: int = 0
    in_time: int = 0
    open: int = 0
    overdue: int = 0
    reopened: int = 0
    verify_minutes: list[float] = field(default_factory=list)
    dispose_minutes: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float | None:
        """处置率: disposed within deadline ÷ due (None if nothing is due)."""
        return self.in_time / self.due if self.due else None

    @property
    def median_verify(self) -> float | None:
        return statistics.median(self.verify_minutes) if self.verify_minutes else None

    @property
    def median_dispose(self) -> float | None:
        return statistics.median(self.dispose_minutes) if self.dispose_minutes else None

    def count(self, case: AlertCase, now: datetime) -> None:
        self.raised += 1
        self.reopened += case.reopened > 0
        if case.state in OPEN_STATES:
            self.open += 1
            self.overdue += case.overdue(now)
        if case.verified_at is not None:
            self.verify_minutes.append((case.verified_at - case.raised_at).total_seconds() / 60)
        if case.disposed_at is not None:
            self.disposed += 1
            self.dispose_minutes.append((case.disposed_at - case.raised_at).total_seconds() / 60)
        if case.dispose_due is None:
            return
        if case.disposed_at is not None or now > case.dispose_due:
            self.due += 1
            self.in_time += bool(case.disposed_in_time)


@dataclass
class CampaignFigures:
    """One verification campaign as the report shows it."""

    request_id: str
    unit: str
    requested_at: datetime
    deadline: datetime | None
    asked: int
    answered: int
    results: int
    hits: int
    state: str

    @classmethod
    def of(cls, campaign: Campaign, now: datetime) -> CampaignFigures:
        return cls(
            campaign.request_id,
            campaign.unit_code,
            campaign.requested_at,
            campaign.deadline,
            len(campaign.asked),
            len(campaign.answered),
            campaign.results,
            campaign.hits,
            campaign.state(now),
        )

    @property
    def completion(self) -> float:
        return self.answered / self.asked if self.asked else 1.0


@dataclass
class DisposalFigures:
    """Per-unit disposal, the whole city's, and the campaigns of a period."""

    units: list[UnitDisposal] = field(default_factory=list)
    total: UnitDisposal = field(default_factory=lambda: UnitDisposal(""))
    campaigns: list[CampaignFigures] = field(default_factory=list)

    @property
    def campaign_completion(self) -> float | None:
        """People answered for ÷ people asked, over every campaign (None: no campaign)."""
        asked = sum(c.asked for c in self.campaigns)
        return sum(c.answered for c in self.campaigns) / asked if asked else None


def disposal_figures(
    session: Session,
    now: datetime,
    *,
    since: datetime | None = None,
    unit: str | None = None,
) -> DisposalFigures:
    """The figures of alerts raised and campaigns requested since ``since``."""
    figures = DisposalFigures()
    by_unit: dict[str, UnitDisposal] = {}
    for case in stored.cases(session, unit_code=unit or "", since=since):
        by_unit.setdefault(case.unit_code, UnitDisposal(case.unit_code)).count(case, now)
        figures.total.count(case, now)
    figures.units = [by_unit[code] for code in sorted(by_unit)]
    figures.campaigns = [
        CampaignFigures.of(campaign, now)
        for campaign in stored.campaigns(session, unit_code=unit or "", since=since)
    ]
    return figures


def minutes_text(minutes: float | None) -> str:
    """``95`` → "1 h 35 min"; None → "—"."""
    if minutes is None:
        return "—"
    hours, rest = divmod(round(minutes), 60)
    return f"{hours} h {rest:02d} min" if hours else f"{rest} min"


def share_text(share: float | None) -> str:
    return "—" if share is None else f"{share:.1%}"
