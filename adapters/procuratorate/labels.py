"""The words of the procuratorate's ledger for the values it uses: finding
categories (类别) and record types (记录类型). Each value's Chinese label comes
first (written on export and in alert texts), then the further spellings
``import`` accepts. Severities (严重程度) are the core's (alerts use them too)."""

from __future__ import annotations

from gateway.client.connectors.labels import Labels
from gateway.proto.silian.v1 import payloads_pb2 as pb

FINDING_CATEGORIES = Labels.of_enum(
    pb.FindingCategory,
    "FINDING_CATEGORY_",
    {
        pb.FINDING_CATEGORY_PROCURATORIAL_SUGGESTION: ("检察建议", "suggestion"),
        pb.FINDING_CATEGORY_CORRECTION_OF_VIOLATION: ("纠正违法", "纠正违法通知书", "correction"),
        pb.FINDING_CATEGORY_ORAL_CORRECTION: ("口头纠正", "oral"),
    },
)

FINDING = "finding"
CLOSE = "close"
REOPEN = "reopen"
#: 记录类型 of a ledger row: a finding, or a decision on a rectification.
RECORD_TYPES: Labels[str] = Labels(
    {
        FINDING: ("检察发现", FINDING, "发现问题"),
        CLOSE: ("结案", CLOSE, "销号", "closed"),
        REOPEN: ("重新整改", REOPEN, "退回整改", "reopened"),
    }
)
