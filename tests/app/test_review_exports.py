"""Review of study exports: deleting one checks the references of its files in one query
(not once per file)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Connection

from tests.app.jobs import finished
from tests.app.test_analysis_api import study  # noqa: F401
from tests.app.test_exports import _export
from tests.app.test_query_counts import counting


def test_deleting_an_export_checks_its_files_references_in_one_query(
    client: TestClient,
    study: dict[str, Any],  # noqa: F811
    db_connection: Connection,
) -> None:
    job = finished(client, _export(client, study["id"]))
    files = len(job["result"]["files"]) + 1  # and the ZIP
    assert files >= 5
    with counting(db_connection) as statements:
        deleted = client.delete(job["result_url"], headers={"X-Change-Reason": "wrong sites"})
    assert deleted.status_code == 204, deleted.text
    # the anti-join over every referencing table names the audit trail's changes once
    checks = [s for s in statements if "json_each" in s or "json_array_elements" in s]
    assert len(checks) == 1, f"{len(checks)} reference checks for {files} files"
