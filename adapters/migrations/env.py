"""The alembic environment: migrates the connection it is handed, else the configured URL.

``xieshang.adapters.sql.upgrade`` passes an open connection in ``config.attributes["connection"]``
(inside a transaction that holds the migration lock); run by hand, the URL comes from
``sqlalchemy.url`` in the ini file or from ``XIESHANG_DATABASE_URL``.
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from xieshang.adapters.sql import tables  # noqa: F401 - registers the tables on the metadata
from xieshang.adapters.sql.store import database_url, sa_engine

config = context.config
if config.config_file_name is not None:  # run by hand with an ini file: log what it does
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _migrate(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=SQLModel.metadata)
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _migrate(connection)
        return
    url = database_url(config.get_main_option("sqlalchemy.url"))
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=SQLModel.metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = sa_engine(url)  # run by hand: the connection settings a program would use
    try:
        with engine.connect() as conn:
            _migrate(conn)
    finally:
        engine.dispose()


main()
