"""All ORM models, one module per aggregate; importing this registers them on ``Base``."""

from app.models.analysis import Comparison
from app.models.audit import AuditEvent
from app.models.base import utc_now
from app.models.idempotency import IdempotencyRecord
from app.models.imaging import (
    Acquisition,
    AcquisitionAnimal,
    AcquisitionFile,
    Blob,
    ImagingSession,
    Measurement,
    Roi,
    RoiSource,
    Site,
    View,
)
from app.models.jobs import Job, JobState
from app.models.lab import ApiKey, ApiKeyRole, Lab
from app.models.readouts import Readout, ReadoutKind, ReadoutValue
from app.models.study import (
    AgentClass,
    Animal,
    Arm,
    ArmRole,
    EndReason,
    ImageCombination,
    InjectionModel,
    Sex,
    Study,
)

__all__ = [
    "Acquisition",
    "AcquisitionAnimal",
    "AcquisitionFile",
    "AgentClass",
    "Animal",
    "ApiKey",
    "ApiKeyRole",
    "Arm",
    "ArmRole",
    "AuditEvent",
    "Blob",
    "Comparison",
    "EndReason",
    "IdempotencyRecord",
    "ImageCombination",
    "ImagingSession",
    "InjectionModel",
    "Job",
    "JobState",
    "Lab",
    "Measurement",
    "Readout",
    "ReadoutKind",
    "ReadoutValue",
    "Roi",
    "RoiSource",
    "Sex",
    "Site",
    "Study",
    "View",
    "utc_now",
]
