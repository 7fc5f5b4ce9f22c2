"""Stored analyses: a comparison is kept exactly as it was computed, with its inputs."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base
from app.models.base import IdMixin, UTCDateTime, utc_now


class Comparison(IdMixin, Base):
    """A treatment arm compared with its control at one site, with everything needed to
    trace the numbers: parameters, input measurement ids and a fingerprint of their values,
    software versions, and the results."""

    __tablename__ = "comparison"

    study_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("study.id", ondelete="RESTRICT"), index=True
    )
    treatment_arm_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("arm.id", ondelete="RESTRICT"))
    control_arm_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("arm.id", ondelete="RESTRICT"))
    site: Mapped[str] = mapped_column(String(50))
    metric: Mapped[str] = mapped_column(String(50))
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON)
    input_measurement_ids: Mapped[list[str]] = mapped_column(JSON)
    # The input points as used (animal, its arm then, day, value, flags): an animal moved to
    # another arm later does not change what this comparison was computed on.
    inputs: Mapped[list[dict[str, Any]]] = mapped_column(JSON, server_default="[]")
    input_fingerprint: Mapped[str] = mapped_column(String(64))
    software: Mapped[dict[str, str]] = mapped_column(JSON)
    results: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_by_key_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("api_key.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
