"""Alert cases and verification campaigns in the database (``alert_cases``,
``campaigns``): read and written inside the transaction of the message or
sweep that changes them, and read by ``silian alerts``, ``silian police
campaigns`` and the report.

Contract: ``save_*`` MUST be called inside the transaction that stores the
message (or sweep) causing the change, so a refused message leaves nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from gateway.domain.campaigns import Campaign
from gateway.domain.disposal import OPEN_STATES, AlertCase, State
from gateway.store.models import AlertCaseRow, CampaignRow

_CASE_FIELDS = [f.name for f in fields(AlertCase)]
_CAMPAIGN_FIELDS = [f.name for f in fields(Campaign)]


def _aware(value: Any) -> Any:
    """Stored times as aware UTC (SQLite gives them back naive)."""
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def case_of(row: AlertCaseRow) -> AlertCase:
    values = {name: _aware(getattr(row, name)) for name in _CASE_FIELDS}
    values["state"] = State(values["state"])
    return AlertCase(**values)


def campaign_of(row: CampaignRow) -> Campaign:
    values = {name: _aware(getattr(row, name)) for name in _CAMPAIGN_FIELDS}
    values["asked"] = list(values["asked"])
    values["answered"] = list(values["answered"])
    return Campaign(**values)


def load_case(session: Session, alert_id: str) -> AlertCase | None:
    """The case of ``alert_id``, locked until the transaction ends (PostgreSQL), so
    two replicas cannot both take the same step."""
    row = session.get(AlertCaseRow, alert_id, with_for_update=True)
    return case_of(row) if row is not None else None


def save_case(session: Session, case: AlertCase) -> None:
    """Insert or update ``case``."""
    values = {name: getattr(case, name) for name in _CASE_FIELDS}
    values["state"] = str(case.state)
    row = session.get(AlertCaseRow, case.alert_id)
    if row is None:
        session.add(AlertCaseRow(**values))
        return
    for name, value in values.items():
        setattr(row, name, value)


def cases_expecting(session: Session, subject_key: str, change_type: int) -> list[AlertCase]:
    """Cases of this person waiting for a roster change of ``change_type``."""
    rows = session.scalars(
        select(AlertCaseRow).where(
            AlertCaseRow.subject_key == subject_key,
            AlertCaseRow.expected_change == change_type,
            AlertCaseRow.expected_done.is_(False),
        )
    )
    return [case_of(row) for row in rows]


def cases_due(session: Session, now: datetime) -> list[AlertCase]:
    """Cases a sweep may have to escalate or remind of at ``now`` (the domain decides)."""
    open_states = [str(s) for s in OPEN_STATES]
    rows = session.scalars(
        select(AlertCaseRow)
        .where(
            or_(
                and_(
                    AlertCaseRow.state.in_(open_states),
                    or_(
                        and_(
                            AlertCaseRow.verify_due < now,
                            AlertCaseRow.escalated_verify.is_(False),
                        ),
                        and_(
                            AlertCaseRow.dispose_due < now,
                            AlertCaseRow.escalated_dispose.is_(False),
                        ),
                    ),
                ),
                and_(
                    AlertCaseRow.expected_change != 0,
                    AlertCaseRow.expected_done.is_(False),
                    AlertCaseRow.expected_by < now,
                ),
            )
        )
        .order_by(AlertCaseRow.raised_at)
    )
    return [case_of(row) for row in rows]


def cases(
    session: Session,
    *,
    unit_code: str = "",
    alert_type: int = 0,
    states: Sequence[str] = (),
    since: datetime | None = None,
    until: datetime | None = None,
) -> Iterator[AlertCase]:
    """Cases by unit, type, state and time raised, oldest first."""
    query = select(AlertCaseRow).order_by(AlertCaseRow.raised_at, AlertCaseRow.alert_id)
    if unit_code:
        query = query.where(AlertCaseRow.unit_code == unit_code)
    if alert_type:
        query = query.where(AlertCaseRow.alert_type == alert_type)
    if states:
        query = query.where(AlertCaseRow.state.in_(list(states)))
    if since is not None:
        query = query.where(AlertCaseRow.raised_at >= since)
    if until is not None:
        query = query.where(AlertCaseRow.raised_at < until)
    for row in session.scalars(query.execution_options(yield_per=1000)):
        yield case_of(row)


def load_campaign(session: Session, request_id: str) -> Campaign | None:
    """The campaign of ``request_id``, locked until the transaction ends (PostgreSQL)."""
    row = session.get(CampaignRow, request_id, with_for_update=True)
    return campaign_of(row) if row is not None else None


def save_campaign(session: Session, campaign: Campaign) -> None:
    """Insert or update ``campaign``."""
    values = {name: getattr(campaign, name) for name in _CAMPAIGN_FIELDS}
    values["asked"] = list(campaign.asked)
    values["answered"] = list(campaign.answered)
    row = session.get(CampaignRow, campaign.request_id)
    if row is None:
        session.add(CampaignRow(**values))
        return
    for name, value in values.items():
        setattr(row, name, value)


def campaigns_due(session: Session, now: datetime) -> list[Campaign]:
    """Campaigns past their deadline not yet alerted about (the domain decides)."""
    rows = session.scalars(
        select(CampaignRow)
        .where(CampaignRow.deadline < now, CampaignRow.unanswered_alerted.is_(False))
        .order_by(CampaignRow.requested_at)
    )
    return [campaign_of(row) for row in rows]


def campaigns(
    session: Session,
    *,
    unit_code: str = "",
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[Campaign]:
    """Campaigns by unit and time requested, oldest first."""
    query = select(CampaignRow).order_by(CampaignRow.requested_at, CampaignRow.request_id)
    if unit_code:
        query = query.where(CampaignRow.unit_code == unit_code)
    if since is not None:
        query = query.where(CampaignRow.requested_at >= since)
    if until is not None:
        query = query.where(CampaignRow.requested_at < until)
    return [campaign_of(row) for row in session.scalars(query)]
