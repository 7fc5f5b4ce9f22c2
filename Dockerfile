# osteolux image: the workspace (web/) built with Node, served with the API by slim Python,
# running as an unprivileged user.
FROM node:20-slim AS workspace
WORKDIR /web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY web ./
RUN npm run build

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    OSTEOLUX_DATA_DIR=/var/lib/osteolux

RUN useradd --system --create-home --uid 10001 osteolux \
    && mkdir -p /var/lib/osteolux \
    && chown osteolux:osteolux /var/lib/osteolux

WORKDIR /srv/osteolux
# Dependencies first, so code edits do not reinstall them.
COPY pyproject.toml README.md ./
COPY app/__init__.py app/__init__.py
COPY imaging/__init__.py imaging/__init__.py
COPY cohorts/__init__.py cohorts/__init__.py
RUN pip install --quiet .
# Then the code, installed in place so Alembic finds alembic/ next to app/.
COPY alembic.ini ./
COPY alembic alembic
COPY app app
COPY imaging imaging
COPY cohorts cohorts
COPY push push
COPY --from=workspace /web/dist web/dist
RUN pip install --quiet --no-deps -e .

USER osteolux
EXPOSE 8000
# The API's check (the default command serves on 8000). A container running the job worker
# serves no port: it checks itself with `osteolux worker --check` (PostgreSQL and the job
# queue answer, a worker's heartbeat is fresh), as docker-compose.yml's worker service does
# (`docker run --health-cmd "osteolux worker --check" … osteolux worker` without compose).
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=5 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health')"
CMD ["osteolux", "serve", "--host", "0.0.0.0", "--port", "8000"]
