"""Least-privilege RabbitMQ users for the bureau's feed readers (DESIGN §6a).

A feed reader may read the feed and nothing else: it may declare, bind and
consume queues of its own — server-named (``amq.gen-…``, what ``silian feed
tail`` uses) or named ``<prefix>.reader.<name>.…`` — bind them to the feed
exchange, and consume the feed stream. It may not bind to the inbox (or any
other) exchange, read anyone's inbox, or publish anywhere: RabbitMQ refuses a
publish without *write* on the exchange, and the user's write permission
covers only its own queues (exchanges cannot be named ``amq.…``).

Users are made through the management HTTP API when the management plugin
answers, else with ``rabbitmqctl`` on this machine.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Protocol

import structlog

from gateway.broker.topology import Names, connection_parameters

log = structlog.get_logger(__name__)

#: A reader's name: also its RabbitMQ user name and part of its queue names.
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
#: The management plugin's default port (used when no management URL is set).
MANAGEMENT_PORT = 15672
_TIMEOUT = 30.0


class BrokerAdminError(RuntimeError):
    """The broker refused or could not be asked; the message says what to do."""


@dataclass(frozen=True)
class Permissions:
    """RabbitMQ's configure / write / read regular expressions on one vhost."""

    configure: str
    write: str
    read: str


def feed_reader_permissions(names: Names, name: str) -> Permissions:
    """What a feed reader ``name`` may do: its own queues, and read the feed."""
    own = rf"^(amq\.gen-.*|{re.escape(names.prefix)}\.reader\.{re.escape(name)}\..*)$"
    feed = rf"{re.escape(names.feed_exchange)}|{re.escape(names.feed_stream)}"
    read = rf"^({feed}|amq\.gen-.*|{re.escape(names.prefix)}\.reader\.{re.escape(name)}\..*)$"
    return Permissions(configure=own, write=own, read=read)


def check_name(name: str) -> str:
    if not NAME.match(name):
        raise ValueError(
            f"reader name {name!r}: use 1-63 lowercase letters, digits, '-' or '_', "
            "starting with a letter or digit"
        )
    return name


class Admin(Protocol):
    """Makes and removes users on one RabbitMQ vhost."""

    def put_user(self, name: str, password: str, permissions: Permissions) -> None:
        """Create user ``name`` (or set its password) with exactly ``permissions``."""
        ...

    def delete_user(self, name: str) -> None:
        """Remove user ``name``; BrokerAdminError if there is none."""
        ...


class ManagementApi:
    """The management plugin's HTTP API, as the gateway's own broker user."""

    def __init__(self, base_url: str, user: str, password: str, vhost: str) -> None:
        self._base = base_url.rstrip("/")
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        self._auth = f"Basic {token}"
        self._vhost = vhost

    def answers(self) -> bool:
        """Whether the management API is there (and lets this user in)."""
        try:
            self._call("GET", "/api/overview")
        except BrokerAdminError:
            return False
        return True

    def put_user(self, name: str, password: str, permissions: Permissions) -> None:
        user = urllib.parse.quote(name, safe="")
        self._call("PUT", f"/api/users/{user}", {"password": password, "tags": ""})
        self._call(
            "PUT",
            f"/api/permissions/{urllib.parse.quote(self._vhost, safe='')}/{user}",
            {
                "configure": permissions.configure,
                "write": permissions.write,
                "read": permissions.read,
            },
        )

    def delete_user(self, name: str) -> None:
        self._call("DELETE", f"/api/users/{urllib.parse.quote(name, safe='')}")

    def _call(self, method: str, path: str, body: dict[str, str] | None = None) -> None:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self._base + path, data=data, method=method)
        request.add_header("authorization", self._auth)
        request.add_header("content-type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=_TIMEOUT):
                return
        except urllib.error.HTTPError as err:
            if err.code == 404 and method == "DELETE":
                raise BrokerAdminError(
                    f"RabbitMQ has no user {path.rsplit('/', 1)[-1]!r}"
                ) from None
            raise BrokerAdminError(
                f"RabbitMQ's management API answered {method} {path} with {err.code} {err.reason}"
            ) from None
        except (urllib.error.URLError, OSError) as err:
            raise BrokerAdminError(f"RabbitMQ's management API at {self._base}: {err}") from None


class Rabbitmqctl:
    """``rabbitmqctl`` of the local node (needs the node's Erlang cookie: run as
    root or the rabbitmq user). Passwords go through stdin, never argv."""

    def __init__(self, vhost: str, executable: str = "rabbitmqctl") -> None:
        self._vhost = vhost
        self._executable = executable

    def put_user(self, name: str, password: str, permissions: Permissions) -> None:
        added = self._run(["add_user", name], stdin=password, check=False)
        if added.returncode != 0:
            if "already exists" not in added.stderr + added.stdout:
                raise self._failed("add_user", added)
            self._run(["change_password", name], stdin=password)
        self._run(
            [
                "set_permissions",
                "-p",
                self._vhost,
                name,
                permissions.configure,
                permissions.write,
                permissions.read,
            ]
        )

    def delete_user(self, name: str) -> None:
        done = self._run(["delete_user", name], check=False)
        if done.returncode != 0:
            if "does not exist" in done.stderr + done.stdout:
                raise BrokerAdminError(f"RabbitMQ has no user {name!r}")
            raise self._failed("delete_user", done)

    def _run(
        self, args: list[str], *, stdin: str = "", check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        try:
            done = subprocess.run(
                [self._executable, "-q", *args],
                input=stdin,
                capture_output=True,
                text=True,
                timeout=120,
            )
        except (OSError, subprocess.TimeoutExpired) as err:
            raise BrokerAdminError(f"could not run {self._executable}: {err}") from None
        if check and done.returncode != 0:
            raise self._failed(args[0], done)
        return done

    def _failed(self, command: str, done: subprocess.CompletedProcess[str]) -> BrokerAdminError:
        said = (done.stderr.strip() or done.stdout.strip()).splitlines()
        return BrokerAdminError(
            f"rabbitmqctl {command} failed (exit {done.returncode}): "
            + (said[-1] if said else "no output")
        )


def admin_for(amqp_url: str, management_url: str = "") -> Admin:
    """The management API when it answers (at ``management_url``, default port
    15672 on the broker's host, as the gateway's own user), else ``rabbitmqctl``."""
    parameters = connection_parameters(amqp_url)
    credentials = parameters.credentials
    user = getattr(credentials, "username", "")
    password = getattr(credentials, "password", "")
    base = management_url or f"http://{parameters.host}:{MANAGEMENT_PORT}"
    api = ManagementApi(base, user, password, parameters.virtual_host)
    if api.answers():
        return api
    if shutil.which("rabbitmqctl") is None:
        raise BrokerAdminError(
            f"RabbitMQ's management API does not answer at {base} and rabbitmqctl is not "
            "installed here: enable the management plugin "
            "(rabbitmq-plugins enable rabbitmq_management) or run this on the broker's host"
        )
    return Rabbitmqctl(parameters.virtual_host)


def reader_url(amqp_url: str, name: str, password: str) -> str:
    """``amqp_url`` with the reader's credentials instead of the gateway's."""
    parts = urllib.parse.urlsplit(amqp_url)
    host = parts.hostname or "127.0.0.1"
    netloc = (
        f"{urllib.parse.quote(name, safe='')}:{urllib.parse.quote(password, safe='')}@"
        + (f"[{host}]" if ":" in host else host)
        + (f":{parts.port}" if parts.port else "")
    )
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


def grant_feed_reader(admin: Admin, amqp_url: str, names: Names, name: str) -> str:
    """Create (or renew the password of) feed reader ``name``; returns its AMQP URL."""
    check_name(name)
    password = secrets.token_urlsafe(24)
    admin.put_user(name, password, feed_reader_permissions(names, name))
    log.info("feed.reader_granted", reader=name)
    return reader_url(amqp_url, name, password)


def revoke_feed_reader(admin: Admin, name: str) -> None:
    """Remove feed reader ``name``: it can no longer connect."""
    check_name(name)
    admin.delete_user(name)
    log.info("feed.reader_revoked", reader=name)
