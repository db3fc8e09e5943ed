"""Shared fixtures: a fresh database on SQLite and on PostgreSQL, an isolated
broker prefix, and a running gateway with its principals registered."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway import bootstrap
from gateway.config import Settings
from gateway.domain.policy import Policy
from gateway.testing import (
    LOCAL_AMQP_URL,
    LOCAL_POSTGRES_URL,
    delete_broker_names,
    postgres_schema,
)

POSTGRES_URL = os.environ.get("SILIAN_TEST_POSTGRES_URL", LOCAL_POSTGRES_URL)
AMQP_URL = os.environ.get("SILIAN_TEST_AMQP_URL", LOCAL_AMQP_URL)
#: The shipped policy with the installed adapters' merged. Loading it loads every
#: installed linkage, which adds its payload rules, views and conditions to the
#: core's — as a running gateway does — before any test runs.
POLICY = Policy.default()
#: The principals with an inbox: the policy's agencies, not a list kept by hand.
PRINCIPALS = bootstrap.recipients(POLICY)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """An empty database: a SQLite file, or a fresh schema in PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'silian.db'}"
        return
    with postgres_schema(POSTGRES_URL) as url:
        yield url


@pytest.fixture(scope="module")
def broker_prefix(database_url: str) -> Iterator[str]:
    """A broker name prefix of this module's own (one per database it runs on);
    what it declared is deleted after."""
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    yield prefix
    delete_broker_names(AMQP_URL, prefix, PRINCIPALS)


@pytest.fixture(scope="module")
def settings(
    tmp_path_factory: pytest.TempPathFactory, database_url: str, broker_prefix: str
) -> Settings:
    data_dir: Path = tmp_path_factory.mktemp("data")
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        amqp_url=AMQP_URL,
        broker_prefix=broker_prefix,
        listen="127.0.0.1:0",
        log_format="console",
        shutdown_grace_seconds=1.0,
    )
