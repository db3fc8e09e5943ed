"""The exchange policy: who may send which kind, who receives it, in which view.

The policy is a TOML file a county IT officer can read and edit; the shipped
default (``gateway/defaults/policy.toml``) documents the format in its
comments. ``Policy.load`` checks the whole file and refuses it, with a
ValueError naming the file and the offending principal or route, if it names
an unknown kind, view, condition or recipient, repeats a route id, or has two
routes of one kind to the same recipient. Views and conditions (and adapter
kinds) must be registered before a policy naming them is loaded.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway import kinds, views

DEFAULT_FILE = Path(__file__).with_name("defaults") / "policy.toml"
SUPPORTED_VERSION = 1
ROLES = frozenset({"agency", "auditor", "gateway"})

# Principal ids appear in broker routing keys (<kind>.<unit>.<sender>): no dots.
_PRINCIPAL_ID = re.compile(r"[a-z][a-z0-9_-]*")
_TOP_KEYS = frozenset({"version", "principals", "routes"})
_PRINCIPAL_KEYS = frozenset({"display_name", "role", "may_send"})
_ROUTE_KEYS = frozenset({"id", "kind", "recipient", "view", "when", "purpose"})


@dataclass(frozen=True)
class Principal:
    """A party to the exchange: an agency, the gateway itself, or an auditor."""

    id: str
    display_name: str
    role: str
    may_send: frozenset[str]


@dataclass(frozen=True)
class Route:
    """Deliver messages of ``kind`` to ``recipient`` in ``view``, when condition ``when`` holds.

    ``purpose`` says why, for people: auditors see it in a subject's access log.
    """

    id: str
    kind: str
    recipient: str
    view: str
    when: str | None
    purpose: str = ""


class Policy:
    """A loaded, checked policy, identified by the digest of its file."""

    def __init__(self, principals: list[Principal], routes: list[Route], digest: str) -> None:
        self._principals = {principal.id: principal for principal in principals}
        self._routes = routes
        self.digest = digest

    @classmethod
    def load(cls, path: Path) -> Policy:
        """Read and check ``path``; ValueError naming the file and the problem if it is wrong."""
        data = path.read_bytes()
        try:
            document = tomllib.loads(data.decode("utf-8"))
            principals, routes = _parse(document)
        except (UnicodeDecodeError, ValueError) as exc:
            raise ValueError(f"policy file {path}: {exc}") from None
        return cls(principals, routes, hashlib.sha256(data).hexdigest())

    @classmethod
    def default(cls) -> Policy:
        """The policy shipped with the gateway (DESIGN §2)."""
        return cls.load(DEFAULT_FILE)

    @staticmethod
    def default_text() -> str:
        """The shipped policy file's text, for writing into a data directory."""
        return DEFAULT_FILE.read_text(encoding="utf-8")

    def principal(self, principal_id: str) -> Principal | None:
        return self._principals.get(principal_id)

    def principals(self) -> list[Principal]:
        """All principals, in file order."""
        return list(self._principals.values())

    def may_send(self, sender: str, kind: str) -> bool:
        """Whether ``sender`` is a principal allowed to send messages of ``kind``."""
        principal = self._principals.get(sender)
        return principal is not None and kind in principal.may_send

    def routes_for(self, kind: str) -> list[Route]:
        """The routes of ``kind``, in file order; their conditions are not yet evaluated."""
        return [route for route in self._routes if route.kind == kind]

    def route(self, route_id: str) -> Route | None:
        """The route with id ``route_id``, if this policy has one."""
        return next((route for route in self._routes if route.id == route_id), None)


def _parse(document: dict[str, Any]) -> tuple[list[Principal], list[Route]]:
    _reject_unknown_keys("the policy", document, _TOP_KEYS)
    version = document.get("version")
    if version != SUPPORTED_VERSION:
        raise ValueError(f"version must be {SUPPORTED_VERSION}, got {version!r}")
    tables = document.get("principals")
    if not isinstance(tables, dict) or not tables:
        raise ValueError("needs at least one [principals.<id>] table")
    principals = [_parse_principal(pid, table) for pid, table in tables.items()]
    entries = document.get("routes", [])
    if not isinstance(entries, list):
        raise ValueError("routes must be written as [[routes]] tables")
    by_id = {principal.id: principal for principal in principals}
    routes = [_parse_route(index, entry, by_id) for index, entry in enumerate(entries)]
    _reject_duplicate_routes(routes)
    return principals, routes


def _parse_principal(principal_id: str, table: object) -> Principal:
    where = f"principal {principal_id!r}"
    if not _PRINCIPAL_ID.fullmatch(principal_id):
        raise ValueError(f"{where}: id must be lower-case letters, digits, '-' or '_'")
    if not isinstance(table, dict):
        raise ValueError(f"{where} must be a table")
    _reject_unknown_keys(where, table, _PRINCIPAL_KEYS)
    display_name = table.get("display_name")
    if not isinstance(display_name, str) or not display_name.strip():
        raise ValueError(f"{where}: display_name is required")
    role = table.get("role")
    if role not in ROLES:
        raise ValueError(f"{where}: role must be one of {_listing(ROLES)}, got {role!r}")
    may_send = table.get("may_send", [])
    if not isinstance(may_send, list) or not all(isinstance(kind, str) for kind in may_send):
        raise ValueError(f"{where}: may_send must be a list of message kinds")
    for kind in may_send:
        _require_known_kind(where, kind)
    if role == "auditor" and may_send:
        raise ValueError(f"{where}: an auditor may not send messages")
    return Principal(principal_id, display_name, role, frozenset(may_send))


def _parse_route(index: int, entry: object, principals: dict[str, Principal]) -> Route:
    if not isinstance(entry, dict):
        raise ValueError(f"routes[{index}] must be a table")
    route_id = entry.get("id")
    if not isinstance(route_id, str) or not route_id.strip():
        raise ValueError(f"routes[{index}]: id is required")
    where = f"route {route_id!r}"
    _reject_unknown_keys(where, entry, _ROUTE_KEYS)
    kind, recipient, view = (_string(where, entry, key) for key in ("kind", "recipient", "view"))
    when = entry.get("when")
    _require_known_kind(where, kind)
    _check_recipient(where, principals.get(recipient), recipient)
    if view not in views.VIEWS:
        raise ValueError(f"{where}: unknown view {view!r} (known: {_listing(views.VIEWS)})")
    if when is not None:
        _check_condition(where, when, kind)
    purpose = entry.get("purpose", "")
    if not isinstance(purpose, str):
        raise ValueError(f"{where}: purpose must be text")
    return Route(route_id, kind, recipient, view, when, purpose.strip())


def _check_recipient(where: str, principal: Principal | None, recipient: str) -> None:
    if principal is None:
        raise ValueError(f"{where}: recipient {recipient!r} is not a principal of this policy")
    if principal.role != "agency":
        raise ValueError(
            f"{where}: recipient {recipient!r} has role {principal.role!r}; only agencies receive"
        )


def _check_condition(where: str, when: object, kind: str) -> None:
    if not isinstance(when, str) or when not in views.CONDITIONS:
        raise ValueError(
            f"{where}: unknown condition {when!r} (known: {_listing(views.CONDITIONS)})"
        )
    if not views.condition_applies_to(when, kind):
        raise ValueError(f"{where}: condition {when!r} does not apply to {kind} messages")


def _reject_duplicate_routes(routes: list[Route]) -> None:
    ids: set[str] = set()
    pairs: dict[tuple[str, str], str] = {}
    for route in routes:
        if route.id in ids:
            raise ValueError(f"route {route.id!r} is defined more than once")
        ids.add(route.id)
        earlier = pairs.setdefault((route.kind, route.recipient), route.id)
        if earlier != route.id:
            raise ValueError(
                f"route {route.id!r}: {route.recipient!r} already receives {route.kind} "
                f"by route {earlier!r}"
            )


def _require_known_kind(where: str, kind: str) -> None:
    if kind not in kinds.known_kinds():
        raise ValueError(f"{where}: unknown message kind {kind!r}")


def _string(where: str, table: dict[str, Any], key: str) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{where}: {key} is required")
    return value


def _reject_unknown_keys(where: str, table: dict[str, Any], allowed: frozenset[str]) -> None:
    unknown = set(table) - allowed
    if unknown:
        raise ValueError(f"{where} has unknown keys {_listing(unknown)}")


def _listing(names: Iterable[str]) -> str:
    return ", ".join(sorted(names))
