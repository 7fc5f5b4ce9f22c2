"""jobs: the job resource, and procrastinate's own schema on PostgreSQL

The ``job`` table is the job as the lab sees it (both backends). On PostgreSQL, procrastinate
(the engine that dispatches jobs to ``osteolux worker`` processes) gets its tables and
functions in a schema of its own, ``procrastinate``, from the SQL the installed procrastinate
ships (``procrastinate/sql/schema.sql``); its functions are pinned to that schema, so the API
can defer a job from its own transaction whatever its search path. Upgrading procrastinate
to a release with a schema migration means a new revision that runs that migration's SQL.

Revision ID: c4a7e1f20b11
Revises: 8e2f4a6c1d03
Create Date: 2026-12-01 08:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "c4a7e1f20b11"
down_revision: str | Sequence[str] | None = "8e2f4a6c1d03"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PROCRASTINATE_SCHEMA = "procrastinate"
_ACTIVE = "state IN ('queued', 'running')"


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "job",
        sa.Column("lab_id", sa.Uuid(), nullable=False),
        sa.Column("created_by_key_id", sa.Uuid(), nullable=True),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("lock", sa.String(length=80), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "queued",
                "running",
                "succeeded",
                "failed",
                name="job_state",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("progress_done", sa.Integer(), nullable=False),
        sa.Column("progress_total", sa.Integer(), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("result_url", sa.String(length=300), nullable=True),
        sa.Column("error", sa.JSON(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("run_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("runner", sa.String(length=120), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_key_id"],
            ["api_key.id"],
            name=op.f("fk_job_created_by_key_id_api_key"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["lab_id"], ["lab.id"], name=op.f("fk_job_lab_id_lab"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job")),
    )
    op.create_index(
        "uq_job_lab_id_key_active",
        "job",
        ["lab_id", "key"],
        unique=True,
        sqlite_where=sa.text(_ACTIVE),
        postgresql_where=sa.text(_ACTIVE),
    )
    op.create_index("ix_job_state_run_after", "job", ["state", "run_after"])
    op.create_index("ix_job_lab_id_created_at", "job", ["lab_id", "created_at"])
    if op.get_bind().dialect.name == "postgresql":
        _create_procrastinate_schema()


def procrastinate_schema() -> str:
    """``procrastinate`` beside ``public``; ``<schema>_procrastinate`` beside another schema
    (a deployment or a test that keeps osteolux's tables elsewhere keeps its own queue)."""
    current = op.get_bind().exec_driver_sql("SELECT current_schema()").scalar_one()
    return PROCRASTINATE_SCHEMA if current == "public" else f"{current}_{PROCRASTINATE_SCHEMA}"


def _create_procrastinate_schema() -> None:
    from procrastinate.schema import SchemaManager

    schema = procrastinate_schema()
    # The schema belongs to this revision: one left behind by a dropped public schema goes.
    op.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    op.execute(f"CREATE SCHEMA {schema}")
    # The raw DB-API connection: the SQL is many statements with $$ bodies and no parameters.
    dbapi = op.get_bind().connection.dbapi_connection
    assert dbapi is not None
    search_path = dbapi.execute("SHOW search_path").fetchone()[0]
    dbapi.execute(f"SET LOCAL search_path TO {schema}")
    dbapi.execute(SchemaManager.get_schema())
    dbapi.execute(f"SET LOCAL search_path TO {search_path}")
    # Every function resolves procrastinate's names in its schema, whoever calls it.
    op.execute(
        f"""
        DO $$
        DECLARE f regprocedure;
        BEGIN
            FOR f IN SELECT p.oid::regprocedure FROM pg_proc p
                     JOIN pg_namespace n ON n.oid = p.pronamespace
                     WHERE n.nspname = '{schema}'
            LOOP
                EXECUTE format('ALTER FUNCTION %s SET search_path = {schema}, pg_catalog', f);
            END LOOP;
        END $$
        """
    )


def downgrade() -> None:
    """Downgrade schema."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP SCHEMA IF EXISTS {procrastinate_schema()} CASCADE")
    op.drop_index("ix_job_lab_id_created_at", table_name="job")
    op.drop_index("ix_job_state_run_after", table_name="job")
    op.drop_index("uq_job_lab_id_key_active", table_name="job")
    op.drop_table("job")
