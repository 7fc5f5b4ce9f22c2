"""The randomisations applied to a study, a page at a time: still a plain list (old clients
get every record, up to 500), with X-Total-Count and Link rel=next (SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.app.problems import assert_problem
from tests.app.test_design import study, url  # noqa: F401 (a fixture)


def test_randomisations_are_paged(client: TestClient, study: dict[str, Any]) -> None:  # noqa: F811
    seeds = [21, 22, 23]
    for i, seed in enumerate(seeds):
        body = {"seed": seed, "apply": True} | ({"force": True, "reason": "redo"} if i else {})
        assert client.post(url(study), json=body).status_code == 200
    everything = client.get(url(study))
    assert everything.status_code == 200
    assert [r["seed"] for r in everything.json()] == seeds  # a plain list, oldest first
    assert everything.headers["X-Total-Count"] == "3" and "Link" not in everything.headers
    first = client.get(url(study), params={"limit": 2})
    assert [r["seed"] for r in first.json()] == seeds[:2]
    assert first.headers["X-Total-Count"] == "3"
    link = first.headers["Link"]
    assert link.endswith('>; rel="next"') and "offset=2" in link and "limit=2" in link
    rest = client.get(link[1 : link.index(">")])
    assert [r["seed"] for r in rest.json()] == seeds[2:] and "Link" not in rest.headers
    assert client.get(url(study), params={"offset": 5}).json() == []
    bad = client.get(url(study), params={"limit": 0})
    assert_problem(bad, 422, "limit")
