"""docker-compose.yml and the Dockerfile are valid and wired together (no Docker engine here)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_services_present(compose: dict[str, Any]) -> None:
    assert {"db", "objectstore", "migrate", "api"} <= set(compose["services"])


def test_database_has_a_pg_isready_healthcheck(compose: dict[str, Any]) -> None:
    db = compose["services"]["db"]
    assert db["image"].startswith("postgres:15")
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])


def test_migration_runs_once_before_the_api(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["migrate"]["command"] == ["osteolux", "migrate"]
    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["depends_on"]["db"]["condition"] == "service_healthy"
    api = services["api"]
    assert api["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert api["depends_on"]["db"]["condition"] == "service_healthy"
    assert "--no-migrate" in api["command"]  # replicas never race on migrations


def test_api_points_at_the_compose_database_and_object_store(compose: dict[str, Any]) -> None:
    services = compose["services"]
    env = services["api"]["environment"]
    assert env == services["migrate"]["environment"]
    db_url = urlsplit(env["OSTEOLUX_DATABASE_URL"])
    db_env = services["db"]["environment"]
    assert db_url.scheme == "postgresql+psycopg"
    assert db_url.hostname == "db"
    assert (db_url.username, db_url.password) == (
        db_env["POSTGRES_USER"],
        db_env["POSTGRES_PASSWORD"],
    )
    assert db_url.path.lstrip("/") == db_env["POSTGRES_DB"]
    assert urlsplit(env["OSTEOLUX_S3_ENDPOINT_URL"]).hostname == "objectstore"
    store_env = services["objectstore"]["environment"]
    assert env["AWS_ACCESS_KEY_ID"] == store_env["MINIO_ROOT_USER"]
    assert env["AWS_SECRET_ACCESS_KEY"] == store_env["MINIO_ROOT_PASSWORD"]
    assert env["OSTEOLUX_S3_BUCKET"] in " ".join(services["createbucket"]["command"])


def test_dockerfile_is_slim_and_unprivileged() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.1\d-slim", dockerfile, re.M)
    users = re.findall(r"^USER (\S+)", dockerfile, re.M)
    assert users and users[-1] not in {"root", "0"}
    assert "osteolux" in re.search(r"^CMD (.+)$", dockerfile, re.M).group(1)
    for path in re.findall(r"^COPY (\S+) ", dockerfile, re.M):
        assert (ROOT / path).exists(), path
