"""Service settings, read from ``OSTEOLUX_*`` environment variables (or a ``.env`` file)."""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything the service can be configured with; nothing is created when it is read."""

    model_config = SettingsConfigDict(env_prefix="OSTEOLUX_", env_file=".env", extra="ignore")

    data_dir: Path = Field(
        default=Path("data"),
        description="Where the embedded SQLite database and the local blob store live.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; defaults to SQLite at <data_dir>/osteolux.db. "
        "PostgreSQL: postgresql+psycopg://user:pass@host/db",
    )
    blob_store: Literal["local", "s3"] = "local"
    blob_dir: Path | None = Field(default=None, description="Defaults to <data_dir>/blobs.")
    s3_endpoint_url: str | None = None
    s3_bucket: str | None = None
    max_upload_bytes: int = Field(default=2 * 1024**3, gt=0)
    min_upload_rate_bps: float = Field(
        default=8 * 1024,
        gt=0,
        description="Slowest a request body may arrive (bytes/s, after the grace period); "
        "slower ones answer 408 and are not kept.",
    )
    upload_grace_s: float = Field(
        default=30.0, gt=0, description="Seconds a body may take before the rate applies."
    )
    max_json_bytes: int = Field(
        default=1024**2, gt=0, description="Limit of a JSON request body (parsed in memory)."
    )
    max_concurrent_requests: int = Field(
        default=24,
        gt=0,
        le=200,
        description="Requests handled at once (the rest wait for a slot); the database "
        "connection pool is sized to it.",
    )
    max_concurrent_uploads: int = Field(
        default=4, gt=0, description="Uploads read, decoded and quantified at once."
    )
    max_concurrent_analyses: int = Field(
        default=2,
        gt=0,
        description="Comparisons, summaries, figures and requantifications computed at once.",
    )
    queue_wait_s: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description="How long a request waits for a slot before it answers 503 + Retry-After.",
    )
    max_image_pixels: int = Field(default=64 * 1024**2, gt=0)
    luciferin_window_min: tuple[float, float] = Field(
        default=(5.0, 15.0),
        description="Minutes after D-luciferin injection an acquisition should be taken in "
        "(flag outside_luciferin_window), e.g. OSTEOLUX_LUCIFERIN_WINDOW_MIN='[10, 20]'.",
    )
    failed_injection_factor: float = Field(
        default=5.0,
        gt=1,
        le=1e6,
        description="A measurement is flagged suspected_failed_injection (kept, never dropped) "
        "when its total flux is this many times below the same animal's previous and next "
        "sessions and below its arm's median that day, e.g. OSTEOLUX_FAILED_INJECTION_FACTOR=10.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    page_size_max: int = Field(default=500, gt=0)
    db_lock_timeout_s: float = Field(
        default=15.0,
        gt=0,
        le=600,
        description="How long a request waits for a database lock before it answers 503 "
        "with Retry-After (SQLite busy timeout, PostgreSQL lock_timeout).",
    )

    jobs_backend: Literal["auto", "embedded", "procrastinate"] = Field(
        default="auto",
        description="Who runs jobs (requantification, comparisons): auto = procrastinate "
        "workers (`osteolux worker`) on PostgreSQL, the serving process itself on SQLite.",
    )
    jobs_in_process: bool = Field(
        default=False,
        description="Run embedded jobs in this API process (a poller thread); `osteolux "
        "serve` turns it on when the backend is embedded.",
    )
    jobs_poll_s: float = Field(
        default=1.0, gt=0, le=60, description="How often an idle runner looks for a job."
    )
    jobs_heartbeat_s: float = Field(
        default=5.0, gt=0, le=300, description="How often a running job says it is alive."
    )
    jobs_stalled_s: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="A running job silent this long lost its runner (killed) and is run again.",
    )
    jobs_max_attempts: int = Field(
        default=5, ge=1, le=50, description="Attempts of a job that meets transient errors."
    )
    jobs_retry_wait_s: float = Field(
        default=2.0, ge=0, le=600, description="First wait before a retry (doubles each time)."
    )
    jobs_step_pause_s: float = Field(
        default=0.0,
        ge=0,
        le=60,
        description="Pause between a job's steps (e.g. clicks), leaving the database to "
        "requests (on SQLite each step holds the one write lock while it runs).",
    )

    @model_validator(mode="after")
    def _s3_needs_a_bucket(self) -> Settings:
        if self.blob_store == "s3" and not self.s3_bucket:
            raise ValueError("OSTEOLUX_BLOB_STORE=s3 needs OSTEOLUX_S3_BUCKET")
        return self

    @model_validator(mode="after")
    def _luciferin_window(self) -> Settings:
        low, high = self.luciferin_window_min
        if not (math.isfinite(low) and math.isfinite(high) and 0 <= low <= high):
            raise ValueError(
                "OSTEOLUX_LUCIFERIN_WINDOW_MIN must be [low, high] minutes with 0 <= low <= high"
            )
        return self

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'osteolux.db').resolve()}"

    @property
    def resolved_blob_dir(self) -> Path:
        return self.blob_dir or self.data_dir / "blobs"


@lru_cache
def get_settings() -> Settings:
    return Settings()
