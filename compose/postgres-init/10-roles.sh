#!/usr/bin/env bash
#
# compose/postgres-init/10-roles.sh - least-privilege roles for compose/docker-compose.yml.
# The postgres image runs it once, on the first boot of an empty data volume, as the
# superuser (POSTGRES_USER, over the container's socket, with its password).
#
#   ticketing      the schema owner: migrations (the `migrate` service), the replay CLI, the
#                  payment simulator's own schema. LOGIN only; owns database ticketing.
#   ticketing_app  the services: LOGIN only. `projections migrate --grant-to ticketing_app`
#                  gives it DML on the tables (events append-only) and nothing else.
#
# Passwords come from OWNER_DB_PASSWORD and APP_DB_PASSWORD; every role signs in with
# scram-sha-256 (POSTGRES_INITDB_ARGS).

set -euo pipefail

psql -v ON_ERROR_STOP=1 -X -q --username "$POSTGRES_USER" --dbname postgres \
    -v owner_password="$OWNER_DB_PASSWORD" -v app_password="$APP_DB_PASSWORD" <<'SQL'
SELECT format('CREATE ROLE ticketing LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD %L',
              :'owner_password') \gexec
SELECT format('CREATE ROLE ticketing_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD %L',
              :'app_password') \gexec
CREATE DATABASE ticketing OWNER ticketing;
SQL
