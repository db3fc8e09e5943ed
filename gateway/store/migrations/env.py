"""Alembic environment: the engine comes from gateway.store.db (never a .ini URL)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from gateway.store.models import Base

engine = context.config.attributes["engine"]
with engine.begin() as connection:
    if connection.dialect.name == "postgresql":
        # Replicas starting together on an empty database: one migrates, the
        # others wait here and then find the schema current.
        connection.execute(text("SELECT pg_advisory_xact_lock(hashtext('silian.migrations'))"))
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    context.run_migrations()
