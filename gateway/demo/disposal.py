"""The demo's closed loop (闭环): verification campaigns the bureau sends the
police during the period, and the units' dispositions of the alerts the
gateway raised.

Campaigns are planned with the period (one or two a month city-wide, each a
unit's list of people with a response deadline a few days on); the police
answer most people, a few stay unanswered.

Dispositions can only follow the alerts, which the gateway raises as the
period is replayed — in the demo's few minutes. So they are played in
compressed time: every delay is a share of the alert's deadline times the
demo's time scale (the gateway's deadlines are scaled the same way:
``disposal_time_scale``), and no step lies after the end of today (payload
times may not lie in the future). Most alerts are verified and disposed
within their deadlines, a few late, a few reopened, a few left open; a
confirmed absconding, a reprimand or a warning is mostly followed by its
roster change.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, time, timedelta
from itertools import zip_longest
from typing import TYPE_CHECKING

from gateway.domain import kinds
from gateway.domain.calendar import BUREAU_TIME
from gateway.domain.deadlines import Deadline, Deadlines
from gateway.proto.silian.v1 import payloads_pb2 as pb

if TYPE_CHECKING:
    from gateway.demo.simulation import Outgoing, Person, Simulation

#: Verification campaigns (大数据核查专项) in a year, city-wide (16 in the bureau's report).
CAMPAIGNS_PER_YEAR = 18
LATE_SHARE = 0.08
REOPENED_SHARE = 0.05
LEFT_OPEN_SHARE = 0.04
FOLLOWED_SHARE = 0.85  # of dispositions calling for a roster change
#: The longest deadline the demo plays through (possible 脱管: 48 hours to dispose).
LONGEST = timedelta(hours=48)
_METHODS = (
    pb.VERIFICATION_METHOD_VIDEO_CALL,
    pb.VERIFICATION_METHOD_PHONE,
    pb.VERIFICATION_METHOD_ON_SITE,
    pb.VERIFICATION_METHOD_BIG_DATA,
)
_OFFICERS = "王李张刘陈杨赵黄"


def time_scale(now: datetime) -> float:
    """How much to compress disposal time so the longest deadline, twice over,
    fits in what is left of today on the bureau's calendar."""
    local = now.astimezone(BUREAU_TIME)
    end = datetime.combine(local.date(), time(23, 50), BUREAU_TIME)
    left = max((end - local).total_seconds(), 120.0)
    return min(1.0, left / (2 * LONGEST.total_seconds()))


def plan_campaigns(sim: Simulation, active: list[Person]) -> Iterator[tuple[int, Outgoing]]:
    """Campaigns: a request of a unit's people with a deadline three days on, and
    the police's answers (big-data checks) on the following days."""
    from gateway.demo.simulation import BUREAU, Outgoing

    for _ in range(sim.count(CAMPAIGNS_PER_YEAR, at_least_one=True)):
        unit = sim.rng.choice(sorted({p.unit for p in active}))
        local = [p for p in active if p.unit == unit]
        asked = sim.rng.sample(local, k=min(len(local), sim.rng.randrange(5, 31)))
        day = sim.rng.randrange(sim.days)
        request = pb.VerificationRequest(
            request_id=sim._id("VQ"),
            unit_code=unit,
            subjects=[p.subject(full=False) for p in asked],
            check_types=[pb.CHECK_TYPE_BIG_DATA],
            reason="大数据核查专项",
        )
        due = datetime.combine(sim.date_of(day) + timedelta(days=3), time(18), BUREAU_TIME)
        request.response_deadline.FromDatetime(due.astimezone(UTC))
        yield day, Outgoing(BUREAU, kinds.VERIFICATION_REQUEST, request, "campaigns")
        for person in asked:
            if sim.rng.random() < 0.1:
                continue  # unanswered
            answered = min(day + sim.rng.randrange(0, 3), sim.days - 1)
            result = sim._result(
                person, answered, pb.CHECK_TYPE_BIG_DATA, None, pb.CHECK_OUTCOME_NO_HIT
            )
            assert isinstance(result.message, pb.VerificationResult)
            result.message.request_id = request.request_id
            yield answered, Outgoing("police", result.kind, result.message, "campaigns")


def plan_dispositions(
    sim: Simulation,
    alerts: Sequence[pb.Alert],
    deadlines: Deadlines,
    scale: float,
    now: datetime,
) -> list[list[Outgoing]]:
    """Every alert's dispositions (and the roster changes they call for) in rounds:
    the n-th step of every alert in round n, so a round may be sent at once (the
    gateway commits the messages of one stream in any order) and the next only
    after it."""
    end = datetime.combine(now.astimezone(BUREAU_TIME).date(), time(23, 55), BUREAU_TIME)
    sequences = []
    for alert in alerts:
        deadline = deadlines.for_alert(alert.alert_type, alert.severity)
        if deadline is None or sim.rng.random() < LEFT_OPEN_SHARE:
            continue
        sequences.append(list(_Steps(sim, alert, deadline, scale, end).plan()))
    rounds = zip_longest(*sequences)
    return [[s[1] for s in sorted((s for s in steps if s), key=lambda s: s[0])] for steps in rounds]


class _Steps:
    """The dispositions of one alert, at compressed times."""

    def __init__(
        self, sim: Simulation, alert: pb.Alert, deadline: Deadline, scale: float, end: datetime
    ) -> None:
        self.sim = sim
        self.alert = alert
        self.deadline = deadline
        self.scale = scale
        self.end = end
        self.officer = f"{sim.rng.choice(_OFFICERS)}矫正官"
        self.at = alert.raised_at.ToDatetime(tzinfo=UTC)

    def _after(self, limit: timedelta, late: bool) -> datetime:
        share = self.sim.rng.uniform(1.1, 1.8) if late else self.sim.rng.uniform(0.05, 0.85)
        self.at = min(self.at + limit * share * self.scale, self.end)
        return self.at

    def plan(self) -> Iterator[tuple[datetime, Outgoing]]:
        rng = self.sim.rng
        late = rng.random() < LATE_SHARE
        start = self.at
        verified = self._after(self.deadline.verify, late)
        yield self._step(pb.DISPOSITION_STEP_VERIFICATION_STARTED, verified)
        disposed_by = start + self.deadline.dispose * self.scale * (
            rng.uniform(1.1, 1.5) if late else rng.uniform(0.3, 0.95)
        )
        self.at = max(self.at, min(disposed_by, self.end))
        finding, action = self._outcome()
        yield self._step(pb.DISPOSITION_STEP_DISPOSED, self.at, finding=finding, action=action)
        yield from self._follow_up(finding, action)
        self._after(timedelta(hours=1), late=False)
        yield self._step(pb.DISPOSITION_STEP_CLOSED, self.at)
        if rng.random() < REOPENED_SHARE:
            self._after(timedelta(hours=2), late=False)
            yield self._step(pb.DISPOSITION_STEP_REOPENED, self.at, reason="复查发现核查不实")
            self._after(self.deadline.verify, late=False)
            yield self._step(pb.DISPOSITION_STEP_VERIFICATION_STARTED, self.at)
            self._after(self.deadline.verify, late=False)
            yield self._step(pb.DISPOSITION_STEP_DISPOSED, self.at, finding=finding, action=action)
            self._after(timedelta(hours=1), late=False)
            yield self._step(pb.DISPOSITION_STEP_CLOSED, self.at)

    def _outcome(self) -> tuple[int, int]:
        rng, kind = self.sim.rng, self.alert.alert_type
        if kind == pb.ALERT_TYPE_NEW_OFFENCE:
            return (
                pb.DISPOSITION_FINDING_OFFENCE_CONFIRMED,
                pb.DISPOSITION_ACTION_REVOCATION_REQUESTED,
            )
        roll = rng.random()
        if kind == pb.ALERT_TYPE_POSSIBLE_ABSCONDING and roll < 0.3:
            return (
                pb.DISPOSITION_FINDING_ABSCONDING_CONFIRMED,
                pb.DISPOSITION_ACTION_REVOCATION_REQUESTED,
            )
        if kind == pb.ALERT_TYPE_DEVICE_SEPARATION and roll < 0.5:
            return pb.DISPOSITION_FINDING_DEVICE_FAULT, pb.DISPOSITION_ACTION_NONE
        if roll < 0.55:
            return pb.DISPOSITION_FINDING_FALSE_ALARM, pb.DISPOSITION_ACTION_NONE
        if roll < 0.7:
            return pb.DISPOSITION_FINDING_APPROVED_LEAVE, pb.DISPOSITION_ACTION_NONE
        action = rng.choice(
            (pb.DISPOSITION_ACTION_TALK,) * 3
            + (pb.DISPOSITION_ACTION_REPRIMAND, pb.DISPOSITION_ACTION_WARNING)
        )
        return pb.DISPOSITION_FINDING_VIOLATION_CONFIRMED, action

    def _follow_up(self, finding: int, action: int) -> Iterator[tuple[datetime, Outgoing]]:
        from gateway.demo.simulation import BUREAU, Outgoing

        follow_ups: dict[int, int] = {
            pb.DISPOSITION_ACTION_REPRIMAND: pb.ROSTER_CHANGE_TYPE_REPRIMAND,
            pb.DISPOSITION_ACTION_WARNING: pb.ROSTER_CHANGE_TYPE_WARNING,
        }
        change = follow_ups.get(action, 0)
        if finding == pb.DISPOSITION_FINDING_ABSCONDING_CONFIRMED:
            change = pb.ROSTER_CHANGE_TYPE_ABSCONDED
        if not change or self.sim.rng.random() > FOLLOWED_SHARE:
            return
        at = self.at
        message = pb.RosterChange(
            change_id=self.sim._id("RC"),
            change_type=change,  # type: ignore[arg-type]
            subject=pb.Subject(
                resident_id=self.alert.subject.resident_id, name=self.alert.subject.name
            ),
            unit_code=self.alert.unit_code,
            effective_date=at.astimezone(BUREAU_TIME).date().isoformat(),
            reason="预警核查属实" if change != pb.ROSTER_CHANGE_TYPE_ABSCONDED else "",
            officer=self.officer,
        )
        yield at, Outgoing(BUREAU, kinds.ROSTER_CHANGE, message, "disposal")

    def _step(self, step: int, at: datetime, **fields: object) -> tuple[datetime, Outgoing]:
        from gateway.demo.simulation import BUREAU, Outgoing

        message = pb.AlertDisposition(
            disposition_id=self.sim._id("AD"),
            alert_id=self.alert.alert_id,
            alert_type=self.alert.alert_type,
            unit_code=self.alert.unit_code,
            step=step,  # type: ignore[arg-type]
            officer=self.officer,
            **fields,  # type: ignore[arg-type]
        )
        if step in (pb.DISPOSITION_STEP_VERIFICATION_STARTED, pb.DISPOSITION_STEP_DISPOSED):
            message.method = self.sim.rng.choice(_METHODS)
        message.occurred_at.FromDatetime(at)
        return at, Outgoing(BUREAU, kinds.ALERT_DISPOSITION, message, "disposal")
