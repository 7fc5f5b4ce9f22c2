"""The workspace's files: served at / with a strict Content-Security-Policy, nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from app.workspace.router import CONTENT_SECURITY_POLICY


@pytest.fixture
def dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text(
        '<!doctype html><script type="module" src="/assets/index-abc.js"></script>'
    )
    (tmp_path / "assets" / "index-abc.js").write_text("console.log(1)")
    (tmp_path / "secret.txt").write_text("not an asset")
    monkeypatch.setenv("OSTEOLUX_WORKSPACE_DIR", str(tmp_path))
    return tmp_path


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    settings = Settings(data_dir=tmp_path / "data")
    with TestClient(create_app(settings)) as c:
        yield c


def test_index_with_security_headers(dist: Path, client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    csp = dict(
        part.strip().split(" ", 1)
        for part in response.headers["content-security-policy"].split(";")
    )
    assert csp["default-src"] == "'none'"
    assert csp["script-src"] == "'self'"  # no inline script, no CDN
    assert csp["connect-src"] == "'self'"
    assert csp["frame-ancestors"] == "'none'"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-cache"


def test_assets_are_immutable_and_confined(dist: Path, client: TestClient) -> None:
    asset = client.get("/assets/index-abc.js")
    assert asset.status_code == 200
    assert asset.headers["content-type"].startswith(("text/javascript", "application/javascript"))
    assert "immutable" in asset.headers["cache-control"]
    for path in ("/assets/../secret.txt", "/assets/%2e%2e/secret.txt", "/assets/missing.js"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert "not an asset" not in response.text


def test_one_policy_per_page(dist: Path, client: TestClient) -> None:
    """The workspace's CSP is the workspace's alone: one header on /, and Swagger UI at /docs
    (which needs its inline script) keeps its own."""
    assert len(client.get("/").headers.get_list("content-security-policy")) == 1
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert docs.headers.get("content-security-policy") != CONTENT_SECURITY_POLICY
    assert client.get("/health").status_code == 200


def test_not_built_says_how_to_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, client: TestClient
) -> None:
    monkeypatch.setenv("OSTEOLUX_WORKSPACE_DIR", str(tmp_path / "nothing"))
    response = client.get("/")
    assert response.status_code == 503
    assert "npm run build" in response.text
