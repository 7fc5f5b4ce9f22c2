"""Fixtures shared by every test package."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

SHARED_DIR = Path(__file__).resolve().parents[2] / "shared"


@pytest.fixture(scope="session")
def reference_data() -> Path:
    """``../shared/reference-data`` next to the checkout; skips where it is absent."""
    path = SHARED_DIR / "reference-data"
    if not path.is_dir():
        pytest.skip(
            f"reference data not found at {path} (it lives in ../shared next to the checkout)"
        )
    return path


@pytest.fixture(scope="session")
def ivis_reference_folder(reference_data: Path) -> Path:
    """The real Living Image export folder ``DG20220105114235``."""
    return reference_data / "ivis" / "DG20220105114235"


@pytest.fixture(scope="session")
def longitudinal_data(reference_data: Path) -> Path:
    """Published tumour-growth studies (tumr, CRUK course, SynergyLMM, Xeva, TumGrowth)."""
    return reference_data / "longitudinal"


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (``make test`` runs ``-n 2``) each worker but the first gets a
    PostgreSQL database of its own, ``<database>_<worker>``, created here: the tests drop and
    rebuild the ``public`` schema, so two workers must never share one. The subprocesses the
    tests start (``osteolux serve``, workers) inherit the worker's URL from the environment."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    url = os.environ.get("OSTEOLUX_TEST_POSTGRES_URL")
    if not worker or worker == "gw0" or not url:
        return
    base = make_url(url)
    name = f"{base.database}_{worker}"
    engine = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            exists = conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
            if not exists:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        raise pytest.UsageError(
            f"pytest-xdist worker {worker} needs a PostgreSQL database of its own ({name}) and "
            f"could not create it: {exc}. Give the test user CREATEDB (.ci/run does), or run "
            "the suite in one process (pytest -n 0)."
        ) from exc
    finally:
        engine.dispose()
    os.environ["OSTEOLUX_TEST_POSTGRES_URL"] = base.set(database=name).render_as_string(
        hide_password=False
    )


_BACKEND_RESULTS: dict[str, dict[str, int]] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Count outcomes per database backend, so a run shows that PostgreSQL really ran."""
    backend = next((b for b in ("sqlite", "postgresql") if f"[{b}" in report.nodeid), None)
    if backend is None or (report.when != "call" and report.outcome == "passed"):
        return
    counts = _BACKEND_RESULTS.setdefault(backend, {})
    outcome = "error" if report.when != "call" and report.failed else report.outcome
    counts[outcome] = counts.get(outcome, 0) + 1


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _BACKEND_RESULTS:
        terminalreporter.section("database backends")
        for backend, counts in sorted(_BACKEND_RESULTS.items()):
            summary = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items()))
            terminalreporter.write_line(f"{backend}: {summary}")
