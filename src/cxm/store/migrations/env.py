"""Alembic environment: runs on the engine handed in by ``cxm.store.migrate``."""

from alembic import context

engine = context.config.attributes["engine"]

with engine.begin() as connection:
    context.configure(connection=connection, target_metadata=None)
    context.run_migrations()
