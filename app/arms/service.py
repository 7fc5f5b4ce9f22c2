"""Arm operations: a treatment arm always names a control arm of its own study."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import audit
from app.arms.schemas import ArmCreate, ArmUpdate
from app.auth import Principal
from app.errors import Conflict, NotFound, Unprocessable
from app.models import AgentClass, Arm, ArmRole
from app.pagination import PageParams, paginate
from app.studies.service import get_study

ALLOWED_AGENT_CLASSES = {
    ArmRole.control: {AgentClass.vehicle, AgentClass.isotype_control, AgentClass.other},
    ArmRole.treatment: {
        AgentClass.inhibitor,
        AgentClass.neutralizing_antibody,
        AgentClass.other,
    },
}


def get_arm(session: Session, principal: Principal, study_id: uuid.UUID, arm_id: uuid.UUID) -> Arm:
    """The arm if it belongs to this study of the caller's lab."""
    study = get_study(session, principal, study_id)
    arm = session.scalar(select(Arm).where(Arm.id == arm_id, Arm.study_id == study.id))
    if arm is None:
        raise NotFound(f"No arm with id {arm_id} in study {study_id}.")
    return arm


def _validate(session: Session, study_id: uuid.UUID, state: dict[str, Any]) -> None:
    role, agent_class = state["role"], state["agent_class"]
    if agent_class not in ALLOWED_AGENT_CLASSES[role]:
        allowed = ", ".join(sorted(ALLOWED_AGENT_CLASSES[role]))
        raise Unprocessable(
            f"agent_class '{agent_class}' does not fit a {role} arm; allowed: {allowed}."
        )
    if (state.get("dose") is None) != (state.get("dose_unit") is None):
        raise Unprocessable("Give dose and dose_unit together (e.g. 10 and 'mg/kg'), or neither.")
    control_id = state.get("control_arm_id")
    if role == ArmRole.control:
        if control_id is not None:
            raise Unprocessable(
                "A control arm is not compared with another arm: leave control_arm_id empty."
            )
        return
    if control_id is None:
        raise Unprocessable(
            "A treatment arm needs control_arm_id: the id of the control arm (vehicle or "
            "isotype) of this study it is compared with. Create that control arm first."
        )
    control = session.scalar(select(Arm).where(Arm.id == control_id))
    if control is None or control.study_id != study_id:
        raise Unprocessable(
            f"control_arm_id {control_id} is not an arm of this study; "
            "a treatment is compared with a control of the same study."
        )
    if control.role != ArmRole.control:
        raise Unprocessable(
            f"control_arm_id {control_id} is the arm '{control.name}', which is a treatment arm; "
            "choose an arm whose role is 'control'."
        )


def _ensure_unique_name(
    session: Session, study_id: uuid.UUID, name: str, *, exclude: uuid.UUID | None = None
) -> None:
    query = select(Arm.id).where(Arm.study_id == study_id, Arm.name == name)
    if exclude is not None:
        query = query.where(Arm.id != exclude)
    if session.scalar(query) is not None:
        raise Conflict(f"This study already has an arm named '{name}'.")


def create_arm(
    session: Session,
    principal: Principal,
    study_id: uuid.UUID,
    data: ArmCreate,
    *,
    reason: str | None,
) -> Arm:
    """Add an arm to a study of the caller's lab."""
    principal.require_write()
    study = get_study(session, principal, study_id)
    _ensure_unique_name(session, study.id, data.name)
    _validate(session, study.id, data.model_dump())
    arm = Arm(study_id=study.id, **data.model_dump())
    session.add(arm)
    session.flush()
    audit.record(
        session,
        principal,
        action="create",
        object_type="arm",
        object_id=arm.id,
        changes=data.model_dump(mode="json"),
        reason=reason,
    )
    return arm


def list_arms(
    session: Session,
    principal: Principal,
    study_id: uuid.UUID,
    params: PageParams,
    *,
    role: ArmRole | None = None,
    agent_class: AgentClass | None = None,
    include_archived: bool = False,
) -> tuple[list[Arm], int]:
    """Arms of one study, controls first."""
    study = get_study(session, principal, study_id)
    query = select(Arm).where(Arm.study_id == study.id)
    if role is not None:
        query = query.where(Arm.role == role)
    if agent_class is not None:
        query = query.where(Arm.agent_class == agent_class)
    if not include_archived:
        query = query.where(Arm.archived_at.is_(None))
    return paginate(session, query.order_by(Arm.role, Arm.name), params)


def update_arm(
    session: Session,
    principal: Principal,
    study_id: uuid.UUID,
    arm_id: uuid.UUID,
    data: ArmUpdate,
    *,
    reason: str | None,
) -> Arm:
    """Change an arm; the result must still be a consistent control or treatment arm."""
    principal.require_write()
    arm = get_arm(session, principal, study_id, arm_id)
    changes = data.changes()
    if "name" in changes:
        _ensure_unique_name(session, arm.study_id, changes["name"], exclude=arm.id)
    state = {c: getattr(arm, c) for c in ArmCreate.model_fields} | changes
    if state.get("control_arm_id") == arm.id:
        raise Unprocessable("An arm cannot be its own control.")
    _validate(session, arm.study_id, state)
    if state["role"] == ArmRole.treatment and arm.role == ArmRole.control:
        dependants = session.scalar(select(Arm.name).where(Arm.control_arm_id == arm.id))
        if dependants is not None:
            raise Unprocessable(
                f"This arm is the control of '{dependants}'; point that arm at another "
                "control before making this one a treatment."
            )
    audit.apply_changes(session, principal, arm, changes, object_type="arm", reason=reason)
    return arm


def archive_arm(
    session: Session,
    principal: Principal,
    study_id: uuid.UUID,
    arm_id: uuid.UUID,
    *,
    reason: str | None,
) -> Arm:
    """Hide an arm from default listings; its animals and data stay."""
    principal.require_write()
    arm = get_arm(session, principal, study_id, arm_id)
    audit.archive(session, principal, arm, object_type="arm", reason=reason)
    return arm
