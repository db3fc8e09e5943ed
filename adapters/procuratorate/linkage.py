"""The procuratorate linkage's rules, run by the gateway (entry point
``silian.linkages``): the finding lifecycle (``adapters.procuratorate.findings``)
enforced on ``inspection.finding``, ``inspection.rectification`` and
``inspection.closure`` — a message out of order is refused with
FAILED_PRECONDITION — and a sweep raising FINDING_OVERDUE (high) once per
deadline for a finding past its rectification deadline with no rectification.
The default policy routes those alerts to the bureau and the procuratorate.

Importing this module (as the entry point does) adds the procuratorate's
payload rules (``adapters.procuratorate.validation``) to the gateway's.
"""

from __future__ import annotations

from collections.abc import Callable

from adapters.procuratorate import AGENCY, validation
from adapters.procuratorate.findings import Finding, Step, repeated_finding, unknown_finding
from adapters.procuratorate.labels import FINDING_CATEGORIES
from gateway.domain.kinds import INSPECTION_CLOSURE, INSPECTION_FINDING, INSPECTION_RECTIFICATION
from gateway.domain.linkage import Accepted, AlertDraft, LinkageContext
from gateway.proto.silian.v1 import payloads_pb2 as pb

_PREFIX = "finding:"

validation.register()


class ProcuratorateLinkage:
    """Finding lifecycle and deadlines."""

    name = AGENCY
    kinds = frozenset({INSPECTION_FINDING, INSPECTION_RECTIFICATION, INSPECTION_CLOSURE})

    def state_keys(self, accepted: Accepted, subject_key: Callable[[str], str]) -> list[str]:
        """The finding ``on_accepted`` reads, so a batch reads them in one query."""
        return [_PREFIX + str(getattr(accepted.message, "finding_id", ""))]

    def on_accepted(self, accepted: Accepted, ctx: LinkageContext) -> list[AlertDraft]:
        message = accepted.message
        if isinstance(message, pb.InspectionFinding):
            key = _PREFIX + message.finding_id
            existing = ctx.get(key)
            if existing is not None:
                raise repeated_finding(Finding.from_state(existing))
            finding = Finding.issue(message, accepted.mid, accepted.accepted_at)
            ctx.put(key, finding.to_state())
        elif isinstance(message, pb.InspectionRectification):
            _advance(ctx, message.finding_id, Step.RECTIFICATION, accepted)
        elif isinstance(message, pb.InspectionClosure):
            reopened = message.decision == pb.CLOSURE_DECISION_REOPENED
            step = Step.REOPENING if reopened else Step.CLOSURE
            _advance(ctx, message.finding_id, step, accepted)
        return []

    def sweep(self, ctx: LinkageContext) -> list[AlertDraft]:
        today = ctx.today
        drafts = []
        for key, value in ctx.items(_PREFIX):
            finding = Finding.from_state(value)
            if not finding.overdue(today):
                continue
            finding.overdue_alerted_for = finding.deadline
            ctx.put(key, finding.to_state())
            drafts.append(_overdue_alert(finding))
        return drafts


def _advance(ctx: LinkageContext, finding_id: str, step: Step, accepted: Accepted) -> None:
    key = _PREFIX + finding_id
    value = ctx.get(key)
    if value is None:
        raise unknown_finding(finding_id, step)
    finding = Finding.from_state(value)
    finding.advance(step, accepted.mid, accepted.accepted_at)
    ctx.put(key, finding.to_state())


def _overdue_alert(finding: Finding) -> AlertDraft:
    return AlertDraft(
        alert_type=pb.ALERT_TYPE_FINDING_OVERDUE,
        severity=pb.SEVERITY_HIGH,
        unit_code=finding.unit_code,
        description=(
            f"整改逾期 finding {finding.finding_id} ({FINDING_CATEGORIES.label(finding.category)}, "
            f"inspection {finding.inspection_id}) was due for rectification by "
            f"{finding.deadline} and is {finding.state} with no rectification report"
        ),
        evidence_mids=finding.evidence(),
    )
