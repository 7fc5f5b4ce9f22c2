"""Labs and their API keys."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app import audit
from app.auth import Principal, generate_key, hash_key
from app.errors import Conflict, NotFound
from app.models import ApiKey, ApiKeyRole, Lab, utc_now
from app.pagination import PageParams, paginate

_PREFIX_LENGTH = 10


def _new_key(lab_id: uuid.UUID, name: str, role: ApiKeyRole) -> tuple[ApiKey, str]:
    secret = generate_key()
    key = ApiKey(
        lab_id=lab_id,
        name=name,
        role=role,
        key_hash=hash_key(secret),
        key_prefix=secret[:_PREFIX_LENGTH],
    )
    return key, secret


def create_lab(
    session: Session, name: str, *, admin_key_name: str = "bootstrap admin"
) -> tuple[Lab, ApiKey, str]:
    """Create a lab with its first admin key; the secret is returned once and never stored."""
    if session.scalar(select(Lab.id).where(Lab.name == name)) is not None:
        raise Conflict(f"A lab named '{name}' already exists.")
    lab = Lab(name=name)
    session.add(lab)
    session.flush()
    key, secret = _new_key(lab.id, admin_key_name, ApiKeyRole.admin)
    session.add(key)
    session.flush()
    return lab, key, secret


def create_key(
    session: Session,
    principal: Principal,
    name: str,
    role: ApiKeyRole,
    *,
    reason: str | None = None,
) -> tuple[ApiKey, str]:
    """Issue a new key for the caller's lab (admin only)."""
    principal.require_admin()
    key, secret = _new_key(principal.lab_id, name, role)
    session.add(key)
    session.flush()
    audit.record(
        session,
        principal,
        action="create",
        object_type="api_key",
        object_id=key.id,
        changes={"name": name, "role": role},
        reason=reason,
    )
    return key, secret


def create_key_for_lab(
    session: Session, lab: str, name: str, role: ApiKeyRole, *, reason: str | None = None
) -> tuple[Lab, ApiKey, str]:
    """Issue a key for a lab named (or identified) ``lab`` from the server's command line,
    e.g. when its last admin key is lost; audited without a key, as done on the server."""
    lab_row = session.scalar(select(Lab).where(Lab.name == lab))
    if lab_row is None:
        try:
            lab_row = session.get(Lab, uuid.UUID(lab))
        except ValueError:
            lab_row = None
    if lab_row is None:
        names = ", ".join(repr(n) for n in session.scalars(select(Lab.name).order_by(Lab.name)))
        raise NotFound(f"No lab named or with id '{lab}'. Labs: {names or 'none yet'}.")
    key, secret = _new_key(lab_row.id, name, role)
    session.add(key)
    session.flush()
    audit.record_by_server(
        session,
        lab_id=lab_row.id,
        action="create",
        object_type="api_key",
        object_id=key.id,
        changes={"name": name, "role": role, "via": "osteolux create-key"},
        reason=reason,
    )
    return lab_row, key, secret


def list_keys(
    session: Session, principal: Principal, params: PageParams
) -> tuple[list[ApiKey], int]:
    """A page of the keys of the caller's lab, oldest first, revoked ones included, and how
    many there are (admin only)."""
    principal.require_admin()
    query = select(ApiKey).where(ApiKey.lab_id == principal.lab_id)
    return paginate(session, query.order_by(ApiKey.created_at, ApiKey.id), params)


def revoke_key(
    session: Session, principal: Principal, key_id: uuid.UUID, *, reason: str | None = None
) -> ApiKey:
    """Revoke a key of the caller's lab at once (admin only); the lab's last admin key is
    never revoked, so the lab cannot lock itself out."""
    principal.require_admin()
    # Revocations of one lab run one at a time: two admins revoking each other at once
    # must not both succeed.
    session.execute(select(Lab.id).where(Lab.id == principal.lab_id).with_for_update())
    key = session.scalar(
        select(ApiKey).where(ApiKey.id == key_id, ApiKey.lab_id == principal.lab_id)
    )
    if key is None:
        raise NotFound(f"No API key with id {key_id} in your lab.")
    if key.revoked_at is None:
        if key.role == ApiKeyRole.admin and _active_admins(session, principal.lab_id) <= 1:
            raise Conflict(
                f"Key '{key.name}' is the last admin key of your lab; revoking it would lock "
                "the lab out of managing keys. Create another admin key first, then revoke "
                "this one."
            )
        key.revoked_at = utc_now()
        session.flush()
        audit.record(
            session,
            principal,
            action="revoke",
            object_type="api_key",
            object_id=key.id,
            changes={"revoked_at": (None, key.revoked_at)},
            reason=reason,
        )
    return key


def _active_admins(session: Session, lab_id: uuid.UUID) -> int:
    return int(
        session.scalar(
            select(func.count()).where(
                ApiKey.lab_id == lab_id,
                ApiKey.role == ApiKeyRole.admin,
                ApiKey.revoked_at.is_(None),
            )
        )
        or 0
    )


def who_am_i(session: Session, principal: Principal) -> tuple[Lab, Principal]:
    """The caller's lab and key."""
    lab = session.get_one(Lab, principal.lab_id)
    return lab, principal
