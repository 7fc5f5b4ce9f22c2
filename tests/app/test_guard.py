"""Which concurrency limit each kind of request counts against (app/guard.py)."""

from __future__ import annotations

import pytest

from app.guard import kind_of

S = "/studies/6f1c2e3a-0000-4000-8000-000000000001"
A = f"{S}/sessions/6f1c2e3a-0000-4000-8000-000000000002/acquisitions"


@pytest.mark.parametrize(
    ("method", "path", "kind"),
    [
        ("POST", A, "upload"),
        ("PUT", f"{A}/6f1c2e3a-0000-4000-8000-000000000003", "upload"),
        ("POST", f"{A}/tiff", "upload"),
        ("POST", f"{S}/measurements/import", "upload"),
        ("POST", f"{S}/readouts/import", "upload"),
        ("POST", f"{S}/comparisons", "analysis"),
        ("POST", f"{S}/power", "analysis"),
        ("POST", "/design/power", "analysis"),
        ("GET", f"{S}/plots/growth", "analysis"),
        ("GET", f"{S}/summary", "analysis"),
        ("GET", f"{A}/6f1c2e3a-0000-4000-8000-000000000003/overlay", "analysis"),
        ("GET", f"{A}/6f1c2e3a-0000-4000-8000-000000000003/overlay.svg", "analysis"),
        ("GET", f"{S}/sequence.png", "analysis"),
        ("GET", f"{S}/onset/interval-censored", "analysis"),
        ("GET", f"{S}/onset/interval-censored/plot", "analysis"),
        ("GET", f"{S}/sites/burden", "analysis"),
        ("GET", f"{S}/readouts/6f1c2e3a-0000-4000-8000-000000000004/correlation", "analysis"),
        # queuing a job is quick: the work runs outside the request
        ("POST", f"{S}/requantify", "request"),
        ("POST", f"{S}/power/jobs", "request"),
        ("POST", f"{S}/randomisation", "request"),
        ("GET", f"{S}/comparisons", "request"),
        ("GET", "/studies", "request"),
        ("PATCH", f"{A}/6f1c2e3a-0000-4000-8000-000000000003/rois/x", "request"),
    ],
)
def test_kind_of(method: str, path: str, kind: str) -> None:
    assert kind_of(method, path) == kind
