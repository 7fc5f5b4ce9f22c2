"""HTTP routes for the animals of a study."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from app.animals import service
from app.animals.schemas import AnimalCreate, AnimalRead, AnimalUpdate
from app.deps import PrincipalDep, ReasonHeader, SessionDep
from app.models import Sex
from app.pagination import Page, PageDep
from app.responses import PROBLEM_RESPONSES

router = APIRouter(
    prefix="/studies/{study_id}/animals", tags=["animals"], responses=PROBLEM_RESPONSES
)


@router.post("", status_code=status.HTTP_201_CREATED, summary="Add an animal")
def create_animal(
    study_id: uuid.UUID,
    body: AnimalCreate,
    session: SessionDep,
    principal: PrincipalDep,
    reason: ReasonHeader = None,
) -> AnimalRead:
    """Add a mouse (ear tag, arm, cage, sex, strain, date of birth) to a study."""
    return AnimalRead.model_validate(
        service.create_animal(session, principal, study_id, body, reason=reason)
    )


@router.get("", summary="List animals")
def list_animals(
    study_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    page: PageDep,
    identifier: Annotated[
        str | None,
        Query(max_length=200, description="Only the animal with this ear tag / identifier."),
    ] = None,
    arm_id: uuid.UUID | None = None,
    cage: Annotated[str | None, Query(max_length=200)] = None,
    sex: Sex | None = None,
    ended: Annotated[
        bool | None, Query(description="true: only animals with an end record; false: only live")
    ] = None,
    include_archived: bool = False,
) -> Page[AnimalRead]:
    """Animals of a study, filterable by ear tag, arm, cage, sex and whether their series ended."""
    items, total = service.list_animals(
        session,
        principal,
        study_id,
        page,
        identifier=identifier,
        arm_id=arm_id,
        cage=cage,
        sex=sex,
        ended=ended,
        include_archived=include_archived,
    )
    return Page[AnimalRead](
        items=[AnimalRead.model_validate(a) for a in items],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/{animal_id}", summary="Get an animal")
def get_animal(
    study_id: uuid.UUID, animal_id: uuid.UUID, session: SessionDep, principal: PrincipalDep
) -> AnimalRead:
    """One animal of a study, with its end record if it has one."""
    return AnimalRead.model_validate(service.get_animal(session, principal, study_id, animal_id))


@router.patch("/{animal_id}", summary="Update an animal or record its end")
def update_animal(
    study_id: uuid.UUID,
    animal_id: uuid.UUID,
    body: AnimalUpdate,
    session: SessionDep,
    principal: PrincipalDep,
    reason: ReasonHeader = None,
) -> AnimalRead:
    """Change an animal; send `end` to record death, humane endpoint, withdrawal or study end."""
    return AnimalRead.model_validate(
        service.update_animal(session, principal, study_id, animal_id, body, reason=reason)
    )


@router.post("/{animal_id}/archive", summary="Archive an animal")
def archive_animal(
    study_id: uuid.UUID,
    animal_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    reason: ReasonHeader = None,
) -> AnimalRead:
    """Hide an animal from default listings (e.g. entered by mistake); nothing is deleted."""
    return AnimalRead.model_validate(
        service.archive_animal(session, principal, study_id, animal_id, reason=reason)
    )
