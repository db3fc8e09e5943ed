"""The registry: what is installed beside the core, found through entry points.

- ``silian.linkages`` — each linkage's rules (``Linkage`` factories); its
  package may hold an adapter policy (``policy.toml``);
- ``silian.commands`` — each agency's ``silian <agency> …`` command group.

The core never imports an adapter; a fifth agency is one folder plus its
entry points (or ``register`` for tests and embedding).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from importlib.metadata import EntryPoint, entry_points

import structlog

from gateway.domain.linkage import Linkage, Linkages

log = structlog.get_logger(__name__)

LINKAGES_GROUP = "silian.linkages"
COMMANDS_GROUP = "silian.commands"

_registered: dict[str, Callable[[], Linkage]] = {}


def linkage_entry_points() -> list[EntryPoint]:
    """The installed linkages' entry points, by name."""
    return sorted(entry_points(group=LINKAGES_GROUP), key=lambda point: point.name)


def command_entry_points() -> list[EntryPoint]:
    """The installed agencies' command groups' entry points, by name."""
    return sorted(entry_points(group=COMMANDS_GROUP), key=lambda point: point.name)


def register(name: str, factory: Callable[[], Linkage]) -> None:
    """Make a linkage available without an entry point (tests, embedding)."""
    _registered[name] = factory


def discover(enabled: Iterable[str] | None = None) -> Linkages:
    """Linkages from the entry points and ``register``; ``enabled`` limits them
    by name (None: all found). ValueError names what is unknown."""
    factories: dict[str, Callable[[], Linkage]] = {
        point.name: point.load() for point in linkage_entry_points()
    }
    factories.update(_registered)
    wanted = set(factories) if enabled is None else set(enabled)
    missing = wanted - set(factories)
    if missing:
        raise ValueError(
            f"unknown linkages {', '.join(sorted(missing))}; "
            f"found: {', '.join(sorted(factories)) or 'none'}"
        )
    linkages = [factories[name]() for name in sorted(wanted)]
    log.info("linkages.loaded", linkages=[linkage.name for linkage in linkages])
    return Linkages(linkages)
