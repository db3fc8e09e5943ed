"""What happens in Baoji's community corrections over a period, as messages.

A ``Simulation`` draws a population of people under supervision across the
configured units and plans, day by day, the messages the four linkages
exchange about them, at the volumes of the bureau's own report (DESIGN §1)
scaled to the period and the population. It only builds payloads; sending
them is the demo's job. The period ends today (payload dates may not lie in
the future), so it is a compressed replay of the last ``days`` days.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import partial

from google.protobuf.message import Message

from gateway.demo.disposal import plan_campaigns
from gateway.domain import calendar, kinds
from gateway.domain.calendar import BUREAU_TIME
from gateway.domain.units import Units
from gateway.domain.validation import check_character
from gateway.proto.silian.v1 import payloads_pb2 as pb

#: The population the bureau's annual volumes refer to (DESIGN §1).
REFERENCE_PEOPLE = 2000
#: The judicial bureau's principal: its messages go first within a day.
BUREAU = "judicial"

# Annual volumes for REFERENCE_PEOPLE people (DESIGN §1 and the bureau's report).
POLICE_CHECKS_PER_YEAR = 30_000  # 60,000+ verification records in two years
INSPECTIONS_PER_YEAR = 24
NEW_OFFENCES_PER_YEAR = 12
DEVICE_SEPARATION_SHARE = 0.006  # of checks: a 人机分离 device–person separation found
HIT_SHARE = 0.04  # of checks: a hotel stay, trip or internet café found
OUTSIDE_SHARE = 0.35  # of hits: somewhere outside Baoji
LEAVE_COVERED_SHARE = 0.4  # of hits outside Baoji: on approved leave
NGO_REFERRAL_SHARE = 0.15  # of people without a drug history
DRUG_RELATED_SHARE = 0.06  # all referred to the detox centre

#: Places outside Baoji (division code, description) for hits and leave.
ELSEWHERE = (
    ("610113", "西安市雁塔区"),
    ("610112", "西安市未央区"),
    ("620102", "兰州市城关区"),
    ("510104", "成都市锦江区"),
    ("110105", "北京市朝阳区"),
)
SURNAMES = "王李张刘陈杨赵黄周吴徐孙马胡朱郭何罗高林"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰涛明超秀霞平刚桂英华建国"
OFFENCES = ("盗窃罪", "危险驾驶罪", "故意伤害罪", "诈骗罪", "寻衅滋事罪", "交通肇事罪", "赌博罪")
DRUG_OFFENCES = ("贩卖毒品罪", "非法持有毒品罪", "容留他人吸毒罪")


@dataclass(frozen=True)
class Activity:
    """A kind of partner service and how often it happens in a year."""

    label: str
    per_year: int
    provider: str
    service_type: int  # pb.ServiceType
    event_kind: int  # pb.EventKind


#: Partner services: the bureau's yearly figures (home visits, talks, education,
#: counselling, legal services) as the NGO records them, and the detox team's events.
_ONE, _GROUP = pb.EVENT_KIND_INDIVIDUAL, pb.EVENT_KIND_GROUP
ACTIVITIES = (
    Activity("家访 home visit", 2270, "ngo", pb.SERVICE_TYPE_CHILD_ASSISTANCE, _ONE),
    Activity("谈话 talk", 1550, "ngo", pb.SERVICE_TYPE_COUNSELLING, _ONE),
    Activity("个别教育 individual education", 923, "ngo", pb.SERVICE_TYPE_EXPERT_EDUCATION, _ONE),
    Activity("集中教育 group education", 98, "ngo", pb.SERVICE_TYPE_EXPERT_EDUCATION, _GROUP),
    Activity("心理咨询 counselling", 182, "ngo", pb.SERVICE_TYPE_COUNSELLING, _ONE),
    Activity("法律服务 legal service", 356, "ngo", pb.SERVICE_TYPE_LEGAL_EDUCATION, _ONE),
    Activity("禁毒教育 drug education", 24, "detox", pb.SERVICE_TYPE_DRUG_EDUCATION, _GROUP),
    Activity("法治教育 legal education", 8, "detox", pb.SERVICE_TYPE_LEGAL_EDUCATION, _GROUP),
    Activity("就业指导 employment", 8, "detox", pb.SERVICE_TYPE_EMPLOYMENT_GUIDANCE, _GROUP),
    Activity("义诊 free clinic", 8, "detox", pb.SERVICE_TYPE_FREE_CLINIC, _GROUP),
    Activity("戒毒心理辅导 counselling", 120, "detox", pb.SERVICE_TYPE_COUNSELLING, _ONE),
)

#: Roster changes during the period (per year, REFERENCE_PEOPLE people), besides
#: releases at the end of a term and leave for trips the police later see.
ROSTER_EVENTS_PER_YEAR = {
    pb.ROSTER_CHANGE_TYPE_LEAVE_GRANTED: 480,
    pb.ROSTER_CHANGE_TYPE_SUPERVISION_LEVEL_CHANGED: 240,
    pb.ROSTER_CHANGE_TYPE_COMMENDATION: 120,
    pb.ROSTER_CHANGE_TYPE_REPRIMAND: 60,
    pb.ROSTER_CHANGE_TYPE_WARNING: 36,
}

_ROUTINE_CHECKS = (
    pb.CHECK_TYPE_BIG_DATA,
    pb.CHECK_TYPE_VIDEO_CHECK,
    pb.CHECK_TYPE_HOTEL_STAY,
    pb.CHECK_TYPE_INTERNET_CAFE,
    pb.CHECK_TYPE_TRAVEL,
)
_HIT_PLACES = {
    pb.CHECK_TYPE_HOTEL_STAY: "酒店",
    pb.CHECK_TYPE_INTERNET_CAFE: "网吧",
    pb.CHECK_TYPE_TRAVEL: "火车站",
}
_REASONS: dict[int, str] = {
    pb.ROSTER_CHANGE_TYPE_REPRIMAND: "未按时报到",
    pb.ROSTER_CHANGE_TYPE_WARNING: "多次未参加集中教育",
}
_FINDINGS = (
    ("未按规定开展走访核查", "《社区矫正法》第二十五条", "落实走访核查并建立台账"),
    ("请假审批手续不全", "《社区矫正法实施办法》第二十八条", "完善外出审批材料"),
    ("电子定位监管脱节", "《社区矫正法》第二十九条", "加强信息化核查"),
    ("矫正方案未及时调整", "《社区矫正法》第二十四条", "按期评估并调整矫正方案"),
)


@dataclass(frozen=True)
class Person:
    """Someone under community corrections (社区矫正对象)."""

    resident_id: str
    name: str
    gender: int  # pb.Gender
    birth: date
    unit: str
    category: int  # pb.CorrectionCategory
    offence: str
    drug_related: bool
    partner: str | None  # "ngo" or "detox" if referred
    term_start: date
    term_end: date

    def subject(self, *, full: bool = True) -> pb.Subject:
        if not full:
            return pb.Subject(resident_id=self.resident_id, name=self.name)
        return pb.Subject(
            resident_id=self.resident_id,
            name=self.name,
            gender=self.gender,  # type: ignore[arg-type]
            birth_date=self.birth.isoformat(),
            address=f"宝鸡市{self.unit}",
        )


@dataclass(frozen=True)
class Known:
    """A referred person as a partner knows them: a pseudonym and a unit."""

    pseudonym: str
    unit: str


@dataclass(frozen=True)
class Outgoing:
    """One message to send: who signs it, its kind and payload, and the
    demo phase it belongs to (a progress bar)."""

    sender: str
    kind: str
    message: Message
    phase: str


#: Demo phases, in the order their progress bars appear.
PHASES = {
    "roster": "入矫 roster enrolments",
    "referrals": "转介 referrals to NGO / detox",
    "changes": "变动 roster changes",
    "police": "信息核查 police checks",
    "inspections": "执法监督 inspections",
    "services": "帮扶 partner services",
    "campaigns": "核查专项 verification campaigns",
    "disposal": "闭环 alert dispositions",
}


class Simulation:
    """The people and the period's messages, reproducible from ``seed``."""

    def __init__(
        self,
        *,
        people: int,
        days: int,
        units: Units,
        seed: int,
        today: date | None = None,
        run: str | None = None,
    ) -> None:
        """``run`` goes into every record id (default: a new one), so a second run
        into the same database does not repeat the first one's ids."""
        if people < 1 or days < 1:
            raise ValueError("people and days must be at least 1")
        self.run = run or uuid.uuid4().hex[:8]
        self.rng = random.Random(seed)
        self.units = units
        self.days = days
        self.last_day = today or calendar.today()
        self.first_day = self.last_day - timedelta(days=days - 1)
        self.scale = days / 365 * people / REFERENCE_PEOPLE
        weights = {code: self.rng.uniform(0.5, 1.5) for code in units.codes()}
        self.people = [self._person(weights) for _ in range(people)]
        self._serial = 0

    # --- the population ----------------------------------------------------------

    def _person(self, weights: Mapping[str, float]) -> Person:
        rng = self.rng
        unit = rng.choices(list(weights), weights=list(weights.values()))[0]
        birth = date(1960, 1, 1) + timedelta(days=rng.randrange(42 * 365))
        sequence = rng.randrange(1000)
        first17 = f"{unit}{birth:%Y%m%d}{sequence:03d}"
        drug = rng.random() < DRUG_RELATED_SHARE
        partner = "detox" if drug else ("ngo" if rng.random() < NGO_REFERRAL_SHARE else None)
        term_start = self.first_day - timedelta(days=rng.randrange(30, 720))
        return Person(
            resident_id=first17 + check_character(first17),
            name=rng.choice(SURNAMES) + "".join(rng.choices(GIVEN, k=rng.choice((1, 2)))),
            gender=pb.GENDER_MALE if sequence % 2 else pb.GENDER_FEMALE,
            birth=birth,
            unit=unit,
            category=rng.choices(
                (
                    pb.CORRECTION_CATEGORY_PROBATION,
                    pb.CORRECTION_CATEGORY_PAROLE,
                    pb.CORRECTION_CATEGORY_TEMPORARY_SERVICE_OUTSIDE_PRISON,
                    pb.CORRECTION_CATEGORY_PUBLIC_SURVEILLANCE,
                ),
                weights=(80, 12, 5, 3),
            )[0],
            offence=rng.choice(DRUG_OFFENCES if drug else OFFENCES),
            drug_related=drug,
            partner=partner,
            term_start=term_start,
            term_end=self.first_day + timedelta(days=rng.randrange(0, 730)),
        )

    def _id(self, prefix: str) -> str:
        self._serial += 1
        return f"{prefix}-{self.run}-{self._serial:06d}"

    def count(self, per_year: float, *, at_least_one: bool = False) -> int:
        """How many of something that happens ``per_year`` times happen in the period
        (the expected number, its fraction rounded at random)."""
        expected = per_year * self.scale
        whole = int(expected) + (self.rng.random() < expected - int(expected))
        return max(whole, 1) if at_least_one else whole

    def _day(self) -> int:
        return self.rng.randrange(self.days)

    def date_of(self, day: int) -> date:
        return self.first_day + timedelta(days=day)

    def _moment(self, day: int) -> datetime:
        # office hours in Baoji, on the bureau's calendar
        at = datetime.combine(self.date_of(day), time(self.rng.randrange(7, 23)), BUREAU_TIME)
        at += timedelta(minutes=self.rng.randrange(60))
        return min(at, datetime.now(UTC) - timedelta(minutes=1))

    # --- before the period: the roster and the referrals ---------------------------

    def enrolments(self) -> list[Outgoing]:
        """The roster as the period starts: one enrolment 接收入矫 per person."""
        return [self._roster(p, pb.ROSTER_CHANGE_TYPE_ENROLMENT, p.term_start) for p in self.people]

    def referrals(self) -> list[Outgoing]:
        """A referral for every referred person."""
        found = []
        for person in self.people:
            if person.partner is None:
                continue
            needs = (
                [pb.SERVICE_TYPE_DRUG_EDUCATION, pb.SERVICE_TYPE_COUNSELLING]
                if person.drug_related
                else self.rng.sample(
                    [
                        pb.SERVICE_TYPE_COUNSELLING,
                        pb.SERVICE_TYPE_VOCATIONAL_TRAINING,
                        pb.SERVICE_TYPE_CHILD_ASSISTANCE,
                        pb.SERVICE_TYPE_EXPERT_EDUCATION,
                        pb.SERVICE_TYPE_LEGAL_EDUCATION,
                    ],
                    k=2,
                )
            )
            referral = pb.ServiceReferral(
                referral_id=self._id("REF"),
                subject=person.subject(),
                unit_code=person.unit,
                needs=needs,
                drug_related=person.drug_related,
                offence=person.offence,
                notes="家庭困难" if self.rng.random() < 0.3 else "",
            )
            found.append(Outgoing(BUREAU, kinds.SERVICE_REFERRAL, referral, "referrals"))
        return found

    # --- the period, day by day ----------------------------------------------------

    def period(self, known: Mapping[str, Sequence[Known]]) -> list[list[Outgoing]]:
        """Every day's messages, the bureau's first within a day. ``known`` lists,
        per partner, the people referred to it as it knows them: by the pseudonym
        its inbox showed, with their unit."""
        days: list[list[Outgoing]] = [[] for _ in range(self.days)]
        active = list(self.people)
        planners = (self._releases, self._roster_events, self._police, self._inspections)
        for planner in (*planners, partial(plan_campaigns, self)):
            for day, item in planner(active):
                days[day].append(item)
        for day, item in self._services(known):
            days[day].append(item)
        return [sorted(items, key=lambda o: (o.sender != BUREAU, o.sender)) for items in days]

    def _roster(self, person: Person, change_type: int, effective: date) -> Outgoing:
        change = pb.RosterChange(
            change_id=self._id("RC"),
            change_type=change_type,  # type: ignore[arg-type]
            subject=person.subject(),
            unit_code=person.unit,
            category=person.category,  # type: ignore[arg-type]
            effective_date=effective.isoformat(),
            term_start_date=person.term_start.isoformat(),
            term_end_date=person.term_end.isoformat(),
            offence=person.offence,
            drug_related=person.drug_related,
            officer=f"{person.unit}-司法所",
        )
        if change_type == pb.ROSTER_CHANGE_TYPE_ENROLMENT:
            change.supervision_level = pb.SUPERVISION_LEVEL_ORDINARY
        return Outgoing(BUREAU, kinds.ROSTER_CHANGE, change, "roster")

    def _change(self, person: Person, change_type: int, day: int) -> Outgoing:
        item = self._roster(person, change_type, self.date_of(day))
        assert isinstance(item.message, pb.RosterChange)
        item.message.reason = _REASONS.get(change_type, "")
        if change_type == pb.ROSTER_CHANGE_TYPE_SUPERVISION_LEVEL_CHANGED:
            item.message.supervision_level = self.rng.choice(
                (pb.SUPERVISION_LEVEL_STRICT, pb.SUPERVISION_LEVEL_LENIENT)
            )
        return Outgoing(item.sender, item.kind, item.message, "changes")

    def _releases(self, active: list[Person]) -> Iterator[tuple[int, Outgoing]]:
        """Release 解除矫正 of everyone whose term ends in the period; they leave
        ``active`` (no checks or services after it)."""
        for person in list(active):
            day = (person.term_end - self.first_day).days
            if day < self.days:
                active.remove(person)
                yield day, self._change(person, pb.ROSTER_CHANGE_TYPE_RELEASED_TERM_SERVED, day)

    def _roster_events(self, active: list[Person]) -> Iterator[tuple[int, Outgoing]]:
        if not active:
            return
        for change_type, per_year in ROSTER_EVENTS_PER_YEAR.items():
            for _ in range(self.count(per_year)):
                person, day = self.rng.choice(active), self._day()
                if change_type == pb.ROSTER_CHANGE_TYPE_LEAVE_GRANTED:
                    yield from self._leave(person, day, self.rng.choice(ELSEWHERE))
                else:
                    yield day, self._change(person, change_type, day)

    def _leave(
        self, person: Person, day: int, place: tuple[str, str]
    ) -> Iterator[tuple[int, Outgoing]]:
        """Leave 外出请假 granted on ``day`` for a few days, and its end if it is in the period."""
        length = self.rng.randrange(2, 8)
        granted = self._change(person, pb.ROSTER_CHANGE_TYPE_LEAVE_GRANTED, day)
        assert isinstance(granted.message, pb.RosterChange)
        granted.message.leave_start_date = self.date_of(day).isoformat()
        granted.message.leave_end_date = self.date_of(day + length).isoformat()
        granted.message.destination = place[1]
        yield day, granted
        if day + length < self.days:
            ended = self._change(person, pb.ROSTER_CHANGE_TYPE_LEAVE_ENDED, day + length)
            assert isinstance(ended.message, pb.RosterChange)
            ended.message.leave_start_date = granted.message.leave_start_date
            ended.message.leave_end_date = granted.message.leave_end_date
            yield day + length, ended

    def _police(self, active: list[Person]) -> Iterator[tuple[int, Outgoing]]:
        """Verification results: mostly no hit (a few unanswered video roll-calls);
        some hits (a share outside Baoji, some of those on approved leave), device
        separations, new offences."""
        if not active:
            return
        for _ in range(self.count(POLICE_CHECKS_PER_YEAR)):
            person, day = self.rng.choice(active), self._day()
            roll = self.rng.random()
            if roll < DEVICE_SEPARATION_SHARE:
                place = (person.unit, self.units.name(person.unit))
                yield day, self._result(person, day, pb.CHECK_TYPE_DEVICE_SEPARATION, place)
            elif roll < DEVICE_SEPARATION_SHARE + HIT_SHARE:
                yield from self._hit(person, day)
            else:
                check = self.rng.choice(_ROUTINE_CHECKS)
                unanswered = check == pb.CHECK_TYPE_VIDEO_CHECK and self.rng.random() < 0.02
                outcome = pb.CHECK_OUTCOME_ANOMALY if unanswered else pb.CHECK_OUTCOME_NO_HIT
                yield day, self._result(person, day, check, None, outcome)
        for _ in range(self.count(NEW_OFFENCES_PER_YEAR)):
            person, day = self.rng.choice(active), self._day()
            place = (person.unit, f"{self.units.name(person.unit)}派出所")
            yield day, self._result(person, day, pb.CHECK_TYPE_NEW_OFFENCE, place)

    def _hit(self, person: Person, day: int) -> Iterator[tuple[int, Outgoing]]:
        check = self.rng.choice(list(_HIT_PLACES))
        if self.rng.random() < OUTSIDE_SHARE:
            place = self.rng.choice(ELSEWHERE)
            if self.rng.random() < LEAVE_COVERED_SHARE:
                yield from self._leave(person, max(day - 1, 0), place)
        else:
            unit = self.rng.choice(self.units.codes())
            place = (unit, self.units.name(unit))
        yield day, self._result(person, day, check, (place[0], place[1] + _HIT_PLACES[check]))

    def _result(
        self,
        person: Person,
        day: int,
        check: int,
        place: tuple[str, str] | None,
        outcome: int = pb.CHECK_OUTCOME_HIT,
    ) -> Outgoing:
        result = pb.VerificationResult(
            result_id=self._id("VR"),
            subject=person.subject(full=False),
            unit_code=person.unit,
            check_type=check,  # type: ignore[arg-type]
            outcome=outcome,  # type: ignore[arg-type]
            police_reference=self._id("GA"),
        )
        if place is not None:
            result.place_region_code, result.place = place
        result.observed_at.FromDatetime(self._moment(day))
        return Outgoing("police", kinds.VERIFICATION_RESULT, result, "police")

    def _inspections(self, active: list[Person]) -> Iterator[tuple[int, Outgoing]]:
        """Joint inspections: findings, the bureau's rectifications, closures."""
        for number in range(self.count(INSPECTIONS_PER_YEAR, at_least_one=True)):
            day, unit = self._day(), self.rng.choice(self.units.codes())
            inspection = f"JC-{unit}-{self.date_of(day):%Y%m%d}-{self.run}-{number + 1}"
            for index in range(self.rng.randrange(1, 4)):
                yield from self._finding(
                    inspection, f"{inspection}-F{index + 1}", unit, day, active
                )

    def _finding(
        self, inspection: str, finding_id: str, unit: str, day: int, active: list[Person]
    ) -> Iterator[tuple[int, Outgoing]]:
        text, basis, advice = self.rng.choice(_FINDINGS)
        category = self.rng.choices(
            (
                pb.FINDING_CATEGORY_PROCURATORIAL_SUGGESTION,
                pb.FINDING_CATEGORY_CORRECTION_OF_VIOLATION,
                pb.FINDING_CATEGORY_ORAL_CORRECTION,
            ),
            weights=(50, 25, 25),
        )[0]
        deadline = day + self.rng.randrange(5, 21)
        finding = pb.InspectionFinding(
            inspection_id=inspection,
            finding_id=finding_id,
            unit_code=unit,
            category=category,
            severity=self.rng.choice((pb.SEVERITY_LOW, pb.SEVERITY_MEDIUM, pb.SEVERITY_HIGH)),
            finding=text,
            legal_basis=basis,
            recommendation=advice,
            issued_date=self.date_of(day).isoformat(),
            rectification_deadline=self.date_of(deadline).isoformat(),
        )
        local = [p for p in active if p.unit == unit]
        if local and self.rng.random() < 0.5:
            finding.subjects.append(self.rng.choice(local).subject(full=False))
        yield day, Outgoing("procuratorate", kinds.INSPECTION_FINDING, finding, "inspections")
        if self.rng.random() > 0.8:
            return
        reported = day + self.rng.randrange(2, deadline - day + 4)
        if reported >= self.days:
            return
        report = pb.InspectionRectification(
            finding_id=finding_id,
            unit_code=unit,
            actions=f"已{advice}",
            evidence_refs=[self._id("EV")],
            reported_date=self.date_of(reported).isoformat(),
        )
        yield reported, Outgoing(BUREAU, kinds.INSPECTION_RECTIFICATION, report, "inspections")
        decided = reported + self.rng.randrange(1, 6)
        if decided >= self.days:
            return
        reopened = self.rng.random() < 0.1
        closure = pb.InspectionClosure(
            finding_id=finding_id,
            unit_code=unit,
            decision=pb.CLOSURE_DECISION_REOPENED if reopened else pb.CLOSURE_DECISION_CLOSED,
            reason="整改材料不完整" if reopened else "整改到位",
            decided_date=self.date_of(decided).isoformat(),
        )
        yield decided, Outgoing("procuratorate", kinds.INSPECTION_CLOSURE, closure, "inspections")

    def _services(self, known: Mapping[str, Sequence[Known]]) -> Iterator[tuple[int, Outgoing]]:
        """Partner service records naming people by the pseudonyms the partner received."""
        for activity in ACTIVITIES:
            people = known.get(activity.provider, ())
            if not people:
                continue
            group = activity.event_kind == pb.EVENT_KIND_GROUP
            for _ in range(self.count(activity.per_year, at_least_one=group)):
                day = self._day()
                if group:
                    unit = self.rng.choice(people).unit
                    local = [p for p in people if p.unit == unit]
                    chosen = self.rng.sample(local, k=min(len(local), self.rng.randrange(1, 9)))
                else:
                    chosen = [self.rng.choice(people)]
                yield day, self._record(activity, day, chosen)

    def _record(self, activity: Activity, day: int, people: list[Known]) -> Outgoing:
        group = activity.event_kind == pb.EVENT_KIND_GROUP
        no_show = not group and self.rng.random() < 0.05
        record = pb.ServiceRecord(
            record_id=self._id("SR"),
            unit_code=people[0].unit,
            service_type=activity.service_type,  # type: ignore[arg-type]
            event_kind=activity.event_kind,  # type: ignore[arg-type]
            service_date=self.date_of(day).isoformat(),
            duration_minutes=0 if no_show else self.rng.randrange(30, 181, 15),
            subject_pseudonyms=[p.pseudonym for p in people],
            attendance=len(people) + self.rng.randrange(5, 30) if group else 1,
            outcome=pb.SERVICE_OUTCOME_NO_SHOW
            if no_show
            else self.rng.choice(
                (pb.SERVICE_OUTCOME_COMPLETED,) * 8 + (pb.SERVICE_OUTCOME_FOLLOW_UP_NEEDED,)
            ),
            provider="黄丝带" if activity.provider == "ngo" else "新航驿站",
            notes=activity.label,
        )
        return Outgoing(activity.provider, kinds.SERVICE_RECORD, record, "services")
