#!/usr/bin/env bash
#
# compose/smtp-sink.sh - a local SMTP sink (Python's aiosmtpd) that stores every mail it
# accepts in a Maildir, for trying the notifier's email by hand. The integration tests start
# their own sink per test with the same venv (see `venv`).
#
# Usage:
#   compose/smtp-sink.sh up       create the venv if missing, start the sink, wait for its port
#   compose/smtp-sink.sh down     stop it
#   compose/smtp-sink.sh venv     create the venv if missing and print its python
#
# Environment (defaults in brackets):
#   SMTP_SINK_PORT          listen on 127.0.0.1 [2525]
#   TICKETING_RUN_DIR       runtime state [<repo>/.run]; mail in $RUN_DIR/mail (Maildir: new/)
#   TICKETING_CACHE_DIR     venv in $CACHE_DIR/venv [$HOME/.cache/ticketing]

set -euo pipefail
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SMTP_SINK_PORT="${SMTP_SINK_PORT:-2525}"
VENV="$CACHE_DIR/venv"
MAIL_DIR="$RUN_DIR/mail"

# The Python tools the tests use, pinned: the SMTP sink, the API fuzzer and the browser
# driver (Playwright drives Debian's chromium; its own browser downloads are never used).
PY_TOOLS=(aiosmtpd==1.4.6 schemathesis==4.32.5 playwright==1.65.2)

# Creates $VENV with the tools unless it already has them; prints nothing.
ensure_venv() {
    if [[ -x $VENV/bin/python ]] && "$VENV/bin/python" -c 'import aiosmtpd, schemathesis, playwright' 2>/dev/null; then
        return 0
    fi
    log "creating $VENV with ${PY_TOOLS[*]}"
    mkdir -p "$CACHE_DIR"
    [[ -x $VENV/bin/python ]] || python3 -m venv "$VENV" >&2 ||
        die "python3 -m venv failed (install python3-venv)"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check "${PY_TOOLS[@]}" >&2 ||
        die "cannot install ${PY_TOOLS[*]}"
}

cmd_up() {
    take_lock smtp-sink
    if is_running smtp-sink; then
        log "smtp-sink already running on 127.0.0.1:$SMTP_SINK_PORT"
        return 0
    fi
    tcp_open 127.0.0.1 "$SMTP_SINK_PORT" &&
        die "port $SMTP_SINK_PORT is taken: $(port_owner "$SMTP_SINK_PORT")"
    ensure_venv
    mkdir -p "$MAIL_DIR/new" "$MAIL_DIR/cur" "$MAIL_DIR/tmp"
    start_bg smtp-sink "$RUN_DIR/smtp-sink.log" \
        "$VENV/bin/python" -m aiosmtpd -n -l "127.0.0.1:$SMTP_SINK_PORT" \
        -c aiosmtpd.handlers.Mailbox "$MAIL_DIR"
    wait_for "smtp-sink on 127.0.0.1:$SMTP_SINK_PORT" 30 tcp_open 127.0.0.1 "$SMTP_SINK_PORT" ||
        die "smtp-sink did not open its port (see $RUN_DIR/smtp-sink.log)"
    log "smtp-sink on 127.0.0.1:$SMTP_SINK_PORT, mail in $MAIL_DIR/new"
}

cmd_down() {
    take_lock smtp-sink
    stop_bg smtp-sink 10
}

case "${1:-}" in
up) cmd_up ;;
down) cmd_down ;;
venv)
    ensure_venv
    printf '%s\n' "$VENV/bin/python"
    ;;
*) die "usage: $0 up|down|venv" ;;
esac
