"""The bureau's calendar. Dates in payloads (effective dates, deadlines, service
days) are local dates in Baoji, and times written without an offset are
Beijing time: "today" is always the bureau's today, never UTC's — between
00:00 and 08:00 in Baoji, UTC is still on yesterday."""

from __future__ import annotations

from datetime import date, datetime, tzinfo
from zoneinfo import ZoneInfo

#: The default zone of the bureau's calendar (setting ``timezone``).
BUREAU_TIME: tzinfo = ZoneInfo("Asia/Shanghai")


def local_date(moment: datetime, zone: tzinfo = BUREAU_TIME) -> date:
    """The date on the bureau's calendar at ``moment`` (an aware datetime)."""
    return moment.astimezone(zone).date()


def today(zone: tzinfo = BUREAU_TIME) -> date:
    """Today on the bureau's calendar."""
    return datetime.now(zone).date()
