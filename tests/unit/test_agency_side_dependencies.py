"""The agency side runs without the server's dependencies: importing the client,
the connector toolkit or an agency's connector commands — or running one —
loads none of the `server` extra: SQLAlchemy, Alembic, psycopg or pika
(checked in a fresh interpreter)."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

import gateway.client.connectors

#: Packages of the `server` extra (pyproject.toml), by import name. (Its gRPC
#: health and reflection packages are left out: ``import grpc`` itself imports
#: them wherever they are installed.)
SERVER_ONLY = ("sqlalchemy", "alembic", "psycopg", "pika")
AGENCY_SIDE = [
    "gateway.client",
    "gateway.client.keys",
    "gateway.security.keyfiles",
    "gateway.cli.messages",
    *(
        f"gateway.client.connectors.{module.name}"
        for module in pkgutil.iter_modules(gateway.client.connectors.__path__)
    ),
    *sorted({point.module for point in entry_points(group="silian.commands")}),
]


def _server_modules_loaded(code: str) -> list[str]:
    check = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, timeout=60, check=True
    )
    loaded = {name.split(".")[0] for name in json.loads(result.stdout.splitlines()[-1])}
    return [name for name in SERVER_ONLY if name in loaded]


@pytest.mark.parametrize("module", AGENCY_SIDE)
def test_an_agency_side_module_loads_no_server_dependency(module: str) -> None:
    assert _server_modules_loaded(f"import {module}") == []


def test_running_a_connector_command_loads_no_server_dependency() -> None:
    run = (
        "from gateway.cli import main\n"
        "main(['police', 'columns'], standalone_mode=False)\n"
        "main(['procuratorate', '--help'], standalone_mode=False)\n"
        "main(['receive', '--help'], standalone_mode=False)"
    )
    assert _server_modules_loaded(run) == []


#: Runs ``silian`` as if the `server` extra were not installed.
WITHOUT_SERVER = f"""
import sys

class NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {set(SERVER_ONLY)!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)

sys.meta_path.insert(0, NotInstalled())
from gateway.cli import main
main(sys.argv[1:])
"""


def _silian_without_server(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_SERVER, "--data-dir", str(tmp_path), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_without_the_server_extra_connectors_run_and_gateway_commands_say_what_to_install(
    tmp_path: Path,
) -> None:
    columns = _silian_without_server(tmp_path, "police", "columns")
    assert columns.returncode == 0 and "police_reference" in columns.stdout
    for command in (["audit", "verify", "bundle", "--key", "k"], ["serve"], ["keys", "gateway"]):
        result = _silian_without_server(tmp_path, *command)
        assert result.returncode == 1, (command, result.stderr)
        assert "Traceback" not in result.stderr
        assert "pip install 'silian-gateway[server]'" in " ".join(result.stderr.split())
