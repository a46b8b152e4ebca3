"""Alembic's entry for the warehouse's migrations.

At run time ``yuhang_skills.core.migrations.migrate`` passes the connection (already in its
transaction, holding the migration lock). A developer running the ``alembic`` command (the
``alembic.ini`` at the project root) names the warehouse with ``-x url=…``, else the pipeline's
own setting (``YUHANG_WAREHOUSE_URL``, else ``var/warehouse.sqlite``).
"""

from __future__ import annotations

from alembic import context

from yuhang_skills.core import migrations, warehouse

config = context.config


def _configure(connection) -> None:  # noqa: ANN001 - a SQLAlchemy connection
    context.configure(
        connection=connection,
        target_metadata=warehouse.metadata,
        include_object=migrations.include_object,
        version_table=migrations.VERSION_TABLE,
        compare_type=True,
        compare_server_default=True,
        render_as_batch=True,  # SQLite alters a table by copying it: autogenerate writes batch operations
    )


connection = config.attributes.get("connection")
if connection is not None:
    _configure(connection)
    with context.begin_transaction():
        context.run_migrations()
else:
    from yuhang_skills.core.settings import load_settings

    url = context.get_x_argument(as_dictionary=True).get("url") or load_settings(use_airflow=False).warehouse_url
    engine = warehouse.make_engine(url)
    try:
        with engine.begin() as conn:
            _configure(conn)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()
