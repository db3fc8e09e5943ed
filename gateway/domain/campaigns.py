"""Verification campaigns (核查专项): the bureau's ``verification.request`` names
people and a response deadline; the police's ``verification.result`` names
the request it answers. A campaign counts the people asked, those answered
for (at least one result naming the request), the results and the hits; once
its deadline passes with people unanswered the gateway raises one
CAMPAIGN_UNANSWERED alert. A request without a deadline never raises one.

A result naming a request the gateway did not see (made outside it) is
accepted and not counted; a request id used twice is refused
(CAMPAIGN_EXISTS). Pure: the store keeps ``Campaign`` rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from gateway.domain.errors import FailedPrecondition, FieldViolation
from gateway.proto.silian.v1 import payloads_pb2 as pb


@dataclass
class Campaign:
    """One verification request as the gateway tracks it."""

    request_id: str
    mid: str
    unit_code: str
    reason: str
    requested_at: datetime
    deadline: datetime | None
    #: Subject keys of the people asked, and of those answered for.
    asked: list[str] = field(default_factory=list)
    answered: list[str] = field(default_factory=list)
    results: int = 0
    hits: int = 0
    unanswered_alerted: bool = False

    @classmethod
    def requested(
        cls, request: pb.VerificationRequest, mid: str, asked: list[str], at: datetime
    ) -> Campaign:
        deadline = (
            request.response_deadline.ToDatetime(tzinfo=UTC)
            if request.HasField("response_deadline")
            else None
        )
        return cls(
            request_id=request.request_id,
            mid=mid,
            unit_code=request.unit_code,
            reason=request.reason,
            requested_at=at,
            deadline=deadline,
            asked=sorted(set(asked)),
        )

    def answer(self, subject_key: str, outcome: int) -> None:
        """Count one result naming this campaign."""
        self.results += 1
        if outcome == pb.CHECK_OUTCOME_HIT:
            self.hits += 1
        if subject_key in self.asked and subject_key not in self.answered:
            self.answered.append(subject_key)

    @property
    def unanswered(self) -> int:
        return len(self.asked) - len(self.answered)

    @property
    def completion(self) -> float:
        """Share of the people asked that were answered for (1.0 if nobody was asked)."""
        return len(self.answered) / len(self.asked) if self.asked else 1.0

    def overdue(self, now: datetime) -> bool:
        """Past its deadline with people unanswered, not yet alerted about."""
        return (
            self.deadline is not None
            and now > self.deadline
            and self.unanswered > 0
            and not self.unanswered_alerted
        )

    def state(self, now: datetime) -> str:
        """OPEN, COMPLETE or OVERDUE (past its deadline with people unanswered)."""
        if self.unanswered == 0:
            return "COMPLETE"
        if self.deadline is not None and now > self.deadline:
            return "OVERDUE"
        return "OPEN"


def repeated_campaign(campaign: Campaign) -> FailedPrecondition:
    return FailedPrecondition(
        "CAMPAIGN_EXISTS",
        f"verification request {campaign.request_id} was already sent "
        f"({campaign.requested_at.isoformat()}); give a new request a new id",
        [FieldViolation("payload.request_id", "already used")],
    )
