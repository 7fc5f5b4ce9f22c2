"""API keys: generation, hashing, and the request principal."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import Forbidden, Unauthorized
from app.models import ApiKey, ApiKeyRole

KEY_PREFIX = "olx_"
_WRITE_ROLES = frozenset({ApiKeyRole.admin, ApiKeyRole.editor})


@dataclass(frozen=True)
class Principal:
    """Who is calling: the lab every query is scoped to, the key, and its role."""

    lab_id: uuid.UUID
    key_id: uuid.UUID
    role: ApiKeyRole

    def require_write(self, *, allow_instrument: bool = False) -> None:
        """Editors and admins may write; instrument keys only where imaging data is pushed."""
        if self.role in _WRITE_ROLES or (allow_instrument and self.role == ApiKeyRole.instrument):
            return
        what = (
            "push imaging data only (open imaging sessions and upload images)"
            if self.role == ApiKeyRole.instrument
            else "only read"
        )
        raise Forbidden(
            f"This API key has the role '{self.role}', which may {what}. "
            "Ask your lab admin for an editor key to change study data."
        )

    def require_role(self, roles: frozenset[ApiKeyRole], *, to: str) -> None:
        """Only keys with one of ``roles`` may do this (``to`` says what, for the 403)."""
        if self.role not in roles:
            allowed = " and ".join(sorted(r.value for r in roles))
            raise Forbidden(f"Only {allowed} keys may {to}; this key is '{self.role}'.")

    def require_admin(self) -> None:
        if self.role != ApiKeyRole.admin:
            raise Forbidden(f"Only admin keys may manage API keys; this key is '{self.role}'.")


def generate_key() -> str:
    """A new secret: 256 random bits, URL-safe, recognisable by its prefix."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def authenticate(session: Session, secret: str | None) -> Principal:
    if not secret:
        raise Unauthorized(
            "This request needs an API key: send 'Authorization: Bearer <key>' or "
            "'X-API-Key: <key>'. A lab admin creates keys (see `osteolux create-lab`)."
        )
    key = session.scalar(
        select(ApiKey).where(ApiKey.key_hash == hash_key(secret), ApiKey.revoked_at.is_(None))
    )
    if key is None:
        raise Unauthorized("The API key is not valid (unknown or revoked). Check for typos.")
    return Principal(lab_id=key.lab_id, key_id=key.id, role=key.role)
