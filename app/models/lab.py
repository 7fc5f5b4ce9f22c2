"""Labs and the API keys that act for them."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base
from app.models.base import IdMixin, UTCDateTime, str_enum, utc_now


class Lab(IdMixin, Base):
    __tablename__ = "lab"

    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)

    api_keys: Mapped[list[ApiKey]] = relationship(back_populates="lab", lazy="raise")


class ApiKeyRole(enum.StrEnum):
    """What a key may do: ``admin`` everything incl. keys; ``editor`` read and write study
    data; ``instrument`` push imaging data; ``viewer`` read only."""

    admin = "admin"
    editor = "editor"
    instrument = "instrument"
    viewer = "viewer"


class ApiKey(IdMixin, Base):
    __tablename__ = "api_key"

    lab_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("lab.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[ApiKeyRole] = mapped_column(str_enum(ApiKeyRole, "api_key_role"))
    # SHA-256 of a 256-bit random secret: high-entropy keys need no slow hash or salt.
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    key_prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    lab: Mapped[Lab] = relationship(back_populates="api_keys", lazy="raise")
