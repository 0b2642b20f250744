#!/usr/bin/env bash
#
# compose/test.sh - the whole test suite, starting what it needs (the README's test command;
# .ci/run calls exactly this).
#
# Usage:
#   compose/test.sh [extra cargo test args]
#
# Steps: install missing dependencies (compose/install-deps.sh); check formatting and
# clippy; build the workspace once (every test binary and the service binaries the
# integration tests start as processes); start PostgreSQL on 5432, a second, isolated
# PostgreSQL cluster on 5433 (for the test that holds transactions open on purpose, which
# would stall every other relay on the same cluster) and Kafka on 9092; run every test.
# Services this script started are stopped again at the end; ones already running (for
# example a stack from compose/up.sh) are reused and left running.
#
# The web app's browser flows (command-api/tests/it/web.rs) run inside `cargo test` like the
# other integration tests; their screenshots land in $CARGO_TARGET_DIR/web-screenshots.
#
# Environment: CARGO_TARGET_DIR [<repo>/target], PG_PORT [5432], PG_ISOLATED_PORT [5433],
# KAFKA_PORT [9092], SKIP_LINT=1 skips fmt/clippy, CHROMIUM [/usr/bin/chromium].

set -euo pipefail
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PG_PORT="${PG_PORT:-5432}"
PG_ISOLATED_PORT="${PG_ISOLATED_PORT:-5433}"
KAFKA_PORT="${KAFKA_PORT:-9092}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
# A test run builds once; incremental caches would add ~12 GiB beside ~9 GiB of artifacts and
# have filled a CI disk. Developers iterating with plain `cargo` keep their own default.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
started=()

cleanup() {
    local status=$?
    for ((i = ${#started[@]} - 1; i >= 0; i--)); do
        case "${started[$i]}" in
            kafka) "$ROOT/compose/kafka.sh" down || true ;;
            pg:*) PG_PORT="${started[$i]#pg:}" "$ROOT/compose/postgres.sh" down || true ;;
        esac
    done
    exit "$status"
}
trap cleanup EXIT

begin=$(now_s)
"$ROOT/compose/install-deps.sh"
# shellcheck source=/dev/null
[[ -f "$HOME/.cargo/env" ]] && source "$HOME/.cargo/env"
cd "$ROOT"

if [[ "${SKIP_LINT:-0}" != 1 ]]; then
    log "checking formatting and lints"
    cargo fmt --all --check
    cargo clippy --workspace --all-targets --locked -- -D warnings
fi

log "building the workspace once"
cargo build --workspace --all-targets --locked

# `up` also brings the roles of a cluster that was already running to what the tests
# expect (a schema owner that is no superuser, passwords for every role); only a cluster
# started here is stopped at the end.
for port in "$PG_PORT" "$PG_ISOLATED_PORT"; do
    if ! PG_PORT="$port" "$ROOT/compose/postgres.sh" status >/dev/null 2>&1; then
        started+=("pg:$port")
    fi
    PG_PORT="$port" "$ROOT/compose/postgres.sh" up
done
if ! KAFKA_PORT="$KAFKA_PORT" "$ROOT/compose/kafka.sh" status >/dev/null 2>&1; then
    KAFKA_PORT="$KAFKA_PORT" "$ROOT/compose/kafka.sh" up
    started+=("kafka")
fi

export TEST_DATABASE_URL="postgres://ticketing:ticketing@127.0.0.1:$PG_PORT/ticketing"
export TEST_ISOLATED_DATABASE_URL="postgres://ticketing:ticketing@127.0.0.1:$PG_ISOLATED_PORT/ticketing"
# The application role compose/postgres.sh made (one password for both clusters): the test
# that runs the services with least privilege signs in as it.
TEST_APP_DATABASE_PASSWORD="$(cat "$RUN_DIR/app-db-password")"
export TEST_APP_DATABASE_PASSWORD
export KAFKA_BROKERS="127.0.0.1:$KAFKA_PORT"

SMTP_SINK_PYTHON="$("$ROOT/compose/smtp-sink.sh" venv)"
export SMTP_SINK_PYTHON
# The API fuzzer lives in the same venv.
export SCHEMATHESIS="$(dirname "$SMTP_SINK_PYTHON")/st"
# The web app's browser tests: Debian's chromium, axe-core fetched from npm.
AXE_CORE_JS="$("$ROOT/compose/web-vendor.sh" axe)"
export AXE_CORE_JS
export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
"$ROOT/compose/web-vendor.sh" check

log "running the tests"
cargo test --workspace --locked "$@" -- --nocapture 2>&1 | tee "$RUN_DIR/test-output.log"
log "test suite finished in $(($(now_s) - begin))s"
