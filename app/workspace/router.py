"""Serve the built workspace (``web/dist``) at ``/``, same origin, with strict security headers.

The workspace is a static single-page app that only calls the public REST API with the user's
API key (kept in the browser's sessionStorage, never in a URL). Nothing here needs a key: the
files are the same for everyone.
"""

from __future__ import annotations

import mimetypes
import os
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse, Response

from app.errors import NotFound

#: Where ``npm run build`` in ``web/`` writes the app; ``OSTEOLUX_WORKSPACE_DIR`` overrides it
#: (e.g. a container that copies the built files elsewhere).
DEFAULT_DIST = Path(__file__).resolve().parents[2] / "web" / "dist"

#: Only this server's own scripts, styles and API; images may also be blob: URLs made from
#: fetched plots and images (fetched with the key, so a plain <img src> would answer 401).
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' blob: data:",
        "connect-src 'self'",
        "font-src 'self'",
        "manifest-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
        "object-src 'none'",
    )
)

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
}

NOT_BUILT = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>osteolux workspace not built</title></head><body>
<h1>The workspace has not been built</h1>
<p>Run <code>make serve</code> (it builds <code>web/</code> with <code>npm ci &amp;&amp;
npm run build</code>), or <code>cd web &amp;&amp; npm ci &amp;&amp; npm run build</code>.
The API and its documentation are at <a href="/docs">/docs</a>.</p></body></html>"""

router = APIRouter(include_in_schema=False)


def dist_dir() -> Path:
    return Path(os.environ.get("OSTEOLUX_WORKSPACE_DIR") or DEFAULT_DIST)


@router.get("/")
def workspace_index() -> Response:
    """The workspace page (re-validated on every load so a new build is picked up)."""
    index = dist_dir() / "index.html"
    headers = SECURITY_HEADERS | {"Cache-Control": "no-cache"}
    if not index.is_file():
        return HTMLResponse(NOT_BUILT, status_code=503, headers=headers)
    return FileResponse(index, media_type="text/html; charset=utf-8", headers=headers)


@router.get("/assets/{name}")
def workspace_asset(name: str) -> Response:
    """A built, content-hashed script, style or image: cached for a year."""
    assets = (dist_dir() / "assets").resolve()
    path = (assets / name).resolve()
    if path.parent != assets or not path.is_file():
        raise NotFound(f"No workspace asset {name!r}.")
    media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    headers = SECURITY_HEADERS | {"Cache-Control": "public, max-age=31536000, immutable"}
    return FileResponse(path, media_type=media_type, headers=headers)
