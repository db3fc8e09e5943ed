"""Personal data at rest: after a demo the database names nobody in clear —
the raw SQLite file (and its journal), or every row of every PostgreSQL
table — and the data directory and the files in it are the owner's only."""

from __future__ import annotations

import re
import stat
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from sqlalchemy import inspect, select, text

from gateway import bootstrap
from gateway.cli import main
from gateway.config import Settings
from gateway.demo.simulation import Simulation
from gateway.domain.units import Units
from gateway.domain.validation import check_character, resident_id_problem
from gateway.store import db
from gateway.store.models import StoredMessage

PEOPLE, DAYS, SEED = 60, 3, 7
_ID_SHAPE = re.compile(rb"(?<![0-9])[0-9]{17}[0-9Xx](?![0-9])")


@pytest.fixture(scope="module")
def demo(settings: Settings) -> click.testing.Result:
    result = CliRunner().invoke(
        main,
        [
            *("--data-dir", str(settings.data_dir), "--log-format", "console", "demo"),
            *("--people", str(PEOPLE), "--days", str(DAYS), "--seed", str(SEED)),
        ],
        env={
            "SILIAN_DATABASE_URL": settings.database_url,
            "SILIAN_BROKER_PREFIX": settings.broker_prefix,
            "SILIAN_AMQP_URL": settings.amqp_url,
        },
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def people() -> list[tuple[str, str, str]]:
    """(resident ID, name, address) of everyone the demo's simulation names."""
    simulation = Simulation(people=PEOPLE, days=DAYS, units=Units.default(), seed=SEED)
    return [(p.resident_id, p.name, p.subject().address) for p in simulation.people]


def valid_resident_ids(data: bytes) -> set[str]:
    """Every 18-character run in ``data`` that is a valid resident ID as the
    gateway's own validation has it (check character and a real birth date):
    18 digits of a hex digest or a number pass the check character one time in 11."""
    found = set()
    for match in _ID_SHAPE.finditer(data):
        candidate = match.group().decode()
        if resident_id_problem(candidate) is None:
            found.add(candidate)
    return found


def _database_bytes(settings: Settings) -> Iterator[bytes]:
    """The database as an attacker with file or table access reads it."""
    path = db.sqlite_path(settings.database_url)
    if path is not None:
        for file in path.parent.glob(path.name + "*"):  # the file, its WAL and shm
            yield file.read_bytes()
        return
    engine = db.make_engine(settings.database_url)
    try:
        with engine.connect() as connection:
            for table in inspect(connection).get_table_names():
                for row in connection.execute(text(f'SELECT * FROM "{table}"')):
                    yield "\t".join(map(_cell, row)).encode()
    finally:
        engine.dispose()


def _cell(value: object) -> str:
    if isinstance(value, bytes | memoryview):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


def test_the_scan_finds_a_resident_id_in_clear(people: list[tuple[str, str, str]]) -> None:
    resident_id = people[0][0]
    assert valid_resident_ids(f"x{resident_id}y".encode()) == {resident_id}
    wrong_check = resident_id[:17] + ("0" if resident_id[17] != "0" else "1")
    assert valid_resident_ids(wrong_check.encode()) == set()
    digits = "63070141131066675"  # found in a digest once; "born" on 4113-10-66
    assert valid_resident_ids((digits + check_character(digits)).encode()) == set()


def test_the_database_holds_no_resident_id_name_or_address_in_clear(
    settings: Settings, demo: click.testing.Result, people: list[tuple[str, str, str]]
) -> None:
    everything = b"\n".join(_database_bytes(settings))
    assert len(everything) > 10_000  # the demo's messages are in there, sealed
    assert valid_resident_ids(everything) == set()
    text_form = everything.decode("utf-8", "replace")
    names = [name for _, name, _ in people if len(name) >= 2]
    assert [name for name in names if name in text_form] == []
    assert [address for _, _, address in people if address in text_form] == []


def test_the_gateway_still_reads_what_it_sealed(
    settings: Settings, demo: click.testing.Result, people: list[tuple[str, str, str]]
) -> None:
    store = bootstrap.open_store(settings)
    try:
        with store.transaction() as session:
            enrolment = session.scalars(
                select(StoredMessage).where(StoredMessage.kind == "roster.change").limit(1)
            ).one()
        clear = store.payload_of(enrolment)
    finally:
        store.engine.dispose()
    assert valid_resident_ids(clear) & {resident_id for resident_id, _, _ in people}


def _public_certificate(path: Path) -> bool:
    """A certificate (public by design, 0644 from `silian tls init`) and no key."""
    if not path.is_file() or _mode(path) != 0o644:
        return False
    text = path.read_bytes()
    return text.startswith(b"-----BEGIN CERTIFICATE-----") and b"PRIVATE KEY" not in text


def test_the_data_directory_is_0700_and_its_files_0600(
    settings: Settings, demo: click.testing.Result
) -> None:
    assert _mode(settings.data_dir) == 0o700
    loose = [
        f"{path.relative_to(settings.data_dir)}: {oct(_mode(path))}"
        for path in sorted(settings.data_dir.rglob("*"))
        if _mode(path) != (0o700 if path.is_dir() else 0o600) and not _public_certificate(path)
    ]
    assert loose == []
    assert _mode(settings.keys_dir / "data") == 0o700
    sqlite_file = db.sqlite_path(settings.database_url)
    if sqlite_file is not None:
        assert _mode(sqlite_file) == 0o600


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)
