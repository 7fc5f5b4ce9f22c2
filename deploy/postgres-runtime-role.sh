#!/bin/sh
# Creates the API's runtime database role. The postgres image runs this once, when its data
# volume is first initialised (/docker-entrypoint-initdb.d); on an existing database a
# superuser runs the same CREATE ROLE by hand. `osteolux migrate --grant-runtime-role` then
# gives the role its privileges: data read/write, audit trail SELECT and INSERT only.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v role="$OSTEOLUX_RUNTIME_ROLE" -v password="$OSTEOLUX_RUNTIME_PASSWORD" <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'password'
    NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
SQL
