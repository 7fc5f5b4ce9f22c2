"""The FastAPI application: ``create_app()`` wires settings, database, routes and errors."""

from __future__ import annotations

import gc
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text
from swagger_ui_bundle import swagger_ui_path

from app import __version__
from app.acquisitions.router import router as acquisitions_router
from app.acquisitions.router import study_router as sequence_router
from app.analysis.router import router as analysis_router
from app.animals.router import router as animals_router
from app.arms.router import router as arms_router
from app.audit.router import router as audit_router
from app.config import Settings, get_settings
from app.db import make_engine, make_session_factory, read_only_engine
from app.design.router import router as design_router
from app.errors import install_error_handlers
from app.exports.router import router as exports_router
from app.field.router import router as field_router
from app.guard import Limits, RequestGuard, SecurityHeaders
from app.ingest.router import router as ingest_router
from app.jobs.embedded import start_in_process
from app.jobs.router import router as jobs_router
from app.labs.router import router as labs_router
from app.limits import BodySizeLimit
from app.measurements.router import router as measurements_router
from app.memory import keep_freed_memory
from app.onset.router import router as onset_router
from app.readouts.router import router as readouts_router
from app.responses import PROBLEM_SCHEMA
from app.rois.router import router as rois_router
from app.sessions.router import router as sessions_router
from app.storage import make_blob_store
from app.studies.router import router as studies_router
from app.viewer.router import router as viewer_router
from app.workspace import router as workspace_router

DESCRIPTION = """
Osteolux keeps preclinical **bioluminescence imaging** studies of bone metastasis:
studies, their control and treatment arms, and their animals; imaging sessions and their
quantification; and treatment-vs-control comparisons.

**Authentication**: every request needs an API key — click *Authorize* and paste it
(`Authorization: Bearer <key>` or `X-API-Key: <key>`). A lab admin creates the first key with
`osteolux create-lab`. Objects of other labs are never visible.

**Errors** are [RFC 9457](https://www.rfc-editor.org/rfc/rfc9457) `application/problem+json`
with a `detail` saying what was wrong and how to fix it.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The event loop shares the GIL with the worker threads that compute; Python hands
        # it over every 5 ms by default, so a loop waiting behind a few busy threads answers
        # /health late. 0.5 ms: /health p99 under load 16-90 ms instead of 105-145 ms
        # (bench/bench_load.py, 2 API processes, 16 clients and held load; throughput alike).
        sys.setswitchinterval(0.0005)
        keep_freed_memory()  # large arrays reuse freed memory instead of fresh zeroed pages
        engine = make_engine(
            settings.resolved_database_url,
            lock_timeout_s=settings.db_lock_timeout_s,
            # Every request in flight may hold one connection (the guard bounds them), plus
            # a few short key lookups: a burst waits for a slot, never for the pool.
            pool_size=settings.max_concurrent_requests,
            max_overflow=8,
        )
        app.state.session_factory = make_session_factory(engine)
        app.state.read_session_factory = make_session_factory(read_only_engine(engine))
        jobs = start_in_process(app.state, settings, engine.dialect.name)
        # What the process has built by now (modules, the app and its routes: ~270 000
        # objects) lives as long as it does, yet every full collection of the cyclic garbage
        # collector scanned it all with the GIL held: ~150 ms, every few thousand requests,
        # that each request and /health in flight waited for. Frozen, a full collection scans
        # only what came after (~6 ms once the first requests imported matplotlib, pandas,
        # statsmodels and scipy). Unfrozen at shutdown, so what dies with the app is freed.
        gc.freeze()
        yield
        gc.unfreeze()
        if jobs is not None:
            jobs.stop()
        engine.dispose()
        close_store = getattr(app.state.blob_store, "close", None)
        if close_store is not None:  # the S3 store's client
            close_store()

    app = FastAPI(
        title="osteolux",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.blob_store = make_blob_store(settings)
    logging.getLogger("app").setLevel(settings.log_level)
    install_error_handlers(app)
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_upload_bytes,
        max_json_bytes=settings.max_json_bytes,
        min_rate_bps=settings.min_upload_rate_bps,
        grace_s=settings.upload_grace_s,
    )
    app.add_middleware(SecurityHeaders)
    app.add_middleware(
        RequestGuard,
        limits=Limits(
            requests=settings.max_concurrent_requests,
            uploads=settings.max_concurrent_uploads,
            analyses=settings.max_concurrent_analyses,
            queue_wait_s=settings.queue_wait_s,
        ),
    )
    for router in (
        labs_router,
        studies_router,
        arms_router,
        animals_router,
        sessions_router,
        ingest_router,
        acquisitions_router,
        sequence_router,
        rois_router,
        measurements_router,
        readouts_router,
        analysis_router,
        onset_router,
        design_router,
        exports_router,
        audit_router,
        viewer_router,
        field_router,
        jobs_router,
        workspace_router,
    ):
        app.include_router(router)
    _serve_docs_offline(app)

    @app.get("/health", tags=["service"], summary="Liveness check")
    async def health() -> dict[str, str]:
        """Answers without an API key, for load balancers and container health checks
        (on the event loop, not in a worker thread: it answers while every thread is busy)."""
        return {"status": "ok", "version": __version__}

    @app.get(
        "/health/ready",
        tags=["service"],
        summary="Readiness check",
        responses={503: {"description": "The database or the file store cannot be reached."}},
    )
    def ready() -> JSONResponse:
        """Whether the database and the raw-file store answer (no API key needed): 200 when
        both do, else 503 with Retry-After naming what is down, for orchestrators."""
        checks = {"database": _check_database(app), "store": _check_store(app)}
        healthy = all(v == "ok" for v in checks.values())
        return JSONResponse(
            {"status": "ok" if healthy else "unavailable", "version": __version__, **checks},
            status_code=200 if healthy else 503,
            headers=None if healthy else {"Retry-After": "5"},
        )

    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _check_database(app: FastAPI) -> str:
    try:
        with app.state.read_session_factory() as session:
            session.execute(text("SELECT 1"))
    except Exception as exc:  # any failure means "not ready", said in words
        return f"unavailable: {type(exc).__name__}"
    return "ok"


def _check_store(app: FastAPI) -> str:
    try:
        app.state.blob_store.exists("0" * 64)
    except Exception as exc:
        return f"unavailable: {type(exc).__name__}"
    return "ok"


def _serve_docs_offline(app: FastAPI) -> None:
    # Labs are often offline: Swagger UI's JS/CSS come from this server, never a CDN.
    app.mount("/static/swagger-ui", StaticFiles(directory=str(swagger_ui_path)), name="swagger-ui")

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title="osteolux — API",
            swagger_js_url="/static/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url="/static/swagger-ui/swagger-ui.css",
            swagger_favicon_url="/static/swagger-ui/favicon-32x32.png",
            swagger_ui_parameters={"persistAuthorization": True, "displayRequestDuration": True},
        )


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
        app.openapi_schema = schema
    return app.openapi_schema
