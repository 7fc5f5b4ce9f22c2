"""Study exports (``POST /studies/{id}/exports``, a job; ``GET …/exports/{job_id}``, its ZIP),
on both databases, the test playing the worker (tests/app/jobs.py). Every file in the ZIP is
checked against the route its manifest names, asked with the manifest's parameters: the
same bytes (the XLSX workbook too: it holds no time of writing)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import uuid
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pytest
from fastapi.testclient import TestClient
from numpy.testing import assert_allclose
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.blobs import fsck
from app.deps import get_read_session_factory
from app.errors import Unprocessable
from app.exports import parts
from app.guard import kind_of
from app.jobs.runner import execute
from app.models import Blob, Job
from imaging import default_hotel, write_synthetic_click
from tests.app.clicks import FLUXES, post_zip, zip_folder
from tests.app.factories import make_study
from tests.app.jobs import finished, run_queued_jobs
from tests.app.problems import assert_problem, row_counts
from tests.app.test_analysis_api import CONTROL, TREATED, study  # noqa: F401


def _export(client: TestClient, study_id: str, **options: Any) -> Any:
    return client.post(f"/studies/{study_id}/exports", json=options)


def _zip(client: TestClient, job: dict[str, Any]) -> tuple[zipfile.ZipFile, Any]:
    response = client.get(job["result_url"])
    assert response.status_code == 200, response.text
    return zipfile.ZipFile(io.BytesIO(response.content)), response


def _manifest(archive: zipfile.ZipFile) -> dict[str, Any]:
    return json.loads(archive.read("MANIFEST.json"))


def _assert_files_are_the_routes_answers(
    client: TestClient, archive: zipfile.ZipFile
) -> dict[str, Any]:
    """Each file: listed once with its SHA-256 and size, and the bytes its route answers."""
    manifest = _manifest(archive)
    listed = [f["path"] for f in manifest["files"]]
    assert sorted(archive.namelist()) == sorted([*listed, "MANIFEST.json"])
    for entry in manifest["files"]:
        content = archive.read(entry["path"])
        assert hashlib.sha256(content).hexdigest() == entry["sha256"], entry["path"]
        assert len(content) == entry["size_bytes"]
        method, route = entry["produced_by"]["route"].split(" ", 1)
        assert method == "GET"
        answer = client.get(route, params=entry["produced_by"]["parameters"])
        assert answer.status_code == 200, (entry["path"], answer.text)
        assert content == answer.content, entry["path"]
    return manifest


def test_an_export_holds_every_routes_answer_and_a_manifest(
    client: TestClient,
    study: dict[str, Any],  # noqa: F811
) -> None:
    comparison = client.post(
        f"/studies/{study['id']}/comparisons",
        json={"treatment_arm_id": study["treatment"]["id"], "analyses": ["per_day", "auc"]},
    )
    assert comparison.status_code == 201, comparison.text
    response = _export(client, study["id"])
    queued = response.json()
    assert (queued["kind"], queued["state"]) == ("export", "queued")
    assert queued["inputs"]["options"] == {
        "sites": None,
        "metric": "total_flux_ps",
        "summary_scale": "log10",
        "summary_floor": None,
        "comparisons": True,
        "overlays": False,
        "overlay_scale": "log",
    }
    # the same options while it waits: the same job; other options: another job, keyed by
    # the options as understood (a site named twice is the site once)
    assert _export(client, study["id"]).json()["id"] == queued["id"]
    one_site = _export(client, study["id"], sites=["whole_body"]).json()
    assert one_site["id"] != queued["id"]
    twice = _export(client, study["id"], sites=["whole_body", "whole_body"]).json()
    assert twice["id"] == one_site["id"]
    # not built yet: 409 with Retry-After
    waiting = client.get(f"/studies/{study['id']}/exports/{queued['id']}")
    assert_problem(waiting, 409, "still queued", "0 of ? files")
    assert waiting.headers["Retry-After"]
    job = finished(client, response)
    assert job["state"] == "succeeded", job
    assert job["result_url"] == f"/studies/{study['id']}/exports/{job['id']}"
    archive, download = _zip(client, job)
    assert download.headers["content-type"] == "application/zip"
    day = job["created_at"][:10]
    name = quote(f"{study['name']}-export-{day}.zip", safe="")
    assert download.headers["content-disposition"].endswith(f"filename*=UTF-8''{name}")
    manifest = _assert_files_are_the_routes_answers(client, archive)
    cid = comparison.json()["id"][:8]
    assert [f["path"] for f in manifest["files"]] == [
        "measurements.csv",
        "summary/whole_body-total_flux_ps.csv",
        "prism/whole_body-total_flux_ps.csv",
        f"comparisons/{cid}/per_day.csv",
        f"comparisons/{cid}/animals.csv",
        f"comparisons/{cid}/tables.xlsx",
        f"comparisons/{cid}/growth.png",
        "audit-trail.csv",
    ]
    assert manifest["skipped"] == []
    assert manifest["study"] == {"id": study["id"], "name": study["name"]}
    assert manifest["osteolux"] == manifest["software"]["osteolux"]
    assert all(f["osteolux"] == manifest["osteolux"] for f in manifest["files"])
    # progress counts files: every file, then the ZIP
    assert job["progress"] == {"done": 9, "total": 9}
    assert job["result"]["zip"]["files"] == 9
    # the measurements CSV is the route's own, every imported value in it (12 mice x 4 days)
    rows = archive.read("measurements.csv").decode().splitlines()
    assert len(rows) == 1 + 48


def test_the_export_is_kept_as_blobs_fsck_checks_and_never_counts_as_orphans(
    client: TestClient,
    study: dict[str, Any],  # noqa: F811
    db_session: Session,
) -> None:
    job = finished(client, _export(client, study["id"], comparisons=False))
    zip_sha = job["result"]["zip"]["sha256"]
    kept = {f["sha256"] for f in job["result"]["files"]} | {zip_sha}
    stored = set(db_session.scalars(select(Blob.sha256).where(Blob.sha256.in_(kept))))
    assert stored == kept
    app: Any = client.app
    factory: sessionmaker[Session] = app.dependency_overrides[get_read_session_factory]()
    report = fsck(factory, app.state.blob_store)
    assert (report.missing, report.corrupt, report.orphans) == ([], [], [])
    assert report.checked == row_counts(db_session, Blob)[0]
    _, download = _zip(client, job)
    assert hashlib.sha256(download.content).hexdigest() == zip_sha


def test_another_labs_export_is_not_found(
    client: TestClient,
    other_lab: TestClient,
    study: dict[str, Any],  # noqa: F811
    db_session: Session,
) -> None:
    job = finished(client, _export(client, study["id"], comparisons=False))
    assert_problem(other_lab.get(job["result_url"]), 404)
    before = row_counts(db_session, Job)
    assert_problem(_export(other_lab, study["id"]), 404, "No study")
    assert row_counts(db_session, Job) == before
    # another study of the same lab does not own it either; nor is a job of another kind one
    other = make_study(client, name="Another study")
    assert_problem(client.get(f"/studies/{other['id']}/exports/{job['id']}"), 404)
    assert_problem(client.get(f"/studies/{study['id']}/exports/{uuid.uuid4()}"), 404)


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"format": "pdf"}, "format"),
        ({"sites": []}, "sites"),
        ({"sites": ["background"]}, "not an anatomical site"),
        ({"sites": ["spine"]}, "no current measurements at spine"),
        ({"metric": "counts"}, "metric"),
        ({"overlays": True}, "no images"),
        ({"summary_floor": 0}, "summary_floor"),
        ({"summary_scale": "ln"}, "summary_scale"),
        ({"overlay_scale": "sqrt"}, "overlay_scale"),
    ],
)
def test_bad_options_are_refused_and_leave_nothing(
    client: TestClient,
    study: dict[str, Any],  # noqa: F811
    db_session: Session,
    options: dict[str, Any],
    fragment: str,
) -> None:
    before = row_counts(db_session, Job, Blob)
    response = _export(client, study["id"], **options)
    body = assert_problem(response, 422)
    assert fragment in json.dumps(body), body
    assert row_counts(db_session, Job, Blob) == before


def test_a_study_without_measurements_is_refused(client: TestClient, db_session: Session) -> None:
    empty = make_study(client)
    before = row_counts(db_session, Job)
    assert_problem(_export(client, empty["id"]), 422, "no measurements yet")
    assert row_counts(db_session, Job) == before


def test_a_viewer_may_not_export(client: TestClient, study: dict[str, Any]) -> None:  # noqa: F811
    viewer = client.post("/keys", json={"name": "reader", "role": "viewer"}).json()
    headers = {"Authorization": f"Bearer {viewer['key']}"}
    assert_problem(client.post(f"/studies/{study['id']}/exports", json={}, headers=headers), 403)
    job = finished(client, _export(client, study["id"], comparisons=False))
    # the ZIP holds the audit trail, which viewers may not read
    assert_problem(client.get(job["result_url"], headers=headers), 403)


def _taken_up_again(client: TestClient, job_id: str) -> dict[str, Any]:
    """The job once another runner (a restarted worker) has run it again."""
    app: Any = client.app
    factory = app.dependency_overrides[get_read_session_factory]()
    store, settings = app.state.blob_store, app.state.settings
    execute(uuid.UUID(job_id), factory, store, settings, runner="recovered")
    return client.get(f"/jobs/{job_id}").json()


def test_an_interrupted_export_resumes_after_its_last_committed_file(
    client: TestClient,
    study: dict[str, Any],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    job_id = _export(client, study["id"], comparisons=False).json()["id"]
    real = parts.produce
    made: list[str] = []

    def dies_on_the_third_file(*args: Any, **kwargs: Any) -> bytes:
        part = args[-1]
        if len(made) == 2:
            made.append("killed")
            raise KeyboardInterrupt  # stands for the runner's process dying mid-file
        made.append(part["path"])
        return real(*args, **kwargs)

    monkeypatch.setattr(parts, "produce", dies_on_the_third_file)
    with pytest.raises(KeyboardInterrupt):
        run_queued_jobs(client)
    job = client.get(f"/jobs/{job_id}").json()
    assert (job["state"], job["progress"]) == ("running", {"done": 2, "total": 5})
    assert [f["path"] for f in job["result"]["files"]] == made[:2]
    assert_problem(client.get(f"/studies/{study['id']}/exports/{job_id}"), 409, "2 of 5")

    made.clear()

    def counted(*args: Any, **kwargs: Any) -> bytes:
        made.append(args[-1]["path"])
        return real(*args, **kwargs)

    monkeypatch.setattr(parts, "produce", counted)
    job = _taken_up_again(client, job_id)
    assert [job["state"], job["attempts"], job["progress"]["done"]] == ["succeeded", 2, 5]
    # only the files not committed before were made again
    assert made == ["prism/whole_body-total_flux_ps.csv", "audit-trail.csv"]
    archive, _ = _zip(client, job)
    manifest = _assert_files_are_the_routes_answers(client, archive)
    assert len(manifest["files"]) == 4


def test_a_summary_the_data_cannot_give_is_skipped_unless_a_floor_is_given(
    client: TestClient,
    study: dict[str, Any],  # noqa: F811
) -> None:
    # spine on day 0: every mouse 1e5 p/s but one at 0, which has no log10
    lines = ["animal,day,site,total_flux_ps"] + [
        f"{animal},0,spine,{0.0 if i == 0 else 1e5}" for i, animal in enumerate(CONTROL + TREATED)
    ]
    imported = client.post(
        f"/studies/{study['id']}/measurements/import",
        files={"file": ("spine.csv", "\n".join(lines).encode(), "text/csv")},
    )
    assert imported.status_code == 201, imported.text
    job = finished(client, _export(client, study["id"], comparisons=False))
    archive, _ = _zip(client, job)
    manifest = _assert_files_are_the_routes_answers(client, archive)
    assert [s["path"] for s in manifest["skipped"]] == ["summary/spine-total_flux_ps.csv"]
    reason = manifest["skipped"][0]["reason"]
    assert "no log10" in reason and "floor" in reason
    assert "prism/spine-total_flux_ps.csv" in archive.namelist()

    job = finished(client, _export(client, study["id"], comparisons=False, summary_floor=1e4))
    archive, _ = _zip(client, job)
    manifest = _assert_files_are_the_routes_answers(client, archive)
    assert manifest["skipped"] == []
    spine = next(f for f in manifest["files"] if f["path"] == "summary/spine-total_flux_ps.csv")
    assert spine["produced_by"]["parameters"]["floor"] == 1e4
    # the zero raised to the floor: day 0 control mean of log10 = (4 + 5 x 5) / 6
    rows = list(csv.DictReader(io.StringIO(archive.read(spine["path"]).decode())))
    first = next(r for r in rows if r["arm"] == "Isotype IgG1" and float(r["day"]) == 0)
    assert_allclose(float(first["mean [log10(p/s)]"]), (4 + 5 * 5) / 6, rtol=1e-12)


def test_a_file_its_route_refuses_is_skipped_and_said_so_other_errors_fail_the_export(
    client: TestClient,
    study: dict[str, Any],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = parts.produce

    def no_prism(*args: Any, **kwargs: Any) -> bytes:
        if args[-1]["kind"] == "prism":
            raise Unprocessable("No Prism table today.")
        return real(*args, **kwargs)

    monkeypatch.setattr(parts, "produce", no_prism)
    job = finished(client, _export(client, study["id"], comparisons=False))
    assert job["state"] == "succeeded", job
    archive, _ = _zip(client, job)
    manifest = _assert_files_are_the_routes_answers(client, archive)
    assert "prism/whole_body-total_flux_ps.csv" not in archive.namelist()
    assert manifest["skipped"] == [
        {
            "path": "prism/whole_body-total_flux_ps.csv",
            "reason": "No Prism table today.",
            "produced_by": {
                "route": f"GET /studies/{study['id']}/export/prism",
                "parameters": {"site": "whole_body", "metric": "total_flux_ps", "format": "csv"},
            },
        }
    ]

    def broken(*args: Any, **kwargs: Any) -> bytes:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(parts, "produce", broken)
    failed = finished(client, _export(client, study["id"], comparisons=False))
    assert (failed["state"], failed["error"]["status"], failed["result_url"]) == (
        "failed",
        500,
        None,
    )
    download = client.get(f"/studies/{study['id']}/exports/{failed['id']}")
    assert_problem(download, 409, "failed, so there is no file", "unexpected RuntimeError")
    assert "Retry-After" not in download.headers


def _click(tmp_path: Path, number: str, fluxes: tuple[float, ...]) -> bytes:
    mice, sources = default_hotel(fluxes)
    folder = write_synthetic_click(
        tmp_path / number, mice=mice, sources=sources, click_number=number
    )
    return zip_folder(folder.path)


def _radiance(client: TestClient, route: str) -> np.ndarray:
    response = client.get(route.removeprefix("GET ").replace("/overlay", "/image/radiance"))
    assert response.status_code == 200, response.text
    return np.frombuffer(response.content, dtype="<f4")


def test_overlays_share_one_study_wide_colour_range(
    client: TestClient, imaging_session: dict[str, Any], tmp_path: Path
) -> None:
    for number, scale in (("SYN20260715101500", 1.0), ("SYN20260715103000", 20.0)):
        fluxes = tuple(f * scale for f in FLUXES)
        stored = post_zip(client, imaging_session, _click(tmp_path, number, fluxes))
        assert stored.status_code == 201, stored.text
    study_id = imaging_session["study_id"]
    job = finished(client, _export(client, study_id, overlays=True, comparisons=False))
    assert job["state"] == "succeeded", job
    archive, _ = _zip(client, job)
    manifest = _assert_files_are_the_routes_answers(client, archive)
    overlays = [f for f in manifest["files"] if f["path"].startswith("overlays/")]
    assert [f["path"] for f in overlays] == [
        "overlays/day014-SYN20260715101500-dorsal.png",
        "overlays/day014-SYN20260715103000-dorsal.png",
    ]
    colours = manifest["export"]["overlay_colour_range"]
    assert all(
        f["produced_by"]["parameters"] | colours == f["produced_by"]["parameters"] for f in overlays
    )
    # the range imaging.colour_range documents, over both images' pixels pooled: the 99.9th
    # percentile of the positive ones, and 1/50 of it (numpy on the routes' float32 radiance)
    pooled = np.concatenate([_radiance(client, f["produced_by"]["route"]) for f in overlays])
    vmax = np.percentile(pooled[pooled > 0].astype(np.float64), 99.9)
    assert_allclose([colours["vmin"], colours["vmax"]], [vmax / 50, vmax], rtol=1e-6)
    # one range for both: the dimmer click's own range would be far below it
    own = _radiance(client, overlays[0]["produced_by"]["route"])
    assert np.percentile(own[own > 0], 99.9) < vmax / 5


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/studies/s/exports"), ("GET", "/studies/s/exports/6b0e3c1a")],
)
def test_exports_only_queue_or_stream_a_stored_file(method: str, path: str) -> None:
    assert kind_of(method, path) == "request"
