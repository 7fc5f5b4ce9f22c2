"""Listing acquisitions costs the same number of SQL statements for 2 acquisitions as for
12 (no query per row), and the list comes a page at a time."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from app.models import (
    Acquisition,
    AcquisitionAnimal,
    AcquisitionFile,
    Blob,
    Measurement,
    Roi,
    RoiSource,
    Site,
    View,
)
from tests.app.clicks import url


@contextmanager
def counting(connection: Connection) -> Iterator[list[str]]:
    """Every SQL statement the connection runs inside the block."""
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(connection, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(connection, "before_cursor_execute", record)


def _animals(client: TestClient, study_id: str) -> list[str]:
    page = client.get(f"/studies/{study_id}/animals", params={"limit": 500}).json()
    return [a["id"] for a in sorted(page["items"], key=lambda a: a["identifier"])]


def _add_acquisitions(
    db: Session, session_id: str, animal_ids: list[str], n: int, start: int
) -> list[dict[str, Any]]:
    """n acquisitions, each with its own file, two animals and one measured ROI per animal;
    what each should read back as."""
    expected = []
    created = datetime(2026, 7, 15, 8, tzinfo=UTC)
    for i in range(start, start + n):
        sha = hashlib.sha256(f"click {i}".encode()).hexdigest()
        acquisition = Acquisition(
            session_id=uuid.UUID(session_id),
            view=View.dorsal,
            click_number=f"SYN{i:04d}",
            units="p/s/cm²/sr",
            created_at=created + timedelta(minutes=i),
        )
        db.add_all([acquisition, Blob(sha256=sha, size_bytes=10 + i, media_type="application/zip")])
        db.flush()
        db.add(
            AcquisitionFile(
                acquisition_id=acquisition.id, role="ivis_zip", blob_sha256=sha, filename="c.zip"
            )
        )
        mice = [animal_ids[i % len(animal_ids)], animal_ids[(i + 1) % len(animal_ids)]]
        fluxes = []
        for position, animal in enumerate(mice):
            db.add(
                AcquisitionAnimal(
                    acquisition_id=acquisition.id, animal_id=uuid.UUID(animal), position=position
                )
            )
            roi = Roi(
                acquisition_id=acquisition.id,
                animal_id=uuid.UUID(animal),
                site=Site.spine,
                label="spine",
                shape="circle",
                geometry={"cx": 10.0, "cy": 10.0, "r": 3.0},
                source=RoiSource.client,
            )
            db.add(roi)
            db.flush()
            flux = 1.0e5 * (i + 1) + position
            fluxes.append(flux)
            db.add(
                Measurement(
                    roi_id=roi.id,
                    total_flux_ps=flux,
                    units="p/s",
                    method="test",
                    imaging_version="test",
                )
            )
        expected.append(
            {"click_number": f"SYN{i:04d}", "sha256": sha, "animals": mice, "fluxes": fluxes}
        )
    db.commit()
    return expected


def _summary(listed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "click_number": a["click_number"],
            "sha256": a["sha256"],
            "animals": [m["animal_id"] for m in sorted(a["animals"], key=lambda m: m["position"])],
            "fluxes": sorted(m["total_flux_ps"] for m in a["measurements"]),
        }
        for a in listed
    ]


def test_listing_acquisitions_costs_the_same_queries_for_2_or_12(
    client: TestClient, imaging_session: dict, db_session: Session, db_connection: Connection
) -> None:
    animals = _animals(client, imaging_session["study_id"])
    expected = _add_acquisitions(db_session, imaging_session["id"], animals, 2, start=0)
    with counting(db_connection) as few:
        small = client.get(url(imaging_session))
    assert small.status_code == 200, small.text
    assert _summary(small.json()) == expected
    expected += _add_acquisitions(db_session, imaging_session["id"], animals, 10, start=2)
    with counting(db_connection) as many:
        large = client.get(url(imaging_session))
    assert _summary(large.json()) == expected
    assert large.headers["X-Total-Count"] == "12"
    assert len(many) == len(few), many
    selects = [s for s in few if s.lstrip().upper().startswith("SELECT")]
    # key, study, session, count, page, files, measurements, animals
    assert len(selects) <= 8, "\n\n".join(selects)


def test_acquisitions_come_a_page_at_a_time_with_a_link_to_the_next(
    client: TestClient, imaging_session: dict, db_session: Session
) -> None:
    animals = _animals(client, imaging_session["study_id"])
    expected = _add_acquisitions(db_session, imaging_session["id"], animals, 7, start=0)
    seen: list[dict[str, Any]] = []
    next_url: str | None = f"{url(imaging_session)}?limit=3"
    pages = 0
    while next_url:
        answer = client.get(next_url)
        assert answer.status_code == 200, answer.text
        assert answer.headers["X-Total-Count"] == "7"
        assert len(answer.json()) <= 3
        seen += answer.json()
        link = answer.headers.get("Link")
        next_url = link.split(">")[0].lstrip("<") if link else None
        pages += 1
    assert pages == 3
    assert _summary(seen) == expected
    assert client.get(url(imaging_session), params={"limit": 0}).status_code == 422
