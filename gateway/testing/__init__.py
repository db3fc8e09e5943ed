"""The harness the tests, ``silian demo`` and ``benchmarks/`` share — one of each:

- ``BackgroundGateway``: a whole gateway in a thread of this process;
- ``GatewayProcess``: ``silian serve`` as its own process, to kill and restart;
- ``free_port`` and ``wait_health``: a port for a gateway, and waiting until
  its health service reports SERVING (or NOT_SERVING);
- ``postgres_schema``, ``delete_broker_names``, ``register_principals``,
  ``agency_client``: a database of its own, cleaning the broker up, principals
  with keys, and a client that checks the gateway's signature of deliveries;
- ``serving_mtls``: a CA and certificates of its own, and settings serving mTLS;
- ``Payloads`` and the functions of a shared one (``resident_id``,
  ``enrolment``, ``verification_hit`` …): valid payloads of every kind agencies send.

It runs the server, so it belongs to the server's install; the agency side
(``gateway.client``) never imports it.
"""

from gateway.testing.health import (
    NOT_SERVING,
    SERVING,
    GatewayExited,
    free_port,
    wait_health,
)
from gateway.testing.inprocess import BackgroundGateway
from gateway.testing.payloads import (
    BAOJI_UNITS,
    Payloads,
    enrolment,
    inspection_finding,
    referral,
    resident_id,
    service_record,
    verification_hit,
    verification_result,
)
from gateway.testing.process import GatewayProcess
from gateway.testing.resources import (
    LOCAL_AMQP_URL,
    LOCAL_POSTGRES_URL,
    agency_client,
    delete_broker_names,
    postgres_schema,
    register_principals,
    serving_mtls,
)

__all__ = [
    "BAOJI_UNITS",
    "LOCAL_AMQP_URL",
    "LOCAL_POSTGRES_URL",
    "NOT_SERVING",
    "SERVING",
    "BackgroundGateway",
    "GatewayExited",
    "GatewayProcess",
    "Payloads",
    "agency_client",
    "delete_broker_names",
    "enrolment",
    "free_port",
    "inspection_finding",
    "postgres_schema",
    "referral",
    "register_principals",
    "resident_id",
    "service_record",
    "serving_mtls",
    "verification_hit",
    "verification_result",
    "wait_health",
]
