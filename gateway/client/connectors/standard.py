"""Export formats every full-view recipient shares: roster changes, alerts and
the bureau's dispositions of alerts."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC

from google.protobuf.message import Message

from gateway.client.connectors.exports import ExportFormat
from gateway.client.connectors.fields import local_text
from gateway.client.connectors.labels import (
    ALERT_TYPES,
    CORRECTION_CATEGORIES,
    DISPOSITION_ACTIONS,
    DISPOSITION_FINDINGS,
    DISPOSITION_STEPS,
    GENDERS,
    ROSTER_CHANGE_TYPES,
    SEVERITIES,
    SUPERVISION_LEVELS,
    VERIFICATION_METHODS,
    Labels,
)
from gateway.domain import kinds
from gateway.proto.silian.v1 import payloads_pb2 as pb


def _label(labels: Labels[int], value: int) -> str:
    """The Chinese label of an enum value; empty for the unset value 0."""
    return labels.label(value) if value else ""


def _roster_rows(message: Message) -> Iterable[Sequence[str]]:
    assert isinstance(message, pb.RosterChange)
    change, subject = message, message.subject
    yield (
        change.change_id,
        _label(ROSTER_CHANGE_TYPES, change.change_type),
        subject.resident_id,
        subject.name,
        _label(GENDERS, subject.gender),
        subject.birth_date,
        subject.address,
        change.unit_code,
        _label(CORRECTION_CATEGORIES, change.category),
        _label(SUPERVISION_LEVELS, change.supervision_level),
        change.effective_date,
        change.term_start_date,
        change.term_end_date,
        change.offence,
        "是" if change.drug_related else "否",
        change.leave_start_date,
        change.leave_end_date,
        change.destination,
        change.new_unit_code,
        change.reason,
        change.officer,
    )


#: 矫正对象变更 — one row per roster.change (full view).
ROSTER_CHANGES = ExportFormat(
    kind=kinds.ROSTER_CHANGE,
    stem="roster",
    headers=(
        "变更编号",
        "变更类型",
        "身份证号",
        "姓名",
        "性别",
        "出生日期",
        "住址",
        "单位代码",
        "矫正类别",
        "管理等级",
        "生效日期",
        "矫正起始日期",
        "矫正截止日期",
        "罪名",
        "涉毒",
        "外出起始日期",
        "外出截止日期",
        "目的地",
        "新执行地代码",
        "原因",
        "登记人",
    ),
    rows=_roster_rows,
)


def _alert_rows(message: Message) -> Iterable[Sequence[str]]:
    assert isinstance(message, pb.Alert)
    alert = message
    yield (
        alert.alert_id,
        _label(ALERT_TYPES, alert.alert_type),
        _label(SEVERITIES, alert.severity),
        alert.unit_code,
        alert.subject.resident_id,
        alert.subject.name,
        alert.description,
        ";".join(alert.evidence_mids),
        local_text(alert.raised_at.ToDatetime(tzinfo=UTC)),
    )


#: 预警 — one row per alert.
ALERTS = ExportFormat(
    kind=kinds.ALERT,
    stem="alerts",
    headers=(
        "预警编号",
        "预警类型",
        "严重程度",
        "单位代码",
        "身份证号",
        "姓名",
        "预警描述",
        "证据消息编号",
        "预警时间",
    ),
    rows=_alert_rows,
)


def _disposition_rows(message: Message) -> Iterable[Sequence[str]]:
    assert isinstance(message, pb.AlertDisposition)
    step = message
    yield (
        step.disposition_id,
        step.alert_id,
        _label(ALERT_TYPES, step.alert_type),
        step.unit_code,
        _label(DISPOSITION_STEPS, step.step),
        _label(VERIFICATION_METHODS, step.method),
        _label(DISPOSITION_FINDINGS, step.finding),
        _label(DISPOSITION_ACTIONS, step.action),
        step.officer,
        local_text(step.occurred_at.ToDatetime(tzinfo=UTC)),
        step.notes,
        step.reason,
    )


#: 预警处置 — one row per step of an alert's disposal (闭环).
DISPOSITIONS = ExportFormat(
    kind=kinds.ALERT_DISPOSITION,
    stem="dispositions",
    headers=(
        "处置编号",
        "预警编号",
        "预警类型",
        "单位代码",
        "处置环节",
        "核查方式",
        "核查结论",
        "处置措施",
        "责任人",
        "时间",
        "备注",
        "理由",
    ),
    rows=_disposition_rows,
)
