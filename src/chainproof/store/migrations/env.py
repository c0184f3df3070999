"""Alembic environment for chainproof: migrations run on a connection the caller hands in.

chainproof never runs the ``alembic`` command line against a URL of its own; the SQL store
opens the connection (and, on PostgreSQL, holds an advisory lock) and passes it in
``config.attributes["connection"]``, see chainproof.store.sql.migrate. Offline (``--sql``)
mode is not supported.
"""

from __future__ import annotations

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "chainproof migrations run on a connection given by chainproof.store.sql.migrate "
        "(for example through SqlStore.open()); the alembic command line is not supported"
    )

context.configure(
    connection=connection,
    target_metadata=None,
    # SQLite cannot ALTER most things in place; batch mode copies tables when it must.
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
