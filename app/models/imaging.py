"""Imaging data: raw blobs, sessions, acquisitions, ROIs and their measurements."""

from __future__ import annotations

import enum
import re
import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base
from app.models.base import IdMixin, TimestampMixin, UTCDateTime, str_enum, utc_now


class Blob(Base):
    """A raw file, addressed by its SHA-256 and never modified."""

    __tablename__ = "blob"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    media_type: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)


class ImagingSession(IdMixin, TimestampMixin, Base):
    """One imaging day of a study: luciferin injected, a series of acquisitions taken."""

    __tablename__ = "imaging_session"

    study_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("study.id", ondelete="RESTRICT"), index=True
    )
    acquired_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The instrument's local date: decides the day since injection, whatever the time zone.
    acquired_on: Mapped[date] = mapped_column(Date, index=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    operator: Mapped[str | None] = mapped_column(String(200))
    instrument: Mapped[str | None] = mapped_column(String(200))
    luciferin_dose_mg_per_kg: Mapped[float | None] = mapped_column(Float)
    luciferin_injected_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    notes: Mapped[str | None] = mapped_column(Text)


class View(enum.StrEnum):
    dorsal = "dorsal"
    ventral = "ventral"
    lateral_left = "lateral_left"
    lateral_right = "lateral_right"
    other = "other"

    @classmethod
    def from_label(cls, label: str) -> View | None:
        """The view a Living Image ``View`` label names, or None for anything else.

        Living Image writes ``Dorsal``, ``Ventral``, ``Left`` or ``Right``; labs also type
        ``Lateral left``, ``left lateral`` or ``lateral_right``.
        """
        words = [w for w in re.split(r"[^a-z]+", label.lower()) if w and w != "lateral"]
        named = {
            "dorsal": cls.dorsal,
            "ventral": cls.ventral,
            "left": cls.lateral_left,
            "right": cls.lateral_right,
        }
        return named.get(words[0]) if len(words) == 1 else None


class Acquisition(IdMixin, Base):
    """One camera exposure: a luminescent image with its photograph and calibration frames."""

    __tablename__ = "acquisition"

    session_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("imaging_session.id", ondelete="RESTRICT"), index=True
    )
    view: Mapped[View] = mapped_column(str_enum(View, "view"))
    click_number: Mapped[str | None] = mapped_column(String(100))
    acquired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    exposure_s: Mapped[float | None] = mapped_column(Float)
    binning: Mapped[int | None] = mapped_column(Integer)
    f_number: Mapped[float | None] = mapped_column(Float)
    fov_cm: Mapped[float | None] = mapped_column(Float)
    units: Mapped[str] = mapped_column(String(50))
    camera_metadata: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)


class AcquisitionFile(Base):
    """A raw file of an acquisition and the part it plays (luminescent, photograph, ...)."""

    __tablename__ = "acquisition_file"

    acquisition_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("acquisition.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(String(50), primary_key=True)
    blob_sha256: Mapped[str] = mapped_column(
        ForeignKey("blob.sha256", ondelete="RESTRICT"), index=True
    )
    filename: Mapped[str] = mapped_column(String(255))


class AcquisitionAnimal(Base):
    """Which animals are in the field, numbered left to right as Living Image lists them."""

    __tablename__ = "acquisition_animal"
    __table_args__ = (UniqueConstraint("acquisition_id", "position"),)

    acquisition_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("acquisition.id", ondelete="CASCADE"), primary_key=True
    )
    animal_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("animal.id", ondelete="RESTRICT"), primary_key=True, index=True
    )
    position: Mapped[int] = mapped_column(Integer)


class Site(enum.StrEnum):
    """Anatomical sites of bone metastasis quantified per animal."""

    whole_body = "whole_body"
    skull_mandible = "skull_mandible"
    spine = "spine"
    thorax = "thorax"
    forelimbs_scapula = "forelimbs_scapula"
    left_hindlimb = "left_hindlimb"
    right_hindlimb = "right_hindlimb"
    background = "background"
    custom = "custom"
    # A Living Image ROI whose label names no site: counted nowhere until a site is assigned.
    unassigned = "unassigned"


class RoiSource(enum.StrEnum):
    automatic = "automatic"
    client = "client"
    living_image = "living_image"
    template = "template"
    imported = "imported"  # a measurement brought from a CSV export, with no geometry


class Roi(IdMixin, Base):
    """A region of an acquisition; an edit makes a new version and supersedes the old one."""

    __tablename__ = "roi"

    acquisition_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("acquisition.id", ondelete="RESTRICT"), index=True
    )
    animal_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("animal.id", ondelete="RESTRICT"), index=True
    )
    site: Mapped[Site] = mapped_column(str_enum(Site, "site"))
    label: Mapped[str | None] = mapped_column(String(200))
    shape: Mapped[str] = mapped_column(String(30))
    geometry: Mapped[dict[str, Any]] = mapped_column(JSON)
    source: Mapped[RoiSource] = mapped_column(str_enum(RoiSource, "roi_source"))
    supersedes_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("roi.id", ondelete="RESTRICT")
    )
    is_current: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by_key_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("api_key.id", ondelete="SET NULL")
    )
    change_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)


class Measurement(IdMixin, Base):
    """Photon flux of one ROI by one method; recomputation keeps the earlier rows as history."""

    __tablename__ = "measurement"

    roi_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("roi.id", ondelete="RESTRICT"), index=True)
    total_flux_ps: Mapped[float | None] = mapped_column(Float)
    radiance_mean: Mapped[float | None] = mapped_column(Float)
    radiance_std: Mapped[float | None] = mapped_column(Float)
    radiance_min: Mapped[float | None] = mapped_column(Float)
    radiance_max: Mapped[float | None] = mapped_column(Float)
    area_cm2: Mapped[float | None] = mapped_column(Float)
    area_pixels: Mapped[float | None] = mapped_column(Float)
    saturated_pixels: Mapped[int] = mapped_column(Integer, default=0)
    background_radiance: Mapped[float | None] = mapped_column(Float)
    units: Mapped[str] = mapped_column(String(50))
    flags: Mapped[list[str]] = mapped_column(JSON, default=list)
    method: Mapped[str] = mapped_column(String(100))
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    imaging_version: Mapped[str] = mapped_column(String(50))
    is_current: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
