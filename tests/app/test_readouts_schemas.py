"""The readouts API names every field the cohorts results return (and adds only its own)."""

from __future__ import annotations

import dataclasses

import cohorts
from app.readouts import schemas


def test_typed_results_name_every_field_cohorts_returns() -> None:
    pairs = [
        (cohorts.ReadoutArm, schemas.ReadoutArm),
        (cohorts.ReadoutArmComparison, schemas.ReadoutArmComparison),
        (cohorts.SkippedPair, schemas.SkippedPair),
    ]
    for dc, model in pairs:
        assert {f.name for f in dataclasses.fields(dc)} == set(model.model_fields), dc.__name__
    added = {"study_id", "readout_id", "site"}
    comparison = {f.name for f in dataclasses.fields(cohorts.ReadoutComparison)}
    assert comparison | added == set(schemas.ReadoutComparison.model_fields)
    spearman = {f.name for f in dataclasses.fields(cohorts.SpearmanResult)}
    assert spearman <= set(schemas.SiteCorrelation.model_fields)
