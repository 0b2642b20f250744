#!/usr/bin/env bash
#
# compose/kafka.sh - runs a single-node Apache Kafka broker (KRaft, broker+controller in one
# JVM) from the jars that compose/install-deps.sh cached; no Docker, no ZooKeeper.
#
# Usage:
#   compose/kafka.sh up       format storage once, start, wait until a message round-trips
#   compose/kafka.sh down     stop (TERM, then KILL after KAFKA_STOP_TIMEOUT seconds)
#   compose/kafka.sh status   exit 0 when running and the port answers, 3 when stopped
#   compose/kafka.sh reset    down, then delete the broker's data (next up formats anew)
#
# Environment (defaults in brackets):
#   KAFKA_PORT              client listener on 127.0.0.1 [9092]
#   KAFKA_CONTROLLER_PORT   KRaft controller listener on 127.0.0.1 [9093]
#   KAFKA_VERSION           which cached jars to use [4.4.0]
#   KAFKA_HEAP_OPTS         JVM heap [-Xms256m -Xmx512m]
#   KAFKA_READY_TIMEOUT     seconds for up to become ready [90]
#   KAFKA_STOP_TIMEOUT      seconds between TERM and KILL on down [30]
#   KAFKA_READY_CHECK       optional executable run after the built-in round trip, with
#                           KAFKA_BROKERS set; it must exit 0 for up to succeed
#   TICKETING_RUN_DIR       runtime state [<repo>/.run]; broker state in $RUN_DIR/kafka
#                           (a second broker needs its own TICKETING_RUN_DIR and ports)
#   TICKETING_CACHE_DIR     jar cache [$HOME/.cache/ticketing]
#
# Files in $RUN_DIR/kafka: server.properties, log4j2.properties (INFO to kafka.log, rolling;
# WARN and above to the console, that is stdout.log), data/ (log.dirs), stdout.log;
# pid in $RUN_DIR/kafka.pid.
#
# Readiness: the client port accepts TCP connections, then Kafka's own EndToEndLatency tool
# (kafka-tools jar) creates the topic ticketing-readiness-check if needed, produces a record
# with acks=all and reads that same record back; then KAFKA_READY_CHECK, if set.

set -euo pipefail
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"
KAFKA_READY_TIMEOUT="${KAFKA_READY_TIMEOUT:-90}"
KAFKA_STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"
KAFKA_DIR="$RUN_DIR/kafka"
HOST=127.0.0.1
BROKERS="$HOST:$KAFKA_PORT"
NAME=kafka
DATA="$KAFKA_DIR/data"
READY_TOPIC=ticketing-readiness-check
# Short-lived tool JVMs: small heap, fast start.
TOOL_JVM_OPTS=(-Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xshare:auto)

for p in KAFKA_PORT KAFKA_CONTROLLER_PORT KAFKA_READY_TIMEOUT KAFKA_STOP_TIMEOUT; do
    [[ ${!p} =~ ^[0-9]+$ ]] || die "$p must be a number, got '${!p}'"
done

require_jars() {
    [[ -f $KAFKA_LIBS_MARKER ]] ||
        die "Kafka $KAFKA_VERSION jars missing in $KAFKA_LIBS: run compose/install-deps.sh"
    command -v java >/dev/null 2>&1 || die "java not found: run compose/install-deps.sh"
}

# tool CLASS ARGS...: run a Kafka command-line class from the cached jars, logging WARN+
# to stderr, killed after TOOL_TIMEOUT seconds (default 120).
tool() {
    local class=$1
    shift
    timeout "${TOOL_TIMEOUT:-120}" java "${TOOL_JVM_OPTS[@]}" -cp "$KAFKA_LIBS/*" \
        -Dlog4j2.configurationFile="$KAFKA_DIR/tools-log4j2.properties" "$class" "$@"
}

write_config() {
    mkdir -p "$KAFKA_DIR" "$DATA"
    cat >"$KAFKA_DIR/server.properties" <<EOF
# Written by compose/kafka.sh on every up; edits here are overwritten.
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=$HOST:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://$HOST:$KAFKA_PORT,CONTROLLER://$HOST:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$HOST:$KAFKA_PORT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$DATA
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
num.partitions=3
log.retention.hours=24
EOF
    cat >"$KAFKA_DIR/log4j2.properties" <<EOF
# Written by compose/kafka.sh. INFO and above to kafka.log (rolling, 4 x 20 MB at most),
# WARN and above to the console (stdout.log).
status = warn
name = ticketing-kafka

appender.console.type = Console
appender.console.name = CONSOLE
appender.console.target = SYSTEM_OUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
appender.console.filter.threshold.type = ThresholdFilter
appender.console.filter.threshold.level = warn

appender.file.type = RollingFile
appender.file.name = FILE
appender.file.fileName = $KAFKA_DIR/kafka.log
appender.file.filePattern = $KAFKA_DIR/kafka.log.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 20MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 3

rootLogger.level = info
rootLogger.appenderRef.console.ref = CONSOLE
rootLogger.appenderRef.file.ref = FILE

logger.request.name = kafka.request.logger
logger.request.level = warn
EOF
    cat >"$KAFKA_DIR/tools-log4j2.properties" <<'EOF'
# Written by compose/kafka.sh. Command-line tools: WARN and above to stderr.
status = warn
name = ticketing-kafka-tools
appender.stderr.type = Console
appender.stderr.name = STDERR
appender.stderr.target = SYSTEM_ERR
appender.stderr.layout.type = PatternLayout
appender.stderr.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.stderr.ref = STDERR
EOF
}

# Format the storage once. The controller's address is recorded in the metadata log at
# format time, so a later change of KAFKA_CONTROLLER_PORT needs a reset.
format_once() {
    local ports_file="$KAFKA_DIR/formatted-controller-port"
    if [[ -f $DATA/meta.properties ]]; then
        local formatted
        formatted=$(cat "$ports_file" 2>/dev/null || echo "$KAFKA_CONTROLLER_PORT")
        [[ $formatted == "$KAFKA_CONTROLLER_PORT" ]] ||
            die "storage in $DATA was formatted for controller port $formatted, not" \
                "$KAFKA_CONTROLLER_PORT: use that port, another TICKETING_RUN_DIR, or 'compose/kafka.sh reset'"
        return 0
    fi
    local cluster_id
    cluster_id=$(tool kafka.tools.StorageTool random-uuid | tr -d '[:space:]')
    [[ -n $cluster_id ]] || die "StorageTool random-uuid printed nothing"
    log "formatting $DATA (cluster id $cluster_id)"
    tool kafka.tools.StorageTool format --standalone -t "$cluster_id" \
        -c "$KAFKA_DIR/server.properties" >"$KAFKA_DIR/format.log" 2>&1 || {
        cat "$KAFKA_DIR/format.log" >&2
        die "formatting Kafka storage failed"
    }
    printf '%s\n' "$KAFKA_CONTROLLER_PORT" >"$ports_file"
}

clear_ports() {
    local port
    for port in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
        if tcp_open "$HOST" "$port"; then
            port_owner "$port" >&2
            die "port $HOST:$port is in use by something that is not this broker;" \
                "stop it or set KAFKA_PORT / KAFKA_CONTROLLER_PORT"
        fi
    done
}

fail_with_logs() {
    log "last lines of $KAFKA_DIR/stdout.log:"
    tail -n 20 "$KAFKA_DIR/stdout.log" >&2 2>/dev/null || true
    log "last lines of $KAFKA_DIR/kafka.log:"
    tail -n 20 "$KAFKA_DIR/kafka.log" >&2 2>/dev/null || true
    die "$*"
}

port_open() {
    is_running "$NAME" || fail_with_logs "the broker exited during startup"
    tcp_open "$HOST" "$KAFKA_PORT"
}

# One attempt at the round trip, in one JVM: Kafka's EndToEndLatency tool creates the
# topic when it is missing, produces one record with acks=all, consumes it from the end
# of the partition and checks that what came back is what was sent.
round_trip() {
    is_running "$NAME" || fail_with_logs "the broker exited during startup"
    local out
    if out=$(TOOL_TIMEOUT=60 tool org.apache.kafka.tools.EndToEndLatency \
        --bootstrap-server "$BROKERS" --topic "$READY_TOPIC" --num-records 1 \
        --producer-acks all --record-size 64 2>&1); then
        return 0
    fi
    printf '%s\n' "$out" | tail -n 5 >&2
    return 1
}

external_check() {
    [[ -n ${KAFKA_READY_CHECK:-} ]] || return 0
    [[ -x $KAFKA_READY_CHECK ]] || die "KAFKA_READY_CHECK=$KAFKA_READY_CHECK is not executable"
    KAFKA_BROKERS="$BROKERS" "$KAFKA_READY_CHECK"
}

cmd_up() {
    require_jars
    local started
    started=$(now_s)
    if is_running "$NAME"; then
        log "broker already running (pid $(pid_of "$NAME")); checking readiness"
    else
        clear_ports
        write_config
        format_once
        log "starting Kafka $KAFKA_VERSION on $BROKERS (controller $HOST:$KAFKA_CONTROLLER_PORT, logs in $KAFKA_DIR)"
        # shellcheck disable=SC2086  # KAFKA_HEAP_OPTS holds several words on purpose
        start_bg "$NAME" "$KAFKA_DIR/stdout.log" \
            java $KAFKA_HEAP_OPTS -XX:+UseG1GC -Djava.awt.headless=true \
            -Dlog4j2.configurationFile="$KAFKA_DIR/log4j2.properties" \
            -cp "$KAFKA_LIBS/*" kafka.Kafka "$KAFKA_DIR/server.properties"
    fi
    local deadline=$((started + KAFKA_READY_TIMEOUT))
    wait_for "broker port $BROKERS" $((deadline - $(now_s))) port_open ||
        fail_with_logs "the broker port $BROKERS did not open within ${KAFKA_READY_TIMEOUT}s"
    log "port open after $(($(now_s) - started))s; checking a round trip on $READY_TOPIC"
    local left=$((deadline - $(now_s)))
    ((left > 0)) || left=1
    wait_for "a record round-trips through $BROKERS" "$left" round_trip ||
        fail_with_logs "no round trip through $BROKERS within ${KAFKA_READY_TIMEOUT}s"
    external_check || fail_with_logs "KAFKA_READY_CHECK ($KAFKA_READY_CHECK) failed"
    log "Kafka ready on $BROKERS after $(($(now_s) - started))s"
}

cmd_down() {
    if is_running "$NAME"; then
        stop_bg "$NAME" "$KAFKA_STOP_TIMEOUT"
    else
        rm -f "$(pid_file "$NAME")"
        log "broker is not running"
    fi
}

cmd_status() {
    if is_running "$NAME"; then
        if tcp_open "$HOST" "$KAFKA_PORT"; then
            echo "kafka: running (pid $(pid_of "$NAME")) on $BROKERS"
            return 0
        fi
        echo "kafka: running (pid $(pid_of "$NAME")), port $BROKERS not open yet"
        return 1
    fi
    echo "kafka: stopped"
    return 3
}

cmd_reset() {
    cmd_down
    log "deleting $DATA"
    rm -rf "$DATA" "$KAFKA_DIR/formatted-controller-port"
}

case "${1:-}" in
up | down | reset) take_lock "$NAME" $((KAFKA_READY_TIMEOUT + KAFKA_STOP_TIMEOUT + 60)) ;;
*) ;;
esac

case "${1:-}" in
up) cmd_up ;;
down) cmd_down ;;
status) cmd_status ;;
reset) cmd_reset ;;
*)
    sed -n '3,/^$/p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
