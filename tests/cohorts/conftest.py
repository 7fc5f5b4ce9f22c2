"""Fixtures for the cohorts tests: published reference studies loaded as cohorts."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from cohorts import Cohort, Observation

TUMR = {"ID": "animal", "Treatment": "arm", "Day": "day", "Volume": "value"}


@pytest.fixture(scope="session")
def melanoma1(longitudinal_data: Path) -> Cohort:
    """tumr melanoma1: 35 mice, arms A (control) - D, caliper volume."""
    return Cohort.from_frame(
        pd.read_csv(longitudinal_data / "tumr" / "melanoma1.csv"), columns=TUMR
    )


@pytest.fixture(scope="session")
def melanoma2(longitudinal_data: Path) -> Cohort:
    """tumr melanoma2: 47 mice, arms A (control) - E, caliper volume."""
    return Cohort.from_frame(
        pd.read_csv(longitudinal_data / "tumr" / "melanoma2.csv"), columns=TUMR
    )


@pytest.fixture(scope="session")
def breast(longitudinal_data: Path) -> Cohort:
    """tumr breast: 28 rats, VEH vs NR, weekly volume with 17 missing values."""
    frame = pd.read_csv(longitudinal_data / "tumr" / "breast.csv")
    return Cohort.from_frame(frame, columns={**TUMR, "Week": "day"})


@pytest.fixture(scope="session")
def cruk(longitudinal_data: Path) -> Cohort:
    """CRUK course TGCdSet: 35 mice, Vehicle / Carboplatin / Gefitinib / combination."""
    frame = pd.read_csv(longitudinal_data / "CRUK_mixed_models_course" / "TGCdSet.csv")
    cols = {"IDmouse": "animal", "ExpGroup": "arm", "time": "day", "TVolume": "value"}
    return Cohort.from_frame(frame, columns=cols)


@pytest.fixture(scope="session")
def xeva_p1(longitudinal_data: Path) -> Cohort:
    """Xeva repdx batch P1: 6 control and 6 treated PDX replicates."""
    long = pd.read_csv(longitudinal_data / "Xeva" / "repdx_long.csv")
    batches = pd.read_csv(longitudinal_data / "Xeva" / "repdx_batches.csv")
    p1 = batches[batches["batch"] == "P1"]
    frame = long.merge(p1, on="model.id")
    cols = {"model.id": "animal", "exp.type": "arm", "time": "day", "volume": "value"}
    return Cohort.from_frame(frame, columns=cols)


def make_cohort(
    table: dict[str, tuple[str, dict[float, float]]], *, site: str = "whole_body", ends=()
) -> Cohort:
    """Small hand-made cohort: ``{animal: (arm, {day: value})}``."""
    obs = [
        Observation(animal, arm, day, value, site=site)
        for animal, (arm, series) in table.items()
        for day, value in series.items()
    ]
    return Cohort.from_records(obs, ends=ends)
