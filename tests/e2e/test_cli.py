"""The silian command line, as an operator and an agency's IT staff use it."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from gateway.cli import main
from gateway.config import Settings
from gateway.testing import enrolment
from tests.e2e.conftest import Running


def _env(settings: Settings) -> dict[str, str]:
    return {
        "SILIAN_DATABASE_URL": settings.database_url,
        "SILIAN_BROKER_PREFIX": settings.broker_prefix,
        "SILIAN_AMQP_URL": settings.amqp_url,
    }


def _run(settings: Settings, *args: str, input: str | None = None) -> click.testing.Result:
    return CliRunner().invoke(
        main,
        ["--data-dir", str(settings.data_dir), *args],
        env=_env(settings),
        input=input,
        catch_exceptions=False,
    )


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command and subcommand, as the lazy top-level group lists them."""
    found = []
    context = click.Context(group)
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        assert command is not None, name
        found.append((*prefix, name))
        if isinstance(command, click.Group):
            found += _commands(command, (*prefix, name))
    return found


@pytest.mark.parametrize("command", _commands(main), ids=" ".join)
def test_every_command_explains_itself(command: tuple[str, ...]) -> None:
    result = CliRunner().invoke(main, [*command, "--help"])
    assert result.exit_code == 0
    assert "Usage:" in result.output and len(result.output.splitlines()) > 3


def test_agency_lifecycle(tmp_path: Path, settings: Settings) -> None:
    own = Settings(
        data_dir=tmp_path / "ops",
        database_url="",
        broker_prefix="unused",
        amqp_url=settings.amqp_url,
    )
    env = {"SILIAN_DATABASE_URL": ""}
    runner = CliRunner()

    def run(*args: str) -> click.testing.Result:
        return runner.invoke(main, ["--data-dir", str(own.data_dir), *args], env=env)

    added = run("agency", "add", "police", "--generate-key")
    assert added.exit_code == 0, added.output
    assert "registered police" in added.output
    kid = added.output.split("key ")[1].split()[0]
    assert (own.data_dir / "agency-keys" / "police" / f"{kid}.pem").exists()
    rotated = run("agency", "add-key", "police", "--generate-key")
    assert rotated.exit_code == 0
    assert run("agency", "revoke-key", "police", kid).exit_code == 0
    dashed = run("agency", "revoke-key", "police", "-not-a-kid")
    assert dashed.exit_code == 1 and "KEY_NOT_REGISTERED" in dashed.output
    listing = run("agency", "list")
    assert "police" in listing.output and listing.output.count("police") >= 2
    jwks = json.loads(run("keys", "gateway").output)
    assert jwks["keys"][0]["crv"] == "Ed25519" and jwks["keys"][0]["kid"]


def test_unknown_principal_is_refused_with_the_known_ones(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["--data-dir", str(tmp_path), "agency", "add", "courts", "--generate-key"],
        env={"SILIAN_DATABASE_URL": ""},
    )
    assert result.exit_code == 1
    assert "'courts' is not a principal" in result.output and "judicial" in result.output
    assert "Traceback" not in result.output


def test_send_and_receive_by_hand(running: Running) -> None:
    from google.protobuf import json_format

    payload = json_format.MessageToJson(enrolment())
    sent = _run(
        running.settings,
        "send",
        "--as",
        "judicial",
        "--kind",
        "roster.change",
        "--target",
        running.target,
        "-",
        input=payload,
    )
    assert sent.exit_code == 0, sent.output
    mid = json.loads(sent.stdout)["mid"]
    received = _run(
        running.settings, "receive", "--as", "police", "--target", running.target, "--idle", "3"
    )
    lines = [json.loads(line) for line in received.stdout.splitlines()]
    assert mid in {line["mid"] for line in lines}
    mine = next(line for line in lines if line["mid"] == mid)
    assert mine["payload"]["changeType"] == "ROSTER_CHANGE_TYPE_ENROLMENT"


def test_send_with_a_bad_payload_names_the_problem(running: Running) -> None:
    result = _run(
        running.settings,
        "send",
        "--as",
        "judicial",
        "--kind",
        "roster.change",
        "--target",
        running.target,
        "-",
        input='{"unitCode": 5, "nope": 1}',
    )
    assert result.exit_code == 1
    assert "not a valid roster.change payload" in result.output
    assert "Traceback" not in result.output


def test_send_refused_by_the_gateway_shows_status_and_reason(running: Running) -> None:
    from google.protobuf import json_format

    change = enrolment()
    change.unit_code = "999999"
    result = _run(
        running.settings,
        "send",
        "--as",
        "judicial",
        "--kind",
        "roster.change",
        "--target",
        running.target,
        "-",
        input=json_format.MessageToJson(change),
    )
    assert result.exit_code == 1
    assert "INVALID_ARGUMENT" in result.output and "payload.unit_code" in result.output
