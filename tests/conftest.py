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
        pytest.skip(f"reference data not found at {path} (it lives in ../shared next to the checkout)")
    return path


@pytest.fixture(scope="session")
def ivis_reference_folder(reference_data: Path) -> Path:
    """The real Living Image export folder ``DG20220105114235``."""
    return reference_data / "ivis" / "DG20220105114235"


@pytest.fixture(scope="session")
def longitudinal_data(reference_data: Path) -> Path:
    """Published tumour-growth studies (tumr, CRUK course, SynergyLMM, Xeva, TumGrowth)."""
    return reference_data / "longitudinal"
