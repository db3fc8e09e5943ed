"""The bureau's view of a partner's service record: people resolved.

A partner names the people it served by the pseudonyms the gateway issued to
it (``subject_pseudonyms``). The bureau must match records to its case files,
so its view (``resolved``) replaces each pseudonym, in place and in order, by
the resident ID (居民身份证号) behind it; a pseudonym the gateway never issued
stays as it is (the partner linkage refuses such records, so none is stored).
Other kinds pass unchanged.
"""

from __future__ import annotations

from google.protobuf.message import Message

from gateway.domain.routing import identified_view
from gateway.domain.views import ViewContext, register_view
from gateway.proto.silian.v1 import payloads_pb2 as pb

RESOLVED = "resolved"


def resolved(message: Message, ctx: ViewContext) -> Message:
    """``message`` with the pseudonyms of a service record replaced by resident IDs."""
    if isinstance(message, pb.ServiceRecord):
        resolved = ctx.resolve_pseudonyms(list(message.subject_pseudonyms))
        people = [resolved.get(p, p) for p in message.subject_pseudonyms]
        del message.subject_pseudonyms[:]
        message.subject_pseudonyms.extend(people)
    return message


def register() -> None:
    """Make the ``resolved`` view available to policies (idempotent); it shows
    identity, so the bureau sees a record under the partner's own mid."""
    register_view(RESOLVED, resolved)
    identified_view(RESOLVED)
