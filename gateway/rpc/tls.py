"""The gateway's TLS: server credentials that follow the certificate files, and
the rule that plaintext stays on loopback.

The credentials are grpc's dynamic ones: before each new connection's handshake
grpc asks ``ServerTls.fetch`` whether the certificate changed, and it answers
with the files' new contents when their modification stamps changed (or after
SIGHUP, ``reload``). A certificate and key that do not belong together — a
rotation half done — are not taken: the previous pair keeps serving and the
files are tried again at the next connection, so a rotation fails no call.
Connections already open keep the certificate they were made with.
"""

from __future__ import annotations

import ipaddress
import threading
from pathlib import Path

import grpc
import structlog

from gateway.config import Settings
from gateway.security.pki import key_matches

log = structlog.get_logger(__name__)


class PlaintextOnNetwork(ValueError):
    """``serve`` without TLS on an address other hosts can reach."""


def is_loopback(listen: str) -> bool:
    """True if ``listen`` (``host:port``, ``[v6]:port`` or ``unix:…``) is
    reachable from this machine only."""
    if listen.startswith(("unix:", "unix-abstract:")):
        return True
    host = listen.rsplit(":", 1)[0] if ":" in listen else listen
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name, or "" (every address)


def check_listen(settings: Settings) -> None:
    """Refuse plaintext on a network address unless the operator said so loudly."""
    if settings.tls_cert or settings.insecure_plaintext_on_network:
        return
    if not is_loopback(settings.listen):
        raise PlaintextOnNetwork(
            f"refusing to serve plaintext on {settings.listen}, which other hosts can reach: "
            "enable TLS with --tls-cert FILE --tls-key FILE, and --client-ca CA.pem for mTLS "
            "(or tls_cert, tls_key, client_ca in config.toml; `silian tls init DIR` makes a "
            "CA and certificates), or listen on 127.0.0.1; only for a closed test network: "
            "--insecure-plaintext-on-network"
        )


class ServerTls:
    """The certificate, key and (for mTLS) client CA files of the gateway, read
    again whenever they change."""

    def __init__(self, cert: Path, key: Path, client_ca: Path | None = None) -> None:
        self.cert, self.key, self.client_ca = cert, key, client_ca
        self._lock = threading.Lock()
        self._stamp = self._stamps()
        self._forced = False
        self._initial = self._load()

    @classmethod
    def for_settings(cls, settings: Settings) -> ServerTls | None:
        if not settings.tls_cert:
            return None
        if not settings.tls_key:
            raise ValueError("tls_cert needs tls_key, the certificate's private key")
        ca = Path(settings.client_ca) if settings.client_ca else None
        return cls(Path(settings.tls_cert), Path(settings.tls_key), ca)

    def _files(self) -> list[Path]:
        return [self.cert, self.key, *([self.client_ca] if self.client_ca else [])]

    def _stamps(self) -> tuple[tuple[int, int, int], ...]:
        stamps = []
        for path in self._files():
            try:
                found = path.stat()
            except OSError as err:
                raise ValueError(f"TLS file {path}: {err.strerror or err}") from None
            stamps.append((found.st_mtime_ns, found.st_size, found.st_ino))
        return tuple(stamps)

    def _load(self) -> grpc.ServerCertificateConfiguration:
        try:
            chain, key = self.cert.read_bytes(), self.key.read_bytes()
            ca = self.client_ca.read_bytes() if self.client_ca else None
        except OSError as err:
            raise ValueError(f"TLS file {err.filename}: {err.strerror or err}") from None
        try:
            matches = key_matches(chain, key)
        except ValueError as err:
            raise ValueError(f"TLS certificate {self.cert} or key {self.key}: {err}") from None
        if not matches:
            raise ValueError(f"TLS key {self.key} is not the key of certificate {self.cert}")
        return grpc.ssl_server_certificate_configuration([(key, chain)], root_certificates=ca)

    def credentials(self) -> grpc.ServerCredentials:
        return grpc.dynamic_ssl_server_credentials(
            self._initial,
            self.fetch,
            require_client_authentication=self.client_ca is not None,
        )

    def reload(self) -> None:
        """Read the files again at the next connection even if they look unchanged."""
        with self._lock:
            self._forced = True
        log.info("tls.reload_requested")

    def fetch(self) -> grpc.ServerCertificateConfiguration | None:
        """What grpc asks before a handshake: a new configuration, or None to keep
        the current one."""
        with self._lock:
            try:
                stamp = self._stamps()
                if stamp == self._stamp and not self._forced:
                    return None
                config = self._load()
            except ValueError as err:  # mid-rotation: keep serving the previous pair
                log.warning("tls.reload_failed", error=str(err))
                return None
            except Exception:  # never let a handshake fail on our account
                log.exception("tls.reload_failed")
                return None
            self._stamp, self._forced = stamp, False
        log.info("tls.reloaded", cert=str(self.cert))
        return config
