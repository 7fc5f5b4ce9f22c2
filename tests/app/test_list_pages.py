"""The lists that grow come a page at a time, in a stable order (rows created in the same
instant are neither skipped nor repeated across pages), at a cost in SQL statements that does
not grow with the rows: API keys, a study's comparisons, an acquisition's ROI history and the
readouts with their values (whose CSV stays whole)."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from app.models import Acquisition, ApiKey, Comparison, Roi, RoiSource, Site, View
from tests.app.clicks import url
from tests.app.factories import make_animal, make_control, make_study, make_treatment
from tests.app.test_query_counts import counting

SAME_INSTANT = datetime(2026, 7, 15, 8, tzinfo=UTC)


def _walk_pages(client: TestClient, path: str, limit: int) -> tuple[list[dict], int]:
    """Every item of a Page[...] list, fetched ``limit`` at a time; the number of pages."""
    items: list[dict] = []
    pages = 0
    while True:
        page = client.get(path, params={"limit": limit, "offset": len(items)})
        assert page.status_code == 200, page.text
        body = page.json()
        assert len(body["items"]) <= limit
        items += body["items"]
        pages += 1
        if len(items) >= body["total"] or not body["items"]:
            return items, pages


def _follow_links(client: TestClient, path: str, limit: int) -> tuple[list[dict], int, str]:
    """Every item of a plain list, following Link rel="next"; pages and X-Total-Count."""
    items: list[dict] = []
    next_url: str | None = f"{path}?limit={limit}"
    pages, total = 0, ""
    while next_url:
        answer = client.get(next_url)
        assert answer.status_code == 200, answer.text
        assert len(answer.json()) <= limit
        items += answer.json()
        total = answer.headers["X-Total-Count"]
        link = answer.headers.get("Link")
        next_url = link.split(">")[0].lstrip("<") if link else None
        pages += 1
    return items, pages, total


def _statements(db_connection: Connection, call: Callable[[], Any]) -> int:
    with counting(db_connection) as statements:
        call()
    return len(statements)


def test_api_keys_come_a_page_at_a_time(
    client: TestClient, db_session: Session, db_connection: Connection
) -> None:
    for i in range(4):
        assert client.post("/keys", json={"name": f"IVIS PC {i}", "role": "instrument"}).is_success
    # Five keys created in the same instant: only the id orders them.
    db_session.execute(update(ApiKey).values(created_at=SAME_INSTANT))
    db_session.commit()
    every = client.get("/keys").json()
    assert (every["total"], every["limit"], every["offset"]) == (5, 50, 0)
    items, pages = _walk_pages(client, "/keys", limit=2)
    assert pages == 3
    assert [k["id"] for k in items] == [k["id"] for k in every["items"]]
    assert len({k["id"] for k in items}) == 5
    assert client.get("/keys", params={"limit": 501}).status_code == 422


@pytest.fixture
def compared(client: TestClient, db_session: Session) -> dict[str, Any]:
    """A small two-arm study with one stored comparison cloned into five, all created in the
    same instant."""
    study = make_study(client)
    control = make_control(client, study["id"])
    treatment = make_treatment(client, study["id"], control["id"])
    lines = ["animal,day,site,total_flux_ps"]
    for arm, prefix in ((control, "c"), (treatment, "t")):
        for i in range(3):
            make_animal(client, study["id"], arm["id"], f"{prefix}{i}")
            lines += [
                f"{prefix}{i},{day},whole_body,{(i + 1) * 10 ** (5 + day / 7)}" for day in (0, 7)
            ]
    imported = client.post(
        f"/studies/{study['id']}/measurements/import",
        files={"file": ("flux.csv", "\n".join(lines).encode(), "text/csv")},
    )
    assert imported.status_code == 201, imported.text
    created = client.post(
        f"/studies/{study['id']}/comparisons",
        json={"treatment_arm_id": treatment["id"], "analyses": ["per_day"]},
    )
    assert created.status_code == 201, created.text
    stored = db_session.get_one(Comparison, uuid.UUID(created.json()["id"]))
    columns = {c.key for c in Comparison.__table__.columns} - {"id"}
    for _ in range(4):
        db_session.add(Comparison(**{c: getattr(stored, c) for c in columns}))
    db_session.execute(update(Comparison).values(created_at=SAME_INSTANT))
    db_session.commit()
    return study


def test_comparisons_come_a_page_at_a_time_with_a_link_to_the_next(
    client: TestClient, compared: dict[str, Any], db_connection: Connection
) -> None:
    path = f"/studies/{compared['id']}/comparisons"
    every = client.get(path)
    assert every.headers["X-Total-Count"] == "5" and "Link" not in every.headers
    items, pages, total = _follow_links(client, path, limit=2)
    assert (pages, total) == (3, "5")
    assert [c["id"] for c in items] == [c["id"] for c in every.json()]
    assert len({c["id"] for c in items}) == 5
    assert all(c["inputs_changed"] is False for c in items)
    # Comparisons of the same arms, site and window are checked against one load of the
    # current data: a page of 1 costs what a page of 5 does.
    one = _statements(db_connection, lambda: client.get(path, params={"limit": 1}))
    five = _statements(db_connection, lambda: client.get(path))
    assert one == five


def test_roi_history_comes_a_page_at_a_time(
    client: TestClient, imaging_session: dict, db_session: Session, db_connection: Connection
) -> None:
    acquisition = Acquisition(
        session_id=uuid.UUID(imaging_session["id"]),
        view=View.dorsal,
        click_number="SYN0001",
        units="p/s/cm²/sr",
    )
    db_session.add(acquisition)
    db_session.flush()

    def add_versions(n: int) -> None:
        for i in range(n):
            db_session.add(
                Roi(
                    acquisition_id=acquisition.id,
                    site=Site.spine,
                    label="spine",
                    shape="circle",
                    geometry={"cx": 10.0 + i, "cy": 10.0, "r": 3.0},
                    source=RoiSource.client,
                    is_current=False,
                    created_at=SAME_INSTANT,
                )
            )
        db_session.commit()

    path = f"{url(imaging_session)}/{acquisition.id}/roi-history"
    add_versions(2)
    few = _statements(db_connection, lambda: client.get(path))
    add_versions(5)
    many = _statements(db_connection, lambda: client.get(path))
    assert few == many
    every = client.get(path)
    assert every.headers["X-Total-Count"] == "7"
    items, pages, total = _follow_links(client, path, limit=3)
    assert (pages, total) == (3, "7")
    assert [v["roi_id"] for v in items] == [v["roi_id"] for v in every.json()]
    assert len({v["roi_id"] for v in items}) == 7


@pytest.fixture
def readouts(client: TestClient) -> dict[str, Any]:
    """Three readouts (two with the same name at different sites) of six animals."""
    study = make_study(client)
    control = make_control(client, study["id"])
    for i in range(6):
        make_animal(client, study["id"], control["id"], f"c{i}")
    base = f"/studies/{study['id']}/readouts"
    for name, site in (("tumour area", "left_hindlimb"), ("tumour area", "right_hindlimb")):
        body = {"name": name, "unit": "mm²", "kind": "numeric", "site": site}
        assert client.post(base, json=body).status_code == 201
    assert client.post(base, json={"name": "fracture", "kind": "binary"}).status_code == 201
    rows = ["animal,readout,site,value"] + [
        f"c{i},tumour area,{site},{i + 0.5}"
        for i in range(6)
        for site in ("left_hindlimb", "right_hindlimb")
    ]
    rows += [f"c{i},fracture,,{i % 2}" for i in range(6)]
    imported = client.post(
        f"{base}/import", files={"file": ("r.csv", "\n".join(rows).encode(), "text/csv")}
    )
    assert imported.status_code == 201, imported.text
    return study


def test_readouts_and_their_values_come_a_page_at_a_time(
    client: TestClient, readouts: dict[str, Any], db_connection: Connection
) -> None:
    base = f"/studies/{readouts['id']}/readouts"
    listed, pages = _walk_pages(client, base, limit=2)
    assert pages == 2
    assert [(r["name"], r["site"], r["values"]) for r in listed] == [
        ("fracture", None, 6),
        ("tumour area", "left_hindlimb", 6),
        ("tumour area", "right_hindlimb", 6),
    ]
    every = client.get(f"{base}/values").json()
    assert every["total"] == 18
    values, pages = _walk_pages(client, f"{base}/values", limit=5)
    assert pages == 4
    assert [v["id"] for v in values] == [v["id"] for v in every["items"]]
    assert len({v["id"] for v in values}) == 18
    # One readout's values, paged alike.
    left = listed[1]["id"]
    one, _ = _walk_pages(client, f"{base}/{left}/values", limit=4)
    assert [(v["animal"], v["value"]) for v in one] == [(f"c{i}", i + 0.5) for i in range(6)]
    # The CSVs hold every row, whatever the page asked for.
    for path, n in ((f"{base}/values", 18), (f"{base}/{left}/values", 6)):
        exported = client.get(path, params={"format": "csv", "limit": 1})
        assert len(list(csv.DictReader(io.StringIO(exported.text)))) == n
    # A page of 1 costs what a page of 18 does.
    small = _statements(db_connection, lambda: client.get(f"{base}/values", params={"limit": 1}))
    large = _statements(db_connection, lambda: client.get(f"{base}/values"))
    assert small == large
    small = _statements(db_connection, lambda: client.get(base, params={"limit": 1}))
    large = _statements(db_connection, lambda: client.get(base))
    assert small == large
