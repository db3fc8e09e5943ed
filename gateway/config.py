"""Settings: defaults, overridden by ``<data-dir>/config.toml``, then by
``SILIAN_*`` environment variables, then by command-line options."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

DEFAULT_DATA_DIR = Path(".silian")


@dataclass(frozen=True)
class Settings:
    """Everything the gateway needs to know to run. Field docs are the config reference."""

    data_dir: Path = DEFAULT_DATA_DIR
    #: SQLAlchemy URL; default a SQLite file in the data directory.
    database_url: str = ""
    #: AMQP URL of RabbitMQ; for a cluster, the URLs of several nodes separated by
    #: commas: every connection goes to the first node that answers, and fails
    #: over to the others when its node goes.
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/%2F"
    #: Prefix of every exchange and queue name.
    broker_prefix: str = "silian"
    #: RabbitMQ management API (``silian feed grant``); unset: port 15672 on the
    #: AMQP host, and ``rabbitmqctl`` when that does not answer.
    broker_management_url: str = ""
    #: The gateway's principal id: token audience and signer of receipts.
    gateway_id: str = "silian-gateway"
    #: gRPC listen address (the address agency clients connect to by default).
    listen: str = "127.0.0.1:7443"
    #: Share the listen port with other gateway processes on this host
    #: (SO_REUSEPORT; ``silian serve --workers N`` sets it for its workers).
    #: Off, a second gateway on a taken port fails to start.
    reuse_port: bool = False
    #: Agency side: JWKS file of the gateway's public keys (as ``silian keys gateway``
    #: prints it); every delivery's signature is checked against it. Unset: the
    #: gateway key in this data directory, if there is one; else the inbox cannot be read.
    gateway_jwks: str = ""
    #: Largest accepted payload, in bytes.
    max_message_bytes: int = 4 * 1024 * 1024
    #: Allowed clock difference for token and signature times, in seconds.
    clock_skew_seconds: int = 120
    #: Longest allowed bearer-token lifetime, in seconds.
    max_token_lifetime_seconds: int = 600
    #: Days without a service record after which a partner's referral of a person
    #: ends (counted from the referral or the partner's last record); 0: never.
    referral_idle_days: int = 365
    #: Redeliveries before a delivery goes to the dead-letter queue.
    delivery_limit: int = 5
    #: Serve gRPC server reflection.
    reflection: bool = True
    #: TLS server certificate and key (PEM files); TLS is off when unset.
    tls_cert: str = ""
    tls_key: str = ""
    #: CA bundle for client certificates; set it to require mTLS.
    client_ca: str = ""
    #: Serve without TLS on an address other than loopback (never in production).
    insecure_plaintext_on_network: bool = False
    #: Agency side: CA bundle (PEM) the gateway's certificate is checked against;
    #: set it to connect over TLS.
    ca_bundle: str = ""
    #: Agency side: client certificate and its key (PEM) for mTLS.
    client_cert: str = ""
    client_key: str = ""
    #: Log format: "json" (production) or "console".
    log_format: str = "json"
    #: Seconds a shutdown waits for in-flight calls.
    shutdown_grace_seconds: float = 10.0
    #: Most messages stored in one group-commit transaction (1: a commit each).
    commit_batch: int = 500
    #: Unconfirmed publishes the relay keeps in flight (1: a blocking confirm each).
    relay_window: int = 500
    #: Outbox rows the relay reads per round.
    relay_batch: int = 2000
    #: Messages in progress (being checked or awaiting commit) before the gateway
    #: sheds load with RESOURCE_EXHAUSTED and a retry hint.
    max_in_progress: int = 5000
    #: Per-agency limits in messages per second, e.g. "police=1000, ngo=50".
    rate_limits: str = ""
    #: Failed authentications per caller address and minute before its calls are
    #: refused (RESOURCE_EXHAUSTED) until the minute is over.
    max_auth_failures_per_minute: int = 120
    #: Concurrent Receive streams per agency (each holds a broker connection);
    #: past it a new one is refused RESOURCE_EXHAUSTED.
    max_receive_streams: int = 8
    #: Time zone of the bureau's calendar (dates in payloads are local dates).
    timezone: str = "Asia/Shanghai"
    #: Serve Prometheus metrics on this host:port (path /metrics), e.g.
    #: "127.0.0.1:9464"; unset: no metrics endpoint. ``serve --workers N`` gives
    #: worker i the port + i.
    metrics_listen: str = ""
    #: Seconds a replica's lease on a duty that runs once (relay, sweep, checkpoints)
    #: lasts unrenewed: when its holder dies, another replica takes it over within
    #: this plus a third of it. Renewed every third of it.
    lease_seconds: float = 3.0
    #: Seconds between runs of the linkages' time-driven rules (deadlines, silence).
    sweep_interval_seconds: float = 60.0
    #: Purge the payloads of people whose supervision ended more than this many
    #: years ago (the archive rules' period; 0: keep everything).
    retention_years: int = 5
    #: Seconds between the gateway's own retention runs (first one at start).
    retention_interval_seconds: float = 86400.0
    #: Deadlines of alert disposal (disposal.toml) multiplied by this: 1 in
    #: production; below 1 where time is compressed (``silian demo``, drills).
    disposal_time_scale: float = 1.0
    #: Origin line of the audit log's checkpoints, also the name of the audit key
    #: (no spaces or '+'); default "<gateway_id>/audit".
    audit_origin: str = ""
    #: Sign a checkpoint once the audit log has grown by this many entries …
    checkpoint_every_entries: int = 1000
    #: … or when it has grown at all and this many seconds passed since the last one.
    checkpoint_interval_seconds: float = 10.0

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'silian.db').resolve()}"

    @property
    def config_file(self) -> Path:
        return self.data_dir / "config.toml"

    @property
    def policy_file(self) -> Path:
        return self.data_dir / "policy.toml"

    @property
    def disposal_file(self) -> Path:
        """Deadlines of alert disposal (``gateway.domain.deadlines``); optional."""
        return self.data_dir / "disposal.toml"

    @property
    def keys_dir(self) -> Path:
        return self.data_dir / "keys"

    @property
    def gateway_key_file(self) -> Path:
        """The gateway's own signing key (receipts, deliveries)."""
        return self.keys_dir / "gateway.pem"

    @property
    def audit_log_origin(self) -> str:
        return self.audit_origin or f"{self.gateway_id}/audit"


def _coerce(name: str, value: Any) -> Any:
    kind = {f.name: f.type for f in fields(Settings)}[name]
    if kind == "Path":
        return Path(value)
    if kind == "bool":
        return (
            value if isinstance(value, bool) else str(value).lower() in {"1", "true", "yes", "on"}
        )
    if kind == "int":
        return int(value)
    if kind == "float":
        return float(value)
    return str(value)


def load_settings(data_dir: Path | None = None, **overrides: Any) -> Settings:
    """Settings for ``data_dir`` (default ``$SILIAN_HOME`` or ./.silian)."""
    directory = data_dir or Path(os.environ.get("SILIAN_HOME", DEFAULT_DATA_DIR))
    settings = Settings(data_dir=directory)
    names = {f.name for f in fields(Settings)} - {"data_dir"}
    values: dict[str, Any] = {}
    if settings.config_file.exists():
        with settings.config_file.open("rb") as handle:
            document = tomllib.load(handle)
        unknown = set(document) - names
        if unknown:
            raise ValueError(
                f"{settings.config_file}: unknown settings {', '.join(sorted(unknown))}"
            )
        values.update(document)
    for name in names:
        env = os.environ.get(f"SILIAN_{name.upper()}")
        if env is not None:
            values[name] = env
    values.update({k: v for k, v in overrides.items() if v is not None})
    return replace(settings, **{k: _coerce(k, v) for k, v in values.items()})
