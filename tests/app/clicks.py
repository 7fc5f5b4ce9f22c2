"""Synthetic IVIS clicks and an imaging session to upload them to, shared by upload tests."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from imaging import default_hotel, write_synthetic_click
from tests.app.factories import make_animal, make_control, make_study, make_treatment

FLUXES = (2.0e5, 1.0e7, 8.0e6, 5.0e5, 1.0e5)
ANIMALS = [str(3466 + i) for i in range(5)]


def zip_folder(folder: Path, *, skip: tuple[str, ...] = ()) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.iterdir()):
            if path.name not in skip:
                archive.write(path, f"{folder.name}/{path.name}")
    return buffer.getvalue()


def synthetic_hotel_zip(tmp_path: Path) -> bytes:
    """Five mice left to right (3466–3470), one spine source each of FLUXES p/s."""
    mice, sources = default_hotel(FLUXES)
    click = write_synthetic_click(
        tmp_path / "SYN20260715101500", mice=mice, sources=sources, click_number="SYN20260715101500"
    )
    return zip_folder(click.path)


def new_imaging_session(client: TestClient) -> dict[str, Any]:
    """A study with animals 3466–3470 and one imaging session on day 14."""
    study = make_study(client)
    control = make_control(client, study["id"])
    treatment = make_treatment(client, study["id"], control["id"])
    for i, animal in enumerate(ANIMALS):
        make_animal(client, study["id"], (control if i < 3 else treatment)["id"], animal)
    session = client.post(
        f"/studies/{study['id']}/sessions", json={"acquired_at": "2026-07-15T10:15:00+02:00"}
    ).json()
    return session | {"study_id": study["id"]}


def url(s: dict) -> str:
    return f"/studies/{s['study_id']}/sessions/{s['id']}/acquisitions"


def post_zip(
    client: TestClient, s: dict, content: bytes, name: str = "click.zip", **form: str
) -> Any:
    return client.post(url(s), files={"file": (name, content, "application/zip")}, data=form)
