"""TLS on the agency's side: the credentials a channel to the gateway uses.

A CA bundle makes the channel TLS (the gateway's certificate is checked
against it); a client certificate and key add mTLS. They come from the
command-line options or the ``ca_bundle``, ``client_cert`` and ``client_key``
settings; with none of them the channel is plaintext (a gateway on loopback).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import grpc

from gateway.config import Settings


def _read(path: Path | str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as err:
        raise ValueError(f"{what} {path}: {err.strerror or err}") from None


@dataclass(frozen=True)
class ClientTls:
    """Where the TLS material of a client is: ``ca_bundle`` (PEM, required for
    TLS) and, for mTLS, ``client_cert`` with ``client_key``."""

    ca_bundle: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        ca_bundle: Path | None = None,
        client_cert: Path | None = None,
        client_key: Path | None = None,
    ) -> ClientTls:
        """The options given, else the settings."""

        def pick(option: Path | None, setting: str) -> Path | None:
            return option if option is not None else (Path(setting) if setting else None)

        return cls(
            pick(ca_bundle, settings.ca_bundle),
            pick(client_cert, settings.client_cert),
            pick(client_key, settings.client_key),
        )

    def credentials(self) -> grpc.ChannelCredentials | None:
        """The channel credentials; None (plaintext) without a CA bundle.
        ValueError naming the file or setting at fault."""
        if (self.client_cert is None) != (self.client_key is None):
            raise ValueError(
                "a client certificate needs its key: give both client_cert and client_key"
            )
        if self.ca_bundle is None:
            if self.client_cert is not None:
                raise ValueError(
                    "a client certificate needs the CA bundle of the gateway's certificate "
                    "(--ca-bundle or the ca_bundle setting)"
                )
            return None
        return channel_credentials(self.ca_bundle, self.client_cert, self.client_key)


def channel_credentials(
    ca_bundle: Path | str | bytes,
    client_cert: Path | str | bytes | None = None,
    client_key: Path | str | bytes | None = None,
) -> grpc.ChannelCredentials:
    """TLS credentials trusting ``ca_bundle``, presenting ``client_cert`` and
    ``client_key`` (mTLS) when given; each a file or the PEM bytes."""

    def pem(value: Path | str | bytes | None, what: str) -> bytes | None:
        if value is None or isinstance(value, bytes):
            return value
        return _read(value, what)

    return grpc.ssl_channel_credentials(
        root_certificates=pem(ca_bundle, "CA bundle"),
        private_key=pem(client_key, "client key"),
        certificate_chain=pem(client_cert, "client certificate"),
    )
