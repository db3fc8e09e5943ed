"""The gateway's Prometheus metrics (``prometheus-client``), one registry per process.

Every layer records what it sees here; ``gateway.rpc.observe`` samples what is
read from the database and the broker, and serves the registry on the
``metrics_listen`` address. Each replica serves its own; Prometheus adds them up
(deploy/grafana/silian.json). The README's "Metrics" table documents each one.
Label values are bounded: agencies and duties come from the policy and the
code, kinds outside the known ones count as ``other``, reasons are the domain's.
"""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from gateway.domain import kinds

REGISTRY = CollectorRegistry(auto_describe=True)

#: Seconds: from a few milliseconds (one commit) to minutes (a recipient offline).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800)

ACCEPTED = Counter(
    "silian_messages_accepted",
    "Messages accepted (stored, receipt signed), by sender and kind.",
    ["agency", "kind"],
    registry=REGISTRY,
)
REFUSED = Counter(
    "silian_messages_refused",
    "Messages and calls refused, by caller, kind and reason.",
    ["agency", "kind", "reason"],
    registry=REGISTRY,
)
ACCEPT_SECONDS = Histogram(
    "silian_accept_seconds",
    "From a message's arrival to its receipt (checks, group commit).",
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
PUBLISHED_SECONDS = Histogram(
    "silian_accepted_to_published_seconds",
    "From acceptance to the broker's confirm of each outbox row (inbox or feed).",
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
DELIVERED_SECONDS = Histogram(
    "silian_accepted_to_delivered_seconds",
    "From acceptance to the first hand-over to the recipient, by recipient.",
    ["agency"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
ACKNOWLEDGED_SECONDS = Histogram(
    "silian_accepted_to_acknowledged_seconds",
    "From acceptance to the recipient's acknowledgement, by recipient.",
    ["agency"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
BATCH_SIZE = Histogram(
    "silian_group_commit_batch_size",
    "Messages stored per group-commit transaction.",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
    registry=REGISTRY,
)
OPEN_STREAMS = Gauge(
    "silian_open_streams",
    "Receive streams open on this replica, by agency.",
    ["agency"],
    registry=REGISTRY,
)
OUTBOX_PENDING = Gauge(
    "silian_outbox_pending",
    "Outbox rows not yet published (the whole database).",
    registry=REGISTRY,
)
OUTBOX_OLDEST_SECONDS = Gauge(
    "silian_outbox_oldest_pending_seconds",
    "Age of the oldest unpublished outbox row (0 when none).",
    registry=REGISTRY,
)
DEAD_LETTERS = Gauge(
    "silian_dead_letters",
    "Messages in each agency's dead-letter queue.",
    ["agency"],
    registry=REGISTRY,
)
LEASE_HELD = Gauge(
    "silian_lease_held",
    "1 while this replica holds the lease of a duty that runs once (relay, sweep, checkpoint).",
    ["duty"],
    registry=REGISTRY,
)
REPLICAS = Gauge(
    "silian_replicas",
    "Gateway replicas that recorded a heartbeat in the last 10 seconds.",
    registry=REGISTRY,
)
AUDIT_SIZE = Gauge(
    "silian_audit_tree_size",
    "Entries in the audit log (its Merkle tree size).",
    registry=REGISTRY,
)
CHECKPOINT_SIZE = Gauge(
    "silian_audit_checkpoint_size",
    "Tree size of the latest signed checkpoint.",
    registry=REGISTRY,
)
CHECKPOINT_AGE = Gauge(
    "silian_audit_checkpoint_age_seconds",
    "Seconds since the latest signed checkpoint was made.",
    registry=REGISTRY,
)
SAMPLE_ERRORS = Counter(
    "silian_metrics_sample_errors",
    "Rounds in which the database or broker figures could not be read.",
    ["source"],
    registry=REGISTRY,
)


def kind_label(kind: str) -> str:
    """``kind`` if it is a known message kind, else ``other`` (bounded labels)."""
    return kind if kind in kinds.known_kinds() else "other"


def since(moment: datetime | None) -> float | None:
    """Seconds from ``moment`` to now (naive datetimes are UTC), or None."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max((datetime.now(UTC) - moment).total_seconds(), 0.0)
