"""Feed readers' broker users: what they may touch, their URL, and the
management API calls that make them (against a stand-in HTTP server; the real
broker is in tests/integration/test_feed_readers.py)."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, ClassVar

import pytest

from gateway.broker import Names
from gateway.broker.users import (
    BrokerAdminError,
    ManagementApi,
    feed_reader_permissions,
    grant_feed_reader,
    reader_url,
    revoke_feed_reader,
)

NAMES = Names("silian")


def test_a_reader_may_touch_its_own_queues_and_read_only_the_feed() -> None:
    allowed = feed_reader_permissions(NAMES, "ops")
    for resource in ("amq.gen-AbC", "silian.reader.ops.alerts"):
        assert re.match(allowed.configure, resource) and re.match(allowed.write, resource)
    for resource in ("silian.feed", "silian.feed.stream", "silian.reader.ops.alerts"):
        assert re.match(allowed.read, resource)
    for resource in (
        "silian.inbox",
        "silian.inbox.police",
        "silian.dlq.police",
        "silian.feed",
        "amq.default",
        "silian.reader.other.q",
        "silian.reader.ops",
    ):
        assert not re.match(allowed.write, resource), resource
    for resource in ("silian.inbox", "silian.inbox.police", "silian.feedx", "silian.reader.x.q"):
        assert not re.match(allowed.read, resource), resource


def test_the_reader_url_keeps_the_brokers_address_and_vhost() -> None:
    url = reader_url("amqps://gw:secret@mq.example:5671/bureau?heartbeat=30", "ops", "p/w+")
    assert url == "amqps://ops:p%2Fw%2B@mq.example:5671/bureau?heartbeat=30"


class _Api(BaseHTTPRequestHandler):
    calls: ClassVar[list[tuple[str, str, Any, str]]] = []
    users: ClassVar[set[str]] = set()

    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        self.calls.append((self.command, self.path, body, self.headers["authorization"]))
        user = self.path.rsplit("/", 1)[-1]
        if self.command == "DELETE" and user not in self.users:
            self.send_response(404)
        elif self.command == "DELETE":
            self.users.discard(user)
            self.send_response(204)
        else:
            if self.path.startswith("/api/users/"):
                self.users.add(user)
            self.send_response(204 if self.command == "PUT" else 200)
        self.end_headers()

    do_GET = do_PUT = do_DELETE = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def api() -> Iterator[ManagementApi]:
    server = HTTPServer(("127.0.0.1", 0), _Api)
    _Api.calls.clear()
    _Api.users.clear()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield ManagementApi(f"http://127.0.0.1:{server.server_port}", "gw", "secret", "/")
    server.shutdown()


def test_grant_puts_the_user_and_its_permissions_through_the_management_api(
    api: ManagementApi,
) -> None:
    assert api.answers()
    url = grant_feed_reader(api, "amqp://gw:secret@127.0.0.1:5672/%2F", NAMES, "ops")
    password = url.split(":")[2].split("@")[0]
    user, permissions = _Api.calls[1:]
    assert user[:3] == ("PUT", "/api/users/ops", {"password": password, "tags": ""})
    assert permissions[:2] == ("PUT", "/api/permissions/%2F/ops")
    assert permissions[2] == vars(feed_reader_permissions(NAMES, "ops"))
    assert user[3] == "Basic Z3c6c2VjcmV0"  # the gateway's own user: gw:secret
    assert len(password) >= 32


def test_revoke_deletes_the_user_and_names_one_that_is_not_there(api: ManagementApi) -> None:
    grant_feed_reader(api, "amqp://gw:secret@127.0.0.1:5672/%2F", NAMES, "ops")
    revoke_feed_reader(api, "ops")
    with pytest.raises(BrokerAdminError, match="RabbitMQ has no user 'ops'"):
        revoke_feed_reader(api, "ops")


def test_a_management_api_that_does_not_answer_is_said_so() -> None:
    assert not ManagementApi("http://127.0.0.1:9", "gw", "secret", "/").answers()
