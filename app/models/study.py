"""The study registry: studies, their arms and their animals."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, Float, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base
from app.models.base import IdMixin, TimestampMixin, UTCDateTime, str_enum


class InjectionModel(enum.StrEnum):
    """How tumour cells were introduced (decides which sites metastasise)."""

    intracardiac = "intracardiac"
    intratibial = "intratibial"
    intrafemoral = "intrafemoral"
    intra_iliac = "intra_iliac"
    tail_vein = "tail_vein"
    mammary_fat_pad = "mammary_fat_pad"
    subcutaneous = "subcutaneous"
    other = "other"


class ArmRole(enum.StrEnum):
    control = "control"
    treatment = "treatment"


class AgentClass(enum.StrEnum):
    vehicle = "vehicle"
    isotype_control = "isotype_control"
    inhibitor = "inhibitor"
    neutralizing_antibody = "neutralizing_antibody"
    other = "other"


class Sex(enum.StrEnum):
    female = "female"
    male = "male"
    unknown = "unknown"


class EndReason(enum.StrEnum):
    """Why an animal's series ends; it is censored there in survival analysis."""

    death = "death"
    humane_endpoint = "humane_endpoint"
    withdrawn = "withdrawn"
    study_end = "study_end"


class ImageCombination(enum.StrEnum):
    """How the images of one animal on one day (dorsal and ventral views, repeated
    acquisitions of a kinetic sequence) become the one value a series, summary, comparison,
    export or plot uses for that animal and day."""

    #: Arithmetic mean of every image of the day, whatever its view.
    mean = "mean"
    #: Per view the mean of its images, then the sum over views (dorsal + ventral).
    sum_of_views = "sum_of_views"
    #: Only dorsal images (their mean); animals without one that day have no value.
    dorsal = "dorsal"
    #: Only ventral images (their mean).
    ventral = "ventral"
    #: The largest value of the day: the peak of a kinetic sequence.
    peak = "peak"


class Study(IdMixin, TimestampMixin, Base):
    __tablename__ = "study"
    __table_args__ = (UniqueConstraint("lab_id", "name"),)

    lab_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("lab.id", ondelete="RESTRICT"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    cell_line: Mapped[str] = mapped_column(String(200))
    injection_model: Mapped[InjectionModel] = mapped_column(
        str_enum(InjectionModel, "injection_model")
    )
    day0: Mapped[date] = mapped_column(Date)
    iacuc_number: Mapped[str | None] = mapped_column(String(100))
    description: Mapped[str | None] = mapped_column(Text)
    # Site ROIs in body coordinates, placed on every mouse found (None: the default template).
    roi_template: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    # How several images of one animal on one day become one value (see ImageCombination).
    image_combination: Mapped[ImageCombination] = mapped_column(
        str_enum(ImageCombination, "image_combination"),
        default=ImageCombination.mean,
        server_default=ImageCombination.mean.value,
    )
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    arms: Mapped[list[Arm]] = relationship(back_populates="study", lazy="raise")


class Arm(IdMixin, TimestampMixin, Base):
    __tablename__ = "arm"
    __table_args__ = (UniqueConstraint("study_id", "name"),)

    study_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("study.id", ondelete="RESTRICT"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[ArmRole] = mapped_column(str_enum(ArmRole, "arm_role"))
    agent_class: Mapped[AgentClass] = mapped_column(str_enum(AgentClass, "agent_class"))
    agent: Mapped[str | None] = mapped_column(String(200))
    target: Mapped[str | None] = mapped_column(String(200))
    dose: Mapped[float | None] = mapped_column(Float)
    dose_unit: Mapped[str | None] = mapped_column(String(50))
    route: Mapped[str | None] = mapped_column(String(100))
    schedule: Mapped[str | None] = mapped_column(String(200))
    control_arm_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("arm.id", ondelete="RESTRICT"), index=True
    )
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    study: Mapped[Study] = relationship(back_populates="arms", lazy="raise")


class Animal(IdMixin, TimestampMixin, Base):
    __tablename__ = "animal"
    __table_args__ = (UniqueConstraint("study_id", "identifier"),)

    study_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("study.id", ondelete="RESTRICT"), index=True
    )
    arm_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("arm.id", ondelete="RESTRICT"), index=True)
    identifier: Mapped[str] = mapped_column(String(100))
    cage: Mapped[str | None] = mapped_column(String(100))
    sex: Mapped[Sex] = mapped_column(str_enum(Sex, "sex"), default=Sex.unknown)
    strain: Mapped[str | None] = mapped_column(String(200))
    date_of_birth: Mapped[date | None] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    end_reason: Mapped[EndReason | None] = mapped_column(str_enum(EndReason, "end_reason"))
    end_note: Mapped[str | None] = mapped_column(Text)
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
