"""Route-level role checks, declared where a route is (``dependencies=[EditorsOnly]``).

What each role may do (the README's role table says the same):

- ``admin``: everything an editor may, and manage the lab's API keys.
- ``editor``: read and change study data.
- ``instrument``: what an instrument PC needs: read studies and sessions, open imaging
  sessions and upload images; never correct sessions, import measurement CSVs, edit ROIs,
  run comparisons or change study design.
- ``viewer``: read only.
"""

from __future__ import annotations

from fastapi import Depends

from app.deps import PrincipalDep


def _editors_only(principal: PrincipalDep) -> None:
    principal.require_write()


EditorsOnly = Depends(_editors_only)
"""Editors and admins only: an instrument key or a viewer key gets 403."""
