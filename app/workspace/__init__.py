"""The lab workspace: the single-page app built from ``web/`` and served at ``/``."""

from app.workspace.router import router

__all__ = ["router"]
