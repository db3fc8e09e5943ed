"""The agency side: what a partner's front-end processor (前置机) runs.

It imports no SQLAlchemy, pika or Alembic: an agency installs the package
without the server's dependencies and runs its connector.
"""

from gateway.client.agency import AgencyClient, build_envelope

__all__ = ["AgencyClient", "build_envelope"]
