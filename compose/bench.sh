#!/usr/bin/env bash
#
# compose/bench.sh - runs one benchmark scenario on this machine: builds the release
# binaries, (re)starts the whole system with benchmark settings on a fresh database and a
# fresh Kafka topic prefix, then runs `loadgen <scenario>`, which prints the pgbench
# reference, throughput, latency percentiles, lag, fan-out figures and the correctness
# checks. BENCHMARKS.md holds the figures of the last runs.
#
# Usage:
#   compose/bench.sh uncontended | hot-section | mixed-onsale | fanout | queue | random-ids [loadgen flags]
#   compose/bench.sh hot-section --buyers 2000 --adjacent
#   compose/bench.sh replay [seconds] [events]
#                                       fills the store with an uncontended run of that many
#                                       seconds (default 120), grows it to that many events
#                                       (default 1,000,000) with `loadgen clone-store`, then
#                                       times `projections replay all` and runs
#                                       `projections verify all`
#
# Benchmark settings (override from the environment): cheap password hashing
# (ARGON2_MEMORY_KIB=1024, ARGON2_ITERATIONS=1, for seeding thousands of buyers), command
# rate limits raised to 1000/s per user, HOLD_TTL_SECONDS=30 and PAYMENT_TIMEOUT_SECONDS=15
# (the "nothing held" check waits for them), PAYMENT_SIM_LATENCY_MS=20.

set -euo pipefail
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

scenario=${1:?usage: compose/bench.sh <scenario> [loadgen flags]}
shift

PG_PORT="${PG_PORT:-5432}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
export ARGON2_MEMORY_KIB="${ARGON2_MEMORY_KIB:-1024}" ARGON2_ITERATIONS="${ARGON2_ITERATIONS:-1}"
export RATE_LIMIT_COMMANDS_PER_SECOND="${RATE_LIMIT_COMMANDS_PER_SECOND:-1000}"
export RATE_LIMIT_COMMANDS_BURST="${RATE_LIMIT_COMMANDS_BURST:-2000}"
export HOLD_TTL_SECONDS="${HOLD_TTL_SECONDS:-30}" PAYMENT_TIMEOUT_SECONDS="${PAYMENT_TIMEOUT_SECONDS:-15}"
export PAYMENT_SIM_LATENCY_MS="${PAYMENT_SIM_LATENCY_MS:-20}"
export BOOTSTRAP_ADMIN_EMAIL="${BOOTSTRAP_ADMIN_EMAIL:-admin@example.com}"
export BOOTSTRAP_ADMIN_PASSWORD="${BOOTSTRAP_ADMIN_PASSWORD:-bench admin password}"
export RUST_LOG="${RUST_LOG:-warn}"
# A fresh database and topic prefix per run: figures do not depend on earlier runs.
bench_db="ticketing_bench"
export DATABASE_URL="postgres://ticketing:ticketing@127.0.0.1:$PG_PORT/$bench_db"
export KAFKA_TOPIC_PREFIX="bench$(date +%s)."
# 10,000 WebSocket clients need as many descriptors in the notifier and in loadgen.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

for name in command-api admitter notifier saga-orchestrator payment-sim projections relay; do
    stop_bg "$name" 30
done
PG_PORT="$PG_PORT" "$ROOT/compose/postgres.sh" up
psql "postgres://ticketing:ticketing@127.0.0.1:$PG_PORT/postgres" -qc "DROP DATABASE IF EXISTS $bench_db WITH (FORCE)"
psql "postgres://ticketing:ticketing@127.0.0.1:$PG_PORT/postgres" -qc "CREATE DATABASE $bench_db"
# A fresh broker too (BENCH_KEEP_KAFKA=1 keeps it): tests and earlier runs leave thousands of
# partitions behind, and a profiled run on such a broker (11,310 partition directories) spent
# 7% of the machine in the JVM's concurrent marking alone.
if [[ "${BENCH_KEEP_KAFKA:-0}" != 1 ]]; then
    "$ROOT/compose/kafka.sh" reset
fi
"$ROOT/compose/up.sh"

JWT_SECRET="${JWT_SECRET:-$(cat "$RUN_DIR/jwt-secret")}"
export JWT_SECRET
NOTIFIER_PID="$(head -n1 "$(pid_file notifier)")"
COMMAND_API_PID="$(head -n1 "$(pid_file command-api)")"
export NOTIFIER_PID COMMAND_API_PID
# loadgen reads the notifier's /stats on its operations listener (up.sh's default port).
export LOADGEN_NOTIFIER_OPS="${LOADGEN_NOTIFIER_OPS:-http://127.0.0.1:${NOTIFIER_OPS_PORT:-9104}}"
if [[ "$scenario" == replay ]]; then
    log "filling the store: loadgen uncontended for ${1:-120} s, half the holds paid for"
    # Its checks wait for the hold and payment deadlines: checked at once (--no-wait), tickets
    # were counted while the saga was still confirming the last payments.
    "$CARGO_TARGET_DIR/release/loadgen" uncontended --max-seconds "${1:-120}" \
        --pay-share 0.5 --visa-share 0.9
    # The services stop first, so the replay is measured alone (the run's holds would
    # otherwise expire and be released by the saga meanwhile).
    for name in command-api admitter notifier saga-orchestrator payment-sim projections relay; do
        stop_bg "$name" 30
    done
    log "events made through the API: $(psql "$DATABASE_URL" -Atc 'SELECT count(*) FROM events')"
    "$CARGO_TARGET_DIR/release/loadgen" clone-store --events "${2:-1000000}"
    psql "$DATABASE_URL" -qc "VACUUM ANALYZE events"
    "$CARGO_TARGET_DIR/release/projections" replay all
    # The rebuilt models against a second rebuild (the live consumers are stopped, so the
    # replay's swapped-in sequences are what they would have applied).
    log "verifying every read model"
    "$CARGO_TARGET_DIR/release/projections" verify all
    exit
fi
log "running loadgen $scenario $*"
"$CARGO_TARGET_DIR/release/loadgen" "$scenario" "$@"
