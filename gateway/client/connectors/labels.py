"""The words agencies' files use for the values of the payload enums.

Each ``Labels`` table gives, per enum value, its Chinese label (written on
export, listed first) and further accepted spellings. ``parse`` accepts any
of them, the English enum name with or without its prefix
(``CHECK_TYPE_HOTEL_STAY`` or ``hotel_stay``), ignoring case and spaces.

This module holds the tables of the core's own export formats
(``standard``: roster changes and alerts). The words of what one agency's
files use live in its adapter (``adapters/<agency>/labels.py``, the NGO's and
the detox centre's shared ones in ``adapters/partner_services/labels.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Generic, TypeVar

from gateway.client.connectors.files import normalize_header
from gateway.proto.silian.v1 import payloads_pb2 as pb

V = TypeVar("V")


class Labels(Generic[V]):
    """Labels of the values of one enum; see the module docstring."""

    def __init__(self, table: Mapping[V, tuple[str, ...]]) -> None:
        """``table`` gives each value its spellings, the one written on export first."""
        self._labels = {value: spellings[0] for value, spellings in table.items()}
        self._parse = {
            normalize_header(spelling): value
            for value, spellings in table.items()
            for spelling in spellings
        }

    @staticmethod
    def of_enum(enum: Any, prefix: str, table: Mapping[int, tuple[str, ...]]) -> Labels[int]:
        """Labels of a protobuf enum whose value names start with ``prefix``;
        each value is also accepted by its name with and without the prefix."""
        return Labels(
            {
                value: (*spellings, enum.Name(value), enum.Name(value).removeprefix(prefix))
                for value, spellings in table.items()
            }
        )

    def parse(self, text: str) -> V | None:
        return self._parse.get(normalize_header(text))

    def label(self, value: V) -> str:
        """The Chinese label of ``value`` (str(value) for a value without one)."""
        return self._labels.get(value, str(value))

    def choices(self) -> str:
        """The Chinese labels, for error messages: ``旅馆住宿、出行、…``."""
        return "、".join(self._labels.values())


GENDERS = Labels.of_enum(
    pb.Gender, "GENDER_", {pb.GENDER_MALE: ("男", "M"), pb.GENDER_FEMALE: ("女", "F")}
)

SEVERITIES = Labels.of_enum(
    pb.Severity,
    "SEVERITY_",
    {
        pb.SEVERITY_LOW: ("低", "一般"),
        pb.SEVERITY_MEDIUM: ("中", "较重"),
        pb.SEVERITY_HIGH: ("高", "严重"),
        pb.SEVERITY_URGENT: ("紧急", "特别严重"),
    },
)

ROSTER_CHANGE_TYPES = Labels.of_enum(
    pb.RosterChangeType,
    "ROSTER_CHANGE_TYPE_",
    {
        pb.ROSTER_CHANGE_TYPE_ENROLMENT: ("接收入矫",),
        pb.ROSTER_CHANGE_TYPE_LEAVE_GRANTED: ("外出请假批准",),
        pb.ROSTER_CHANGE_TYPE_LEAVE_ENDED: ("外出销假",),
        pb.ROSTER_CHANGE_TYPE_FREQUENT_TRAVEL_APPROVED: ("经常性跨市县活动批准",),
        pb.ROSTER_CHANGE_TYPE_RESIDENCE_CHANGED: ("迁居",),
        pb.ROSTER_CHANGE_TYPE_PLACE_OF_EXECUTION_CHANGED: ("执行地变更",),
        pb.ROSTER_CHANGE_TYPE_PROHIBITION_ORDER: ("禁止令",),
        pb.ROSTER_CHANGE_TYPE_SUPERVISION_LEVEL_CHANGED: ("管理等级调整",),
        pb.ROSTER_CHANGE_TYPE_COMMENDATION: ("表扬",),
        pb.ROSTER_CHANGE_TYPE_REPRIMAND: ("训诫",),
        pb.ROSTER_CHANGE_TYPE_WARNING: ("警告",),
        pb.ROSTER_CHANGE_TYPE_PUBLIC_SECURITY_PENALTY_REQUESTED: ("提请治安处罚",),
        pb.ROSTER_CHANGE_TYPE_REVOCATION_REQUESTED: ("提请撤销缓刑假释",),
        pb.ROSTER_CHANGE_TYPE_IMPRISONMENT_REQUESTED: ("提请收监执行",),
        pb.ROSTER_CHANGE_TYPE_SENTENCE_REDUCTION_REQUESTED: ("提请减刑",),
        pb.ROSTER_CHANGE_TYPE_ABSCONDED: ("脱管",),
        pb.ROSTER_CHANGE_TYPE_ABSCONDING_RESOLVED: ("脱管已查找",),
        pb.ROSTER_CHANGE_TYPE_RELEASED_TERM_SERVED: ("期满解除矫正",),
        pb.ROSTER_CHANGE_TYPE_RELEASED_PARDONED: ("赦免解除矫正",),
        pb.ROSTER_CHANGE_TYPE_TERMINATED_REVOKED: ("撤销缓刑假释终止矫正",),
        pb.ROSTER_CHANGE_TYPE_TERMINATED_IMPRISONED: ("收监执行终止矫正",),
        pb.ROSTER_CHANGE_TYPE_TERMINATED_DEATH: ("死亡终止矫正",),
    },
)

CORRECTION_CATEGORIES = Labels.of_enum(
    pb.CorrectionCategory,
    "CORRECTION_CATEGORY_",
    {
        pb.CORRECTION_CATEGORY_PUBLIC_SURVEILLANCE: ("管制",),
        pb.CORRECTION_CATEGORY_PROBATION: ("缓刑",),
        pb.CORRECTION_CATEGORY_PAROLE: ("假释",),
        pb.CORRECTION_CATEGORY_TEMPORARY_SERVICE_OUTSIDE_PRISON: ("暂予监外执行",),
    },
)

SUPERVISION_LEVELS = Labels.of_enum(
    pb.SupervisionLevel,
    "SUPERVISION_LEVEL_",
    {
        pb.SUPERVISION_LEVEL_STRICT: ("严管",),
        pb.SUPERVISION_LEVEL_ORDINARY: ("普管",),
        pb.SUPERVISION_LEVEL_LENIENT: ("宽管",),
    },
)

ALERT_TYPES = Labels.of_enum(
    pb.AlertType,
    "ALERT_TYPE_",
    {
        pb.ALERT_TYPE_OUT_OF_BOUNDS: ("越界",),
        pb.ALERT_TYPE_NEW_OFFENCE: ("新的违法犯罪",),
        pb.ALERT_TYPE_DEVICE_SEPARATION: ("人机分离",),
        pb.ALERT_TYPE_POSSIBLE_ABSCONDING: ("疑似脱管",),
        pb.ALERT_TYPE_FINDING_OVERDUE: ("整改逾期",),
        pb.ALERT_TYPE_DISPOSAL_OVERDUE: ("处置超期",),
        pb.ALERT_TYPE_ROSTER_CHANGE_MISSING: ("处置后未变更",),
        pb.ALERT_TYPE_CAMPAIGN_UNANSWERED: ("核查未反馈",),
    },
)

# The words of an alert's disposal (闭环): steps, how it was verified, what was
# found and what was done.
DISPOSITION_STEPS = Labels.of_enum(
    pb.DispositionStep,
    "DISPOSITION_STEP_",
    {
        pb.DISPOSITION_STEP_VERIFICATION_STARTED: ("开始核查",),
        pb.DISPOSITION_STEP_DISPOSED: ("处置",),
        pb.DISPOSITION_STEP_CLOSED: ("办结",),
        pb.DISPOSITION_STEP_REOPENED: ("重新处置",),
    },
)
VERIFICATION_METHODS = Labels.of_enum(
    pb.VerificationMethod,
    "VERIFICATION_METHOD_",
    {
        pb.VERIFICATION_METHOD_VIDEO_CALL: ("视频点名",),
        pb.VERIFICATION_METHOD_ON_SITE: ("现地核查",),
        pb.VERIFICATION_METHOD_PHONE: ("电话核实",),
        pb.VERIFICATION_METHOD_BIG_DATA: ("大数据复核",),
    },
)
DISPOSITION_FINDINGS = Labels.of_enum(
    pb.DispositionFinding,
    "DISPOSITION_FINDING_",
    {
        pb.DISPOSITION_FINDING_FALSE_ALARM: ("误报",),
        pb.DISPOSITION_FINDING_APPROVED_LEAVE: ("已批准请假",),
        pb.DISPOSITION_FINDING_DEVICE_FAULT: ("设备故障",),
        pb.DISPOSITION_FINDING_VIOLATION_CONFIRMED: ("违规属实",),
        pb.DISPOSITION_FINDING_ABSCONDING_CONFIRMED: ("脱管属实",),
        pb.DISPOSITION_FINDING_OFFENCE_CONFIRMED: ("重新犯罪属实",),
    },
)
DISPOSITION_ACTIONS = Labels.of_enum(
    pb.DispositionAction,
    "DISPOSITION_ACTION_",
    {
        pb.DISPOSITION_ACTION_NONE: ("无",),
        pb.DISPOSITION_ACTION_TALK: ("谈话教育",),
        pb.DISPOSITION_ACTION_REPRIMAND: ("训诫",),
        pb.DISPOSITION_ACTION_WARNING: ("警告",),
        pb.DISPOSITION_ACTION_PENALTY_REQUESTED: ("提请治安管理处罚",),
        pb.DISPOSITION_ACTION_REVOCATION_REQUESTED: ("提请撤销缓刑假释或收监执行",),
    },
)
