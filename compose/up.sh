#!/usr/bin/env bash
#
# compose/up.sh - brings the whole system up on 127.0.0.1 without Docker (the README's run
# command): installs what is missing, builds the services (release), starts PostgreSQL and
# Kafka, then relay, projections, payment-sim, saga-orchestrator, notifier, admitter and command-api, waits until
# command-api is ready and prints the URLs. Idempotent: what already runs is left running.
#
# Usage:
#   BOOTSTRAP_ADMIN_EMAIL=admin@example.com BOOTSTRAP_ADMIN_PASSWORD='change me 123' compose/up.sh
#   compose/down.sh      stops everything up.sh started
#
# DATABASE_URL is the schema owner's (migrations); the services connect as the application
# role (APP_DATABASE_URL, by default ticketing_app with the password compose/postgres.sh
# keeps in $RUN_DIR/app-db-password). Secrets not set are generated into $RUN_DIR.
# Every setting documented in the README (JWT_*, BOOTSTRAP_ADMIN_*, RATE_LIMIT_*, ARGON2_*,
# KAFKA_PARTITIONS, …) is passed through from this environment to the services.
# TICKETING_PROFILE=dev builds debug binaries instead (faster to build, slower to run).
# Logs: $RUN_DIR/logs/<service>.log.

set -euo pipefail
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PG_PORT="${PG_PORT:-5432}"
KAFKA_PORT="${KAFKA_PORT:-9092}"
HTTP_PORT="${HTTP_PORT:-8080}"
NOTIFIER_PORT="${NOTIFIER_PORT:-8081}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
export DATABASE_URL="${DATABASE_URL:-postgres://ticketing:ticketing@127.0.0.1:$PG_PORT/ticketing}"
export KAFKA_BROKERS="${KAFKA_BROKERS:-127.0.0.1:$KAFKA_PORT}"
# No service has a built-in secret: a local stack without JWT_SECRET or
# PAYMENT_WEBHOOK_SECRET gets random ones, kept in the run folder (mode 600) so tokens
# survive restarts of the stack and local tools (bench.sh, loadgen) can read them.
mkdir -p "$RUN_DIR"
if [[ -z "${JWT_SECRET:-}" ]]; then
    if [[ ! -s "$RUN_DIR/jwt-secret" ]]; then
        (umask 077 && head -c 48 /dev/urandom | base64 | tr -d '\n=' >"$RUN_DIR/jwt-secret")
    fi
    JWT_SECRET="$(cat "$RUN_DIR/jwt-secret")"
fi
export JWT_SECRET
if [[ -z "${PAYMENT_WEBHOOK_SECRET:-}" ]]; then
    if [[ ! -s "$RUN_DIR/webhook-secret" ]]; then
        (umask 077 && head -c 32 /dev/urandom | base64 | tr -d '\n=' >"$RUN_DIR/webhook-secret")
    fi
    PAYMENT_WEBHOOK_SECRET="$(cat "$RUN_DIR/webhook-secret")"
fi
export PAYMENT_WEBHOOK_SECRET

"$ROOT/compose/install-deps.sh"
# shellcheck source=/dev/null
[[ -f "$HOME/.cargo/env" ]] && source "$HOME/.cargo/env"

profile_flag=(--release)
bin_dir="$CARGO_TARGET_DIR/release"
if [[ "${TICKETING_PROFILE:-release}" == dev ]]; then
    profile_flag=()
    bin_dir="$CARGO_TARGET_DIR/debug"
fi
log "building the services"
(cd "$ROOT" && cargo build --locked "${profile_flag[@]}" --bins)

PG_PORT="$PG_PORT" "$ROOT/compose/postgres.sh" up
KAFKA_PORT="$KAFKA_PORT" "$ROOT/compose/kafka.sh" up

# Least privilege: the schema owner (DATABASE_URL) migrates and grants; the services run
# as the application role (DML only; events append-only). The payment simulator stands in
# for an outside provider and keeps its own schema, so it runs as the owner. Both URLs are
# written to the run folder for local tools.
OWNER_DATABASE_URL="$DATABASE_URL"
DATABASE_APP_ROLE="${DATABASE_APP_ROLE:-ticketing_app}"
if [[ -z "${APP_DATABASE_URL:-}" && -s "$RUN_DIR/app-db-password" ]]; then
    APP_DATABASE_URL="postgres://$DATABASE_APP_ROLE:$(cat "$RUN_DIR/app-db-password")@${OWNER_DATABASE_URL#*@}"
elif [[ -z "${APP_DATABASE_URL:-}" ]]; then
    log "no application role password in $RUN_DIR (PostgreSQL not started by compose/postgres.sh): services run as the owner; set APP_DATABASE_URL"
    APP_DATABASE_URL="$OWNER_DATABASE_URL"
fi
log "applying migrations as the schema owner, granting $DATABASE_APP_ROLE"
DATABASE_URL="$OWNER_DATABASE_URL" "$bin_dir/projections" migrate --grant-to "$DATABASE_APP_ROLE" >/dev/null
(umask 077 && printf '%s\n' "$APP_DATABASE_URL" >"$RUN_DIR/database-url" &&
    printf '%s\n' "$OWNER_DATABASE_URL" >"$RUN_DIR/owner-database-url")

# service NAME ADDR_VAR ADDR: starts one service unless it already runs.
service() {
    local name=$1
    shift
    if is_running "$name"; then
        log "$name already running"
        return
    fi
    log "starting $name"
    start_bg "$name" "$RUN_DIR/logs/$name.log" env DATABASE_URL="$APP_DATABASE_URL" "$@" "$bin_dir/$name"
}

service relay OPS_ADDR="127.0.0.1:${RELAY_OPS_PORT:-9100}"
service projections OPS_ADDR="127.0.0.1:${PROJECTIONS_OPS_PORT:-9101}"
service payment-sim DATABASE_URL="$OWNER_DATABASE_URL" PAYMENT_SIM_ADDR="127.0.0.1:${PAYMENT_SIM_PORT:-8090}" \
    OPS_ADDR="127.0.0.1:${PAYMENT_SIM_OPS_PORT:-9105}" \
    PAYMENT_WEBHOOK_URL="http://127.0.0.1:$HTTP_PORT/api/payments/webhook"
service saga-orchestrator OPS_ADDR="127.0.0.1:${SAGA_OPS_PORT:-9102}" \
    PAYMENT_PROVIDER_URL="http://127.0.0.1:${PAYMENT_SIM_PORT:-8090}"
# The web app (served by command-api) opens the notifier's WebSocket from its own origin.
service notifier NOTIFIER_ADDR="127.0.0.1:$NOTIFIER_PORT" OPS_ADDR="127.0.0.1:${NOTIFIER_OPS_PORT:-9104}" \
    WS_ALLOWED_ORIGINS="${WS_ALLOWED_ORIGINS:-http://127.0.0.1:$HTTP_PORT,http://localhost:$HTTP_PORT}"
service admitter OPS_ADDR="127.0.0.1:${ADMITTER_OPS_PORT:-9106}"
service command-api HTTP_ADDR="127.0.0.1:$HTTP_PORT" OPS_ADDR="127.0.0.1:${API_OPS_PORT:-9103}" \
    NOTIFIER_PUBLIC_URL="${NOTIFIER_PUBLIC_URL:-ws://127.0.0.1:$NOTIFIER_PORT/ws}"

ready() {
    curl -fsS "http://127.0.0.1:${API_OPS_PORT:-9103}/ready" >/dev/null
}
wait_for "command-api readiness" 120 ready || die "command-api is not ready; see $RUN_DIR/logs/command-api.log"

cat <<MSG

Ticketing is up:
  Web app          http://127.0.0.1:$HTTP_PORT/   (organizer pages at /organizer)
  API              http://127.0.0.1:$HTTP_PORT/api   (health /health)
  WebSocket        ws://127.0.0.1:$NOTIFIER_PORT
Operations endpoints (/ready, /metrics; loopback only):
  command-api ops  http://127.0.0.1:${API_OPS_PORT:-9103}/metrics
  notifier ops     http://127.0.0.1:${NOTIFIER_OPS_PORT:-9104}/metrics   (and /stats)
  relay ops        http://127.0.0.1:${RELAY_OPS_PORT:-9100}/metrics
  projections ops  http://127.0.0.1:${PROJECTIONS_OPS_PORT:-9101}/metrics
  saga ops         http://127.0.0.1:${SAGA_OPS_PORT:-9102}/metrics
  admitter ops     http://127.0.0.1:${ADMITTER_OPS_PORT:-9106}/metrics
  payment sim ops  http://127.0.0.1:${PAYMENT_SIM_OPS_PORT:-9105}/ledger
  PostgreSQL       services as $DATABASE_APP_ROLE ($RUN_DIR/database-url),
                   owner for migrations and replay ($RUN_DIR/owner-database-url)
  Kafka            $KAFKA_BROKERS
Logs in $RUN_DIR/logs; stop with compose/down.sh
MSG
