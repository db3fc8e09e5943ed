"""When a partner's referral of a person ends (结束转介), and what keeps it alive.

A referral (``service.referral``) lets a partner (the NGO, the detox centre)
receive later roster changes of the person ("referred" routes). It ends

* **explicitly**, when the bureau sends a ``service.referral`` with
  ``action = REFERRAL_ACTION_CLOSE`` for the person: the closure reaches every
  partner the person is referred to, then their referrals end;
* **implicitly**, with the person's release (解除矫正) or termination (终止矫正):
  the roster change still reaches the partner, then the referral ends; and
  after ``referral_idle_days`` (a setting) without a service record of the
  partner naming the person (counted from the referral or the last record).

After it ends the partner receives nothing more about the person until the
bureau refers them again. Its service records about the person are still
taken (a session held before the end may be reported late).
"""

from __future__ import annotations

from google.protobuf.message import Message

from gateway.domain import kinds
from gateway.proto.silian.v1 import payloads_pb2 as pb

#: Roster changes after which the person is no longer under supervision.
ENDING_CHANGES = frozenset(
    {
        pb.ROSTER_CHANGE_TYPE_RELEASED_TERM_SERVED,
        pb.ROSTER_CHANGE_TYPE_RELEASED_PARDONED,
        pb.ROSTER_CHANGE_TYPE_TERMINATED_REVOKED,
        pb.ROSTER_CHANGE_TYPE_TERMINATED_IMPRISONED,
        pb.ROSTER_CHANGE_TYPE_TERMINATED_DEATH,
    }
)


def is_closure(kind: str, message: Message) -> bool:
    """Whether ``message`` is the bureau's closure of a referral."""
    return (
        kind == kinds.SERVICE_REFERRAL
        and isinstance(message, pb.ServiceReferral)
        and message.action == pb.REFERRAL_ACTION_CLOSE
    )


def is_referral(kind: str, message: Message) -> bool:
    """Whether ``message`` refers its person to a partner."""
    return kind == kinds.SERVICE_REFERRAL and not is_closure(kind, message)


def ends_referrals(kind: str, message: Message) -> bool:
    """Whether the referrals of the people ``message`` names end with it."""
    if is_closure(kind, message):
        return True
    return isinstance(message, pb.RosterChange) and message.change_type in ENDING_CHANGES


def served(kind: str, sender: str, message: Message) -> list[tuple[str, str]]:
    """(partner, pseudonym) of each person a partner's service record names:
    the record keeps their referrals alive."""
    if kind != kinds.SERVICE_RECORD or not isinstance(message, pb.ServiceRecord):
        return []
    return [(sender, pseudonym) for pseudonym in message.subject_pseudonyms]
