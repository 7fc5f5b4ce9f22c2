"""Fixtures shared by every test package."""

from __future__ import annotations

from pathlib import Path

import pytest

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
