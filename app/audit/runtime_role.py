"""PostgreSQL: the service runs as a role that may append to the audit trail but not rewrite it.

Two roles (see the README's "Security and roles"):

- the **migration owner** owns the schema and runs ``osteolux migrate``; nothing else uses it;
- the **runtime role** (``OSTEOLUX_DATABASE_URL`` of the API) owns nothing and holds only
  SELECT, INSERT, UPDATE, DELETE on the tables — and only SELECT and INSERT on
  ``audit_event`` (SELECT only on ``alembic_version``). It cannot ALTER, DISABLE TRIGGER,
  TRUNCATE or DROP anything.

``grant_runtime_role`` sets exactly those privileges; ``osteolux migrate
--grant-runtime-role ROLE`` runs it after every upgrade, so tables added later are covered.
The triggers of migration ``b979d7e05d37`` refuse UPDATE, DELETE and TRUNCATE of the audit
trail even for the owner.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

from app.jobs.service import queue_schema

APPEND_ONLY_TABLES = ("audit_event",)
READ_ONLY_TABLES = ("alembic_version",)


class RoleSetupError(ValueError):
    """The runtime role is missing or would be as powerful as the migration owner."""


def grant_runtime_role(connection: Connection, role: str) -> None:
    """Give ``role`` the runtime privileges on the current schema (and nothing more)."""
    if connection.dialect.name != "postgresql":
        raise RoleSetupError("separate database roles need PostgreSQL (SQLite has no roles)")
    owner = connection.scalar(text("SELECT current_user"))
    found = connection.execute(
        text("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = :role"),
        {"role": role},
    ).first()
    if found is None:
        raise RoleSetupError(
            f"there is no database role '{role}'; create it first, e.g. "
            f"CREATE ROLE {role} LOGIN PASSWORD '…' (as a database superuser)"
        )
    if role == owner or found.rolsuper or found.rolbypassrls:
        raise RoleSetupError(
            f"'{role}' would not be limited: the runtime role must be neither the migration "
            f"owner ('{owner}') nor a superuser"
        )
    if connection.scalar(text("SELECT pg_has_role(:role, current_user, 'USAGE')"), {"role": role}):
        raise RoleSetupError(
            f"'{role}' is a member of the migration owner '{owner}' and would inherit its "
            "rights; use a role that is not"
        )
    quote = connection.dialect.identifier_preparer.quote
    schema = quote(connection.scalar(text("SELECT current_schema()")))
    grantee = quote(role)
    statements = [
        f"GRANT USAGE ON SCHEMA {schema} TO {grantee}",
        f"REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM {grantee}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {grantee}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {grantee}",
    ]
    statements += [
        f"REVOKE UPDATE, DELETE ON {schema}.{quote(t)} FROM {grantee}" for t in APPEND_ONLY_TABLES
    ]
    statements += [
        f"REVOKE INSERT, UPDATE, DELETE ON {schema}.{quote(t)} FROM {grantee}"
        for t in READ_ONLY_TABLES
    ]
    # the job queue (procrastinate's schema, made by the jobs migration): the API queues
    # jobs and `osteolux worker` runs them as this role
    queue = queue_schema(connection.scalar(text("SELECT current_schema()")))
    if connection.scalar(text("SELECT to_regnamespace(:s) IS NOT NULL"), {"s": queue}):
        statements += [
            f"GRANT USAGE ON SCHEMA {quote(queue)} TO {grantee}",
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {quote(queue)} "
            f"TO {grantee}",
            f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {quote(queue)} TO {grantee}",
        ]
    for statement in statements:
        connection.execute(text(statement))


def owner_warning(connection: Connection) -> str | None:
    """A warning when the service connects as the owner of the audit trail (so it could
    drop the triggers that keep it append-only), else None; always None on SQLite."""
    if connection.dialect.name != "postgresql":
        return None
    owner = connection.scalar(
        text(
            "SELECT tableowner FROM pg_tables "
            "WHERE schemaname = current_schema() AND tablename = 'audit_event'"
        )
    )
    user = connection.scalar(text("SELECT current_user"))
    if owner is None or owner != user:
        return None
    return (
        f"the service connects as '{user}', the owner of the audit trail, so it could remove "
        "the triggers that keep it append-only; run it as a runtime role "
        "(osteolux migrate --grant-runtime-role, README: Security and roles)"
    )
