"""The agency side: what a partner's front-end processor (前置机) runs.

- ``agency``: ``AgencyClient``, one agency's signed connection to the gateway;
- ``submit``: submitting with retries of "try later" (the one place that does);
- ``inbox``: ``InboxReader``, the one reader of an inbox — checks the gateway's
  signature of every delivery, acknowledges in batches;
- ``keys``: the agency's key files and the gateway's public keys;
- ``tls``: TLS and mTLS credentials of the channel (CA bundle, client certificate);
- ``connectors``: native files in and out (``silian <agency> …``).

It imports no SQLAlchemy, pika or Alembic: an agency installs the package
without the server's dependencies and runs its connector.
"""

from gateway.client.agency import AgencyClient, build_envelope
from gateway.client.inbox import InboxReader, Refusal
from gateway.client.submit import submit_many, submit_one
from gateway.client.tls import ClientTls, channel_credentials

#: Why a delivery is not one the gateway signed for an agency; None if it is.
from gateway.security.deliveries import delivery_problem as check_delivery

__all__ = [
    "AgencyClient",
    "ClientTls",
    "InboxReader",
    "Refusal",
    "build_envelope",
    "channel_credentials",
    "check_delivery",
    "submit_many",
    "submit_one",
]
