"""The tree is the architecture: each layer imports only what lies inward of it
(DESIGN §6). Read from the source, so a forbidden import fails here even on a
code path no other test runs."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVER_LIBRARIES = ("sqlalchemy", "alembic", "pika")

#: Per layer folder: module prefixes its modules must not import.
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "gateway/domain": (
        *SERVER_LIBRARIES,
        "grpc",
        "gateway.store",
        "gateway.service",
        "gateway.broker",
        "gateway.audit",
        "gateway.rpc",
        "gateway.cli",
        "gateway.client",
        "gateway.demo",
        "gateway.reporting",
        "gateway.bootstrap",
        "gateway.testing",
    ),
    "gateway/store": (
        "pika",
        "grpc",
        "gateway.audit",
        "gateway.broker",
        "gateway.service",
        "gateway.rpc",
        "gateway.cli",
        "gateway.client",
        "gateway.demo",
        "gateway.bootstrap",
        "gateway.testing",
    ),
    "gateway/audit": (
        "pika",
        "gateway.service",
        "gateway.broker",
        "gateway.rpc",
        "gateway.cli",
        "gateway.client",
        "gateway.demo",
        "gateway.testing",
    ),
    "gateway/broker": (
        "sqlalchemy",
        "gateway.store",
        "gateway.service",
        "gateway.audit",
        "gateway.rpc",
        "gateway.cli",
        "gateway.demo",
        "gateway.testing",
    ),
    "gateway/service": (
        "pika",
        "grpc",
        "gateway.broker",
        "gateway.rpc",
        "gateway.cli",
        "gateway.client",
        "gateway.demo",
        "gateway.bootstrap",
        "gateway.testing",
    ),
    # The harness runs the server; neither the server nor the agency side uses it.
    "gateway/rpc": ("gateway.testing",),
    "gateway/client": ("gateway.testing",),
    "gateway": ("adapters",),  # the core finds adapters through the registry
}


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _violations(folder: str, forbidden: tuple[str, ...]) -> list[str]:
    problems = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        if "proto/silian" in path.as_posix():
            continue
        for name in sorted(_imports(path)):
            if any(name == prefix or name.startswith(prefix + ".") for prefix in forbidden):
                problems.append(f"{path.relative_to(ROOT)} imports {name}")
    return problems


@pytest.mark.parametrize("folder", sorted(FORBIDDEN))
def test_layer_imports_point_inward(folder: str) -> None:
    assert _violations(folder, FORBIDDEN[folder]) == []


def test_the_domain_loads_no_database_broker_or_grpc_library() -> None:
    modules = sorted(
        f"gateway.domain.{path.stem}"
        for path in (ROOT / "gateway/domain").glob("*.py")
        if path.stem != "__init__"
    )
    probe = (
        f"import sys; import {', '.join(modules)}; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        f"{(*SERVER_LIBRARIES, 'grpc')!r}))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == "[]"
