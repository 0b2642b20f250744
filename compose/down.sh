#!/usr/bin/env bash
#
# compose/down.sh - stops what compose/up.sh started, by pid: the services first, then
# Kafka and PostgreSQL. Safe to run twice.
#
# Usage:
#   compose/down.sh

set -euo pipefail
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

for name in command-api admitter notifier saga-orchestrator payment-sim projections relay; do
    stop_bg "$name" 30
done
"$ROOT/compose/kafka.sh" down
PG_PORT="${PG_PORT:-5432}" "$ROOT/compose/postgres.sh" down
