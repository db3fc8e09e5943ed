"""The exchange policy: who may send which kind, who receives it, in which view.

The policy is a TOML file a county IT officer can read and edit; the shipped
default (``gateway/domain/defaults/policy.toml``) documents the format in its
comments. ``Policy.load`` checks the whole policy and refuses it, with a
ValueError naming the file and the offending principal, view or route, if it
names an unknown kind, view, condition or recipient, repeats a route id, or
has two routes of one kind to the same recipient. Views and conditions (and
adapter kinds) must be registered before a policy naming them is loaded.

**Adapter policies.** A linkage adapter ships the part of the policy about its
agency as ``policy.toml`` in its package (beside the module its
``silian.linkages`` entry point names): ``agency = "<principal>"``, the
routes that deliver to that agency or carry what it sends, and the declared
views they use. ``Policy.load`` loads every installed linkage (which registers
the views and conditions it brings) and merges the adapter policy of each
one whose agency the central file declares as a principal, in the order of
the principals, after the central file's routes. The central file has the
last word: a route (by id) or declared view (by name) there replaces the
adapter's. Two adapter policies may define the same route or view only
identically. An adapter policy may route only messages to its agency or of
kinds its agency may send.

**Declared views** (``[views.<name>]``, central file or adapter policy) list,
per message kind, the top-level payload fields a recipient gets; every other
field is cleared and every person in a kept field appears only as the
recipient's pseudonym and age band, as in the ``pseudonymous`` view — a
declared view never shows more than that view, and listing a field it
clears is an error. One name means one declaration within a process.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.resources
import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf.message import Message

from gateway.domain import kinds, views
from gateway.domain.registry import linkage_entry_points

DEFAULT_FILE = Path(__file__).with_name("defaults") / "policy.toml"
#: File name of an adapter policy inside a linkage adapter's package.
ADAPTER_POLICY_FILE = "policy.toml"
SUPPORTED_VERSION = 1
ROLES = frozenset({"agency", "auditor", "gateway"})

# Principal ids appear in broker routing keys (<kind>.<unit>.<sender>): no dots.
_PRINCIPAL_ID = re.compile(r"[a-z][a-z0-9_-]*")
_TOP_KEYS = frozenset({"version", "principals", "routes", "views"})
_ADAPTER_KEYS = frozenset({"version", "agency", "routes", "views"})
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


@dataclass(frozen=True)
class AdapterPolicy:
    """An adapter's policy file: its name (``adapters.ngo/policy.toml``) and bytes."""

    name: str
    data: bytes


def installed_adapter_policies() -> list[AdapterPolicy]:
    """The adapter policies of the installed linkages (entry-point group
    ``silian.linkages``), by entry-point name: ``policy.toml`` in the package of
    each linkage's module, where there is one. Loading the entry points
    registers the views and conditions the adapter policies name."""
    found: dict[str, AdapterPolicy] = {}
    for point in linkage_entry_points():
        point.load()
        package = importlib.import_module(point.module).__package__ or point.module
        resource = importlib.resources.files(package) / ADAPTER_POLICY_FILE
        name = f"{package}/{ADAPTER_POLICY_FILE}"
        if name not in found and resource.is_file():
            found[name] = AdapterPolicy(name, resource.read_bytes())
    return list(found.values())


@dataclass(frozen=True)
class FieldsView:
    """A declared view: per payload type (full name), the top-level fields kept.

    Called as a view, it copies the kept fields into a new message, then applies
    the ``pseudonymous`` view, so people in kept fields appear only as the
    recipient's pseudonym and age band.
    """

    name: str
    keep: tuple[tuple[str, frozenset[str]], ...]

    def kept(self, payload_type: str) -> frozenset[str] | None:
        """The fields kept of ``payload_type``; None if the view does not list it."""
        return dict(self.keep).get(payload_type)

    def __call__(self, message: Message, ctx: views.ViewContext) -> Message:
        kept = self.kept(message.DESCRIPTOR.full_name) or frozenset()
        top = message.DESCRIPTOR.full_name
        chosen = views.copy_fields(
            message, lambda field: views.containing_type(field) != top or field.name in kept
        )
        return views.VIEWS["pseudonymous"](chosen, ctx)


class Policy:
    """A loaded, checked policy, identified by the digest of its files."""

    def __init__(
        self,
        principals: list[Principal],
        routes: list[Route],
        digest: str,
        adapter_policies: Sequence[str] = (),
    ) -> None:
        self._principals = {principal.id: principal for principal in principals}
        self._routes = routes
        #: SHA-256 (hex) of the central file's bytes; with adapter policies merged,
        #: SHA-256 of the lines ``<sha256 hex>  <file>`` (``sha256sum`` output) of
        #: the central file (named ``policy.toml``) and then each adapter policy.
        self.digest = digest
        #: Names of the adapter policies merged, in order.
        self.adapter_policies = tuple(adapter_policies)

    @classmethod
    def load(cls, path: Path, adapters: Sequence[AdapterPolicy] | None = None) -> Policy:
        """Read and check ``path`` merged with ``adapters`` (default: the installed
        adapter policies); ValueError naming the file and the problem if it is wrong."""
        data = path.read_bytes()
        candidates = installed_adapter_policies() if adapters is None else list(adapters)
        try:
            document = tomllib.loads(data.decode("utf-8"))
            principals, routes, merged = _parse(document, candidates)
        except (UnicodeDecodeError, ValueError) as exc:
            raise ValueError(f"policy file {path}: {exc}") from None
        return cls(principals, routes, _digest(data, merged), [a.name for a in merged])

    @classmethod
    def default(cls) -> Policy:
        """The policy shipped with the gateway (DESIGN §2), with the installed adapters'."""
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


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _digest(central: bytes, merged: Sequence[AdapterPolicy]) -> str:
    if not merged:
        return _sha256(central)
    lines = [f"{_sha256(central)}  policy.toml"]
    lines += [f"{_sha256(adapter.data)}  {adapter.name}" for adapter in merged]
    return _sha256(("\n".join(lines) + "\n").encode("utf-8"))


@dataclass(frozen=True)
class _Adapter:
    """An adapter policy that applies: its file, agency and parsed document."""

    source: AdapterPolicy
    agency: Principal
    document: dict[str, Any]


def _parse(
    document: dict[str, Any], candidates: Sequence[AdapterPolicy]
) -> tuple[list[Principal], list[Route], list[AdapterPolicy]]:
    _reject_unknown_keys("the policy", document, _TOP_KEYS)
    _check_version(document)
    tables = document.get("principals")
    if not isinstance(tables, dict) or not tables:
        raise ValueError("needs at least one [principals.<id>] table")
    principals = [_parse_principal(pid, table) for pid, table in tables.items()]
    by_id = {principal.id: principal for principal in principals}
    adapters = _applying(candidates, principals)
    known_views = _declare_views(document, adapters) | _built_in_views()
    routes = _parse_routes(document, by_id, known_views)
    routes += _adapter_routes(adapters, by_id, known_views, {route.id for route in routes})
    for route in routes:
        _check_view_covers(route)
    _reject_duplicate_routes(routes)
    return principals, routes, [adapter.source for adapter in adapters]


def _check_version(document: dict[str, Any]) -> None:
    version = document.get("version")
    if version != SUPPORTED_VERSION:
        raise ValueError(f"version must be {SUPPORTED_VERSION}, got {version!r}")


def _parse_routes(
    document: dict[str, Any], principals: dict[str, Principal], known_views: set[str]
) -> list[Route]:
    entries = document.get("routes", [])
    if not isinstance(entries, list):
        raise ValueError("routes must be written as [[routes]] tables")
    return [
        _parse_route(index, entry, principals, known_views) for index, entry in enumerate(entries)
    ]


# --- adapter policies -----------------------------------------------------------------


def _applying(candidates: Sequence[AdapterPolicy], principals: list[Principal]) -> list[_Adapter]:
    """The adapter policies whose agency is a principal, in the principals' order."""
    order = {principal.id: index for index, principal in enumerate(principals)}
    by_id = {principal.id: principal for principal in principals}
    applying = []
    for source in candidates:
        document, agency = _read_adapter(source)
        principal = by_id.get(agency)
        if principal is not None:
            if principal.role != "agency":
                raise ValueError(f"{source.name}: {agency!r} has role {principal.role!r}")
            applying.append(_Adapter(source, principal, document))
    return sorted(applying, key=lambda adapter: order[adapter.agency.id])


def _read_adapter(source: AdapterPolicy) -> tuple[dict[str, Any], str]:
    try:
        document = tomllib.loads(source.data.decode("utf-8"))
        _reject_unknown_keys("the adapter policy", document, _ADAPTER_KEYS)
        _check_version(document)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"{source.name}: {exc}") from None
    agency = document.get("agency")
    if not isinstance(agency, str) or not _PRINCIPAL_ID.fullmatch(agency):
        raise ValueError(f"{source.name}: agency must name the principal it is about")
    return document, agency


def _adapter_routes(
    adapters: Sequence[_Adapter],
    principals: dict[str, Principal],
    known_views: set[str],
    overridden: set[str],
) -> list[Route]:
    """The adapters' routes, without those the central file replaces (by id)."""
    taken: dict[str, tuple[Route, str]] = {}
    routes: list[Route] = []
    for adapter in adapters:
        name = adapter.source.name
        try:
            parsed = _parse_routes(adapter.document, principals, known_views)
            _reject_duplicate_routes(parsed)
            for route in parsed:
                _check_adapter_scope(route, adapter.agency)
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None
        for route in parsed:
            if route.id in overridden:
                continue
            earlier = taken.setdefault(route.id, (route, name))
            if earlier[0] != route:
                raise ValueError(f"{name}: route {route.id!r} differs from the one in {earlier[1]}")
            if earlier[1] == name:
                routes.append(route)
    return routes


def _check_adapter_scope(route: Route, agency: Principal) -> None:
    if route.recipient != agency.id and route.kind not in agency.may_send:
        raise ValueError(
            f"route {route.id!r}: the {agency.id} adapter may route only messages to "
            f"{agency.id} or of kinds {agency.id} may send"
        )


# --- declared views ---------------------------------------------------------------------

_INTERNED: dict[FieldsView, FieldsView] = {}


def _built_in_views() -> set[str]:
    """The views registered by code (not declared by a policy)."""
    return {name for name, view in views.VIEWS.items() if not isinstance(view, FieldsView)}


def _declare_views(document: dict[str, Any], adapters: Sequence[_Adapter]) -> set[str]:
    """Register the declared views — the central file's, and the adapters' it does
    not replace — and return their names."""
    declared: dict[str, tuple[FieldsView, str]] = {}
    for adapter in adapters:
        name = adapter.source.name
        for view in _parse_views(name, adapter.document):
            earlier = declared.setdefault(view.name, (view, name))
            if earlier[0] != view:
                raise ValueError(f"{name}: view {view.name!r} differs from the one in {earlier[1]}")
    for view in _parse_views("", document):
        declared[view.name] = (view, "")
    for view, source in declared.values():
        where = f"{source}: view {view.name!r}" if source else f"view {view.name!r}"
        existing = views.VIEWS.get(view.name)
        if existing is not None and not isinstance(existing, FieldsView):
            raise ValueError(f"{where} is built in; declare a view of another name")
        try:
            views.register_view(view.name, _INTERNED.setdefault(view, view))
        except ValueError:
            raise ValueError(
                f"{where} is declared differently by another policy loaded by this process"
            ) from None
    return set(declared)


def _parse_views(source: str, document: dict[str, Any]) -> list[FieldsView]:
    tables = document.get("views", {})
    prefix = f"{source}: " if source else ""
    if not isinstance(tables, dict):
        raise ValueError(f"{prefix}views must be written as [views.<name>] tables")
    return [_parse_view(f"{prefix}view {name!r}", name, table) for name, table in tables.items()]


def _parse_view(where: str, name: str, table: object) -> FieldsView:
    if not _PRINCIPAL_ID.fullmatch(name):
        raise ValueError(f"{where}: name must be lower-case letters, digits, '-' or '_'")
    if not isinstance(table, dict) or not table:
        raise ValueError(f"{where} must list the fields kept of at least one message kind")
    keep: dict[str, frozenset[str]] = {}
    for kind, names in table.items():
        _require_known_kind(where, kind)
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ValueError(f"{where}: {kind} must be a list of field names")
        descriptor = kinds.payload_type(kind).DESCRIPTOR
        unknown = set(names) - set(descriptor.fields_by_name)
        if unknown:
            raise ValueError(f"{where}: {kind} has no fields {_listing(unknown)}")
        cleared = set(names) - views.PSEUDONYMOUS_KEPT_FIELDS
        if cleared:
            raise ValueError(
                f"{where}: {_listing(cleared)} may not be shown in a declared view "
                "(the pseudonymous view does not keep them)"
            )
        fields = frozenset(names)
        if keep.setdefault(descriptor.full_name, fields) != fields:
            raise ValueError(f"{where}: kinds sharing the payload {descriptor.name} differ")
    return FieldsView(name, tuple(sorted(keep.items(), key=lambda item: item[0])))


def _check_view_covers(route: Route) -> None:
    view = views.VIEWS[route.view]
    payload = kinds.payload_type(route.kind).DESCRIPTOR
    if isinstance(view, FieldsView) and view.kept(payload.full_name) is None:
        raise ValueError(
            f"route {route.id!r}: view {route.view!r} does not list what to keep of {route.kind}"
        )


# --- principals and routes --------------------------------------------------------------


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


def _parse_route(
    index: int, entry: object, principals: dict[str, Principal], known_views: set[str]
) -> Route:
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
    if view not in known_views:
        raise ValueError(f"{where}: unknown view {view!r} (known: {_listing(known_views)})")
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
