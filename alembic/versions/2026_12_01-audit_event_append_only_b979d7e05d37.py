"""audit_event append only

The audit trail is evidence: triggers refuse every UPDATE, DELETE and (on PostgreSQL)
TRUNCATE of ``audit_event``, whoever sends it. On PostgreSQL the runtime role should in
addition hold only INSERT and SELECT on it (``osteolux migrate --grant-runtime-role``).

Revision ID: b979d7e05d37
Revises: cf355487ddbc
Create Date: 2026-12-01 04:53:40.040574

"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "b979d7e05d37"
down_revision: str | Sequence[str] | None = "cf355487ddbc"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_MESSAGE = "audit_event is append-only: its rows are never updated or deleted"


def upgrade() -> None:
    """Upgrade schema."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"""
            CREATE FUNCTION audit_event_append_only() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION '{_MESSAGE} (% refused)', TG_OP;
            END
            $$
            """
        )
        # Statement-level, so even an UPDATE or DELETE that matches no row is refused.
        op.execute(
            "CREATE TRIGGER audit_event_append_only "
            "BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_event "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_event_append_only()"
        )
        return
    for operation in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER audit_event_no_{operation.lower()} "
            f"BEFORE {operation} ON audit_event "
            f"BEGIN SELECT RAISE(ABORT, '{_MESSAGE} ({operation} refused)'); END"
        )


def downgrade() -> None:
    """Downgrade schema."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_event_append_only ON audit_event")
        op.execute("DROP FUNCTION audit_event_append_only()")
        return
    for operation in ("update", "delete"):
        op.execute(f"DROP TRIGGER audit_event_no_{operation}")
