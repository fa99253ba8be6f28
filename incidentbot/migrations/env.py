"""Alembic environment: the engine comes from incidentbot.db.Database (or the URL option)."""

from alembic import context
from sqlalchemy import create_engine
from sqlmodel import SQLModel

import incidentbot.models  # noqa: F401 - registers every table on SQLModel.metadata

config = context.config
target_metadata = SQLModel.metadata


def render_item(type_, obj, autogen_context):
    # Migrations must not import model code that may change later: render our column types
    # as the plain SQLAlchemy types they store.
    if type_ == "type" and type(obj).__name__ == "UTCDateTime":
        return "sa.DateTime(timezone=True)"
    return False


def include_object(obj, name, type_, reflected, compare_to):
    # APScheduler's job store table is APScheduler's to manage, not ours.
    return not (type_ == "table" and name == "apscheduler_jobs")


def run_migrations_online() -> None:
    engine = config.attributes.get("engine")
    if engine is None:
        url = config.get_main_option("sqlalchemy.url")
        if not url:
            raise RuntimeError("migrations need an engine (config.attributes['engine']) or a sqlalchemy.url option")
        engine = create_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
            render_item=render_item,
            include_object=include_object,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


def run_migrations_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
