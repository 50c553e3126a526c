"""Alembic environment: Tocsin always passes an open connection in
``config.attributes["connection"]`` (see ``tocsin.store.migrate``)."""

from __future__ import annotations

from alembic import context

from tocsin.store.tables import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata,
                  version_table="tocsin_alembic_version")
with context.begin_transaction():
    context.run_migrations()
