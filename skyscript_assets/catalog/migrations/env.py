"""Alembic environment: the URL comes from the Config object built in catalog/store.py."""

from alembic import context

from skyscript_assets.catalog.store import make_engine
from skyscript_assets.catalog.tables import Base

config = context.config
target_metadata = Base.metadata
# Dagster's own storage keeps its Alembic state in `alembic_version`; the catalog may share
# the same Postgres database, so it keeps its state apart.
VERSION_TABLE = "skyscript_alembic_version"


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
        version_table=VERSION_TABLE,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    engine = make_engine(url)
    with engine.connect() as connection:
        # render_as_batch: SQLite can only ALTER tables by copying them
        context.configure(
            connection=connection, target_metadata=target_metadata, render_as_batch=True, version_table=VERSION_TABLE
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
