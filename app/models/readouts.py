"""End-of-study readouts: what a study measures once per animal besides BLI (histology,
radiography, necropsy), and each animal's value."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime

from sqlalchemy import Date, Float, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base
from app.models.base import IdMixin, TimestampMixin, UTCDateTime, str_enum


class ReadoutKind(enum.StrEnum):
    """What a readout's values are; decides which comparisons apply."""

    #: A measured quantity with a unit (tumour area in bone sections, mm²).
    numeric = "numeric"
    #: A whole number ≥ 0 (metastatic bones at necropsy).
    count = "count"  # type: ignore[assignment]  # (shadows str.count on members)
    #: 0 or 1 (lesion present on X-ray).
    binary = "binary"


class Readout(IdMixin, TimestampMixin, Base):
    """A readout a study records per animal: a name, a unit and a kind, optionally one site
    (the same name may be read at several sites, e.g. tumour area per bone)."""

    __tablename__ = "readout"
    # A readout without a site is unique by name in the service (NULLs are distinct in SQL).
    __table_args__ = (UniqueConstraint("study_id", "name", "site"),)

    study_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("study.id", ondelete="RESTRICT"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    unit: Mapped[str | None] = mapped_column(String(50))
    kind: Mapped[ReadoutKind] = mapped_column(str_enum(ReadoutKind, "readout_kind"))
    # A BLI site (app.models.Site value), checked by the service: a plain string, so a new
    # site needs no migration of this table.
    site: Mapped[str | None] = mapped_column(String(30))
    description: Mapped[str | None] = mapped_column(Text)
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ReadoutValue(IdMixin, TimestampMixin, Base):
    """One animal's value of one readout; a correction is audited as [old, new] with its
    reason, so the audit trail keeps every earlier value."""

    __tablename__ = "readout_value"
    __table_args__ = (UniqueConstraint("readout_id", "animal_id"),)

    readout_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("readout.id", ondelete="RESTRICT"), index=True
    )
    animal_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("animal.id", ondelete="RESTRICT"), index=True
    )
    value: Mapped[float] = mapped_column(Float)
    # The day the readout was taken (necropsy, X-ray); BLI after it is not "final".
    measured_on: Mapped[date | None] = mapped_column(Date)
    note: Mapped[str | None] = mapped_column(Text)
    created_by_key_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("api_key.id", ondelete="SET NULL")
    )
    updated_by_key_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("api_key.id", ondelete="SET NULL")
    )
