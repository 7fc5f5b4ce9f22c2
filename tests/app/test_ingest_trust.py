"""Uploads never store wrong data without a word: a mismatched animal list, a re-upload that
asks for another mapping or session, NaN pixels; the session is checked before any decoding;
an Idempotency-Key replay says it is one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Acquisition, AcquisitionFile, AuditEvent, Blob, Measurement, Roi
from tests.app.clicks import ANIMALS, post_zip, url
from tests.app.factories import make_animal
from tests.app.problems import assert_problem, row_counts
from tests.app.test_tiff_upload import metadata, post, radiance_image, tiff_bytes

TABLES = (Acquisition, AcquisitionFile, Roi, Measurement, Blob)


def _stored_files(app: Any) -> list[Path]:
    return [p for p in Path(app.state.blob_store.root).rglob("*") if p.is_file()]


def test_an_animal_list_that_does_not_match_the_mice_found_is_refused(
    app: Any,
    client: TestClient,
    db_session: Session,
    imaging_session: dict[str, Any],
    synthetic_zip: bytes,
) -> None:
    make_animal(client, imaging_session["study_id"], _any_arm(client, imaging_session), "3471")
    for listed, count in ((ANIMALS[:4], 4), ([*ANIMALS, "3471"], 6)):
        assert_problem(
            post_zip(client, imaging_session, synthetic_zip, animals=",".join(listed)),
            422,
            f"found 5 animal bodies on the photograph but {count} animals are listed",
            "from the `animals` field",
            "left to right",
        )
    assert row_counts(db_session, *TABLES) == (0, 0, 0, 0, 0)
    assert _stored_files(app) == []


def _any_arm(client: TestClient, imaging_session: dict[str, Any]) -> str:
    arms = client.get(f"/studies/{imaging_session['study_id']}/arms").json()
    return str(arms["items"][0]["id"])


def test_a_reupload_asking_for_other_animals_or_another_session_is_a_conflict(
    client: TestClient,
    db_session: Session,
    imaging_session: dict[str, Any],
    synthetic_zip: bytes,
) -> None:
    first = post_zip(client, imaging_session, synthetic_zip)
    assert first.status_code == 201, first.text
    acquisition_id = first.json()["id"]
    # The same click with the mice in another order: the new mapping would be ignored.
    swapped = [ANIMALS[1], ANIMALS[0], *ANIMALS[2:]]
    body = assert_problem(
        post_zip(client, imaging_session, synthetic_zip, animals=",".join(swapped)),
        409,
        f"stored as acquisition {acquisition_id}",
        f"its animals, left to right, are {', '.join(ANIMALS)}, not {', '.join(swapped)}",
        f"PUT /studies/{imaging_session['study_id']}/sessions/{imaging_session['id']}"
        f"/acquisitions/{acquisition_id}/field",
    )
    assert "Nothing was changed" in body["detail"]
    # The same click into another session of the study.
    later = client.post(
        f"/studies/{imaging_session['study_id']}/sessions",
        json={"acquired_at": "2026-07-22T10:15:00+02:00"},
    ).json()
    later_session = later | {"study_id": imaging_session["study_id"]}
    assert_problem(
        post_zip(client, later_session, synthetic_zip),
        409,
        "imaging session of 2026-07-15",
        f"not the one of 2026-07-22; to move it, POST /studies/{imaging_session['study_id']}"
        f"/sessions/{imaging_session['id']}/acquisitions/{acquisition_id}/move",
    )
    # Asking for what is stored is a plain repeat: 200, the stored acquisition.
    again = post_zip(client, imaging_session, synthetic_zip, animals=",".join(ANIMALS))
    assert again.status_code == 200, again.text
    assert again.json()["already_stored"] is True
    assert row_counts(db_session, Acquisition) == (1,)

    # The documented correction: move it, with a reason; its day follows the session.
    base = f"{url(imaging_session)}/{acquisition_id}"
    assert_problem(client.post(f"{base}/move", json={"session_id": later["id"]}), 422, "reason")
    moved = client.post(
        f"{base}/move", json={"session_id": later["id"], "reason": "imaged on day 21"}
    )
    assert moved.status_code == 200, moved.text
    assert [a["id"] for a in client.get(url(later_session)).json()] == [acquisition_id]
    assert client.get(url(imaging_session)).json() == []
    day21 = client.get(
        f"/studies/{imaging_session['study_id']}/measurements", params={"site": "spine"}
    ).json()["items"]
    assert {m["day"] for m in day21} == {21}
    event = db_session.scalars(
        select(AuditEvent).where(AuditEvent.reason == "imaged on day 21")
    ).one()
    assert event.changes["session_id"] == [imaging_session["id"], later["id"]]
    # ... and now the same upload into that session is the plain repeat.
    assert post_zip(client, later_session, synthetic_zip).status_code == 200


def test_a_tiff_with_nan_or_infinite_pixels_is_refused(
    app: Any, client: TestClient, db_session: Session, imaging_session: dict[str, Any]
) -> None:
    for animal in ("m1", "m2"):
        make_animal(client, imaging_session["study_id"], _any_arm(client, imaging_session), animal)
    image = radiance_image().astype(np.float32)
    image[10:12, 20:23] = np.nan
    image[0, 0] = np.inf
    assert_problem(
        post(client, f"{url(imaging_session)}/tiff", tiff_bytes(image), metadata()),
        422,
        "7 of 65536 pixels are NaN or infinite",
    )
    assert row_counts(db_session, *TABLES) == (0, 0, 0, 0, 0)
    assert _stored_files(app) == []


def test_another_labs_session_is_not_found_before_the_upload_is_decoded(
    other_lab: TestClient, imaging_session: dict[str, Any]
) -> None:
    # Not a zip at all: decoding it first would answer 422; the session is looked up first.
    assert_problem(
        other_lab.post(url(imaging_session), files={"file": ("x.zip", b"not a zip")}),
        404,
        "No study",
    )


def test_requantify_with_a_session_of_another_study_is_not_found(
    client: TestClient, imaging_session: dict[str, Any]
) -> None:
    other = client.post(
        "/studies",
        json={
            "name": "Other study",
            "cell_line": "4T1",
            "injection_model": "intratibial",
            "day0": "2026-07-01",
        },
    ).json()
    assert_problem(
        client.post(
            f"/studies/{other['id']}/requantify", params={"session_id": imaging_session["id"]}
        ),
        404,
        f"No imaging session with id {imaging_session['id']}",
    )


def test_an_idempotency_key_replay_says_it_is_one(
    client: TestClient, imaging_session: dict[str, Any], synthetic_zip: bytes
) -> None:
    headers = {"Idempotency-Key": "upload-1"}
    files = {"file": ("click.zip", synthetic_zip, "application/zip")}
    first = client.post(url(imaging_session), files=files, headers=headers)
    assert first.status_code == 201, first.text
    assert "Idempotency-Replayed" not in first.headers
    replay = client.post(url(imaging_session), files=files, headers=headers)
    assert replay.status_code == 201  # the original answer, replayed
    assert replay.headers["Idempotency-Replayed"] == "true"
    assert replay.json() == first.json()
    study = f"/studies/{imaging_session['study_id']}/sessions"
    body = {"acquired_at": "2026-07-29T10:15:00+02:00"}
    opened = client.post(study, json=body, headers={"Idempotency-Key": "s-1"})
    reopened = client.post(study, json=body, headers={"Idempotency-Key": "s-1"})
    assert "Idempotency-Replayed" not in opened.headers
    assert reopened.headers["Idempotency-Replayed"] == "true"
    assert reopened.json()["id"] == opened.json()["id"]


def _import(client: TestClient, study_id: str, content: str, name: str, **form: str) -> Any:
    return client.post(
        f"/studies/{study_id}/measurements/import",
        files={"file": (name, content.encode(), "text/csv")},
        data=form,
    )


def test_a_csv_row_for_a_value_already_stored_is_refused_unless_replaced(
    client: TestClient, db_session: Session, imaging_session: dict[str, Any]
) -> None:
    study_id = imaging_session["study_id"]
    first = "animal,day,site,total_flux_ps\n3466,7,spine,1.0e6\n3467,7,spine,2.0e6\n"
    assert _import(client, study_id, first, "week1.csv").status_code == 201
    # A second file repeats 3467's day-7 spine value (and adds a new one).
    second = "animal,day,site,total_flux_ps\n3468,7,spine,3.0e6\n3467,7,spine,2.5e6\n"
    assert_problem(
        _import(client, study_id, second, "week1-corrected.csv"),
        409,
        "1 row(s) give a value for an animal, day, site and view that already has one",
        "line 3: 3467 spine on day 7 (other) already has 2e+06 p/s from week1.csv:3",
        "replace=true",
    )
    assert row_counts(db_session, Measurement) == (2,)  # nothing of the second file
    replaced = _import(client, study_id, second, "week1-corrected.csv", replace="true")
    assert replaced.status_code == 201, replaced.text
    assert replaced.json()["measurements_superseded"] == 1
    values = client.get(
        f"/studies/{study_id}/measurements", params={"site": "spine", "include_history": "true"}
    ).json()["items"]
    by_animal = {(m["animal"], m["is_current"]): m["total_flux_ps"] for m in values}
    assert by_animal == {
        ("3466", True): 1.0e6,
        ("3467", False): 2.0e6,  # kept as history
        ("3467", True): 2.5e6,
        ("3468", True): 3.0e6,
    }


def test_a_negative_flux_is_only_accepted_as_background_subtracted(
    client: TestClient, db_session: Session, imaging_session: dict[str, Any]
) -> None:
    study_id = imaging_session["study_id"]
    content = "animal,day,site,total_flux_ps,flags\n3466,7,spine,1.0e6,\n3467,7,spine,-5,\n"
    assert_problem(
        _import(client, study_id, content, "flux.csv"),
        422,
        "flux.csv, line 3: a negative flux (-5) is only possible after a background was subtracted",
        "background_subtracted",
    )
    assert row_counts(db_session, Measurement) == (0,)
    flagged = content.replace("-5,", "-5,background_subtracted")
    assert _import(client, study_id, flagged, "flux.csv").status_code == 201
    stored = client.get(f"/studies/{study_id}/measurements", params={"site": "spine"}).json()
    assert [m["flags"] for m in stored["items"] if m["animal"] == "3467"] == [
        ["background_subtracted"]
    ]


def test_living_image_rois_that_name_no_site_are_unassigned_until_a_site_is_given(
    client: TestClient, db_session: Session, ivis_reference_folder: Path
) -> None:
    from tests.app.clicks import zip_folder
    from tests.app.factories import make_control, make_study

    study = make_study(client, name="reference", day0="2021-12-20")
    control = make_control(client, study["id"])
    for animal in ANIMALS:
        make_animal(client, study["id"], control["id"], animal)
    opened = client.post(
        f"/studies/{study['id']}/sessions", json={"acquired_at": "2022-01-05T11:42:35+00:00"}
    ).json()
    target = opened | {"study_id": study["id"]}
    response = post_zip(client, target, zip_folder(ivis_reference_folder), name="DG.zip")
    assert response.status_code == 201, response.text
    body = response.json()
    # Living Image's head circles are labelled "ROI 1" … "ROI 5": no site, so not whole body.
    sites = {m["label"]: m["site"] for m in body["measurements"] if m["label"].startswith("ROI")}
    assert sites == {f"ROI {i}": "unassigned" for i in range(1, 6)}
    assert "5 ROI(s) name no site" in body["warnings"][0]
    # issue 13: then the one ROI whose raw-count flux disagrees with Living Image's (+25 %)
    assert len(body["warnings"]) == 2 and body["warnings"][1].startswith("ROI 5 (3470)")
    whole_body = client.get(
        f"/studies/{study['id']}/measurements", params={"site": "whole_body"}
    ).json()
    assert whole_body["total"] == 0
    # The user assigns a site (audited, the unassigned version kept as history).
    head = next(m for m in body["measurements"] if m["label"] == "ROI 2")
    assigned = client.patch(
        f"{url(target)}/{body['id']}/rois/{head['roi_id']}",
        json={"site": "skull_mandible", "reason": "ROI 2 is the skull of 3467"},
    )
    assert assigned.status_code == 200, assigned.text
    skull = client.get(
        f"/studies/{study['id']}/measurements", params={"site": "skull_mandible"}
    ).json()["items"]
    assert [(m["animal"], m["total_flux_ps"]) for m in skull] == [("3467", head["total_flux_ps"])]
    assert "4 ROI(s) name no site" in assigned.json()["warnings"][0]


def test_every_write_records_the_x_change_reason_it_was_sent_with(
    client: TestClient, db_session: Session, imaging_session: dict[str, Any], synthetic_zip: bytes
) -> None:
    why = {"X-Change-Reason": "re-imaged after the luciferin batch was replaced"}
    uploaded = client.post(
        url(imaging_session),
        files={"file": ("click.zip", synthetic_zip, "application/zip")},
        headers=why,
    )
    assert uploaded.status_code == 201, uploaded.text
    imported = client.post(
        f"/studies/{imaging_session['study_id']}/measurements/import",
        files={"file": ("w.csv", b"animal,day,site,total_flux_ps\n3466,21,spine,1e6\n")},
        headers={"X-Change-Reason": "values from the pilot notebook"},
    )
    assert imported.status_code == 201, imported.text
    roi = uploaded.json()["measurements"][0]
    edited = client.patch(
        f"{url(imaging_session)}/{uploaded.json()['id']}/rois/{roi['roi_id']}",
        json={"label": "3466 spine (checked)", "reason": "label typo"},
        headers={"X-Change-Reason": "the header loses to the body's own reason"},
    )
    assert edited.status_code == 200, edited.text
    reasons = {
        (e.action, e.object_type): e.reason
        for e in db_session.scalars(select(AuditEvent).order_by(AuditEvent.at))
    }
    assert reasons[("ingest", "acquisition")] == why["X-Change-Reason"]
    assert reasons[("import", "study")] == "values from the pilot notebook"
    assert reasons[("update", "roi")] == "label typo"


def test_a_duplicate_is_recognised_from_its_hash_before_it_is_decoded(
    client: TestClient,
    imaging_session: dict[str, Any],
    synthetic_zip: bytes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from app.ingest import click

    decoded: list[str] = []
    real_prepare = click.prepare

    def counting_prepare(*args: Any, **kwargs: Any) -> Any:
        decoded.append(kwargs["filename"])
        return real_prepare(*args, **kwargs)

    monkeypatch.setattr(click, "prepare", counting_prepare)
    assert post_zip(client, imaging_session, synthetic_zip).status_code == 201
    again = post_zip(client, imaging_session, synthetic_zip)
    assert again.status_code == 200 and again.json()["already_stored"] is True
    assert decoded == ["click.zip"]  # the second upload was answered from its SHA-256


def test_a_full_file_store_answers_503_and_keeps_nothing(
    app: Any,
    client: TestClient,
    db_session: Session,
    imaging_session: dict[str, Any],
    synthetic_zip: bytes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import errno

    from app.storage import StagingWriter

    def disk_full(self: StagingWriter, chunk: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(StagingWriter, "write", disk_full)
    answer = post_zip(client, imaging_session, synthetic_zip)
    body = assert_problem(answer, 503, "store is full")
    assert "administrator must free or add space" in body["detail"]
    assert answer.headers["Retry-After"] == "300"
    # Told apart from the database's 503 by its type, so a client or a monitor can say which.
    assert body["type"] == "https://osteolux.org/problems/storage-full"
    assert body["title"] == "File store full"
    assert row_counts(db_session, *TABLES) == (0, 0, 0, 0, 0)
    assert _stored_files(app) == []
