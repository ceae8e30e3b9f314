#!/bin/sh
# Runs once, when the postgres-data volume is first initialised (docker-entrypoint-initdb.d,
# after 01-extensions.sql): the owner and app roles of infra/postgres/roles.psql (mounted at
# /etc/mi/roles.psql), made by the superuser over the local socket. The values come from the
# container's environment (compose passes the POSTGRES_* keys of the env file).
set -eu
: "${POSTGRES_OWNER_USER:?POSTGRES_OWNER_USER is not set: run uv run inv env.setup}"
: "${POSTGRES_OWNER_PASSWORD:?POSTGRES_OWNER_PASSWORD is not set: run uv run inv env.setup}"
: "${POSTGRES_APP_USER:?POSTGRES_APP_USER is not set: run uv run inv env.setup}"
: "${POSTGRES_APP_PASSWORD:?POSTGRES_APP_PASSWORD is not set: run uv run inv env.setup}"
: "${POSTGRES_APP_STATEMENT_TIMEOUT:=30s}"
export POSTGRES_APP_STATEMENT_TIMEOUT
psql --no-psqlrc --username "${POSTGRES_USER:-postgres}" --dbname postgres \
    --file "${MI_ROLES_SCRIPT:-/etc/mi/roles.psql}"
echo "initdb: roles ${POSTGRES_OWNER_USER} (owner) and ${POSTGRES_APP_USER} (app) ready"
