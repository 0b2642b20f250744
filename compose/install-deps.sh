#!/usr/bin/env bash
#
# compose/install-deps.sh - installs what the local stack and the Rust build need, then
# fetches the Apache Kafka broker jars into a cache outside the checkout. Idempotent:
# nothing is installed or downloaded when it is already there.
#
# Usage:
#   compose/install-deps.sh
#
# Debian packages (apt-get, only the missing ones; "apt-get update" runs once, and only
# when something is missing):
#   postgresql-15 (server binaries in /usr/lib/postgresql/15/bin), openjdk-17-jre-headless
#   (when java 17+ is missing), maven (when mvn is missing), pkg-config, zlib1g-dev,
#   libssl-dev, build-essential and cmake (for librdkafka), curl, python3-venv (only when
#   `python3 -m venv` does not work), chromium and chromium-driver (the web app's browser
#   tests; never `playwright install`), npm (fetches axe-core for those tests; the app itself
#   needs no Node toolchain).
#
# Python venv: $CACHE_DIR/venv with aiosmtpd (the test SMTP sink), schemathesis and
# Playwright for Python, via compose/smtp-sink.sh.
#
# Kafka jars: org.apache.kafka:kafka_2.13 and kafka-tools at $KAFKA_VERSION plus the log4j2
# backend, copied with Maven into $CACHE_DIR/kafka-$KAFKA_VERSION/libs (Maven's local
# repository stays the default, ~/.m2). Skipped when libs/.fetch-complete exists.
# Kafka 4.x depends on slf4j-api 1.7.36, so the binding is log4j-slf4j-impl (the SLF4J 1.x
# one, as in Kafka's own distribution): log4j-slf4j2-impl would be ignored by slf4j-api 1.7
# and every log line would go to the no-op logger.
#
# Environment:
#   KAFKA_VERSION          Kafka version to fetch (default 4.4.0)
#   LOG4J_VERSION          log4j2 version (default 2.26.1)
#   TICKETING_CACHE_DIR    cache root (default $HOME/.cache/ticketing)
#   SKIP_APT=1             do not install Debian packages, only fetch the jars

# shellcheck source-path=SCRIPTDIR
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

LOG4J_VERSION="${LOG4J_VERSION:-2.26.1}"
DEPENDENCY_PLUGIN_VERSION="3.8.1"
PG_MAJOR=15

pkg_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

java_major() {
    local v
    v=$(java -version 2>&1 | sed -n 's/.*version "\([0-9][0-9]*\).*/\1/p' | head -n1)
    printf '%s\n' "${v:-0}"
}

missing=()

collect_missing() {
    [[ -x /usr/lib/postgresql/$PG_MAJOR/bin/postgres && -x /usr/lib/postgresql/$PG_MAJOR/bin/psql ]] ||
        missing+=("postgresql-$PG_MAJOR")
    if ! command -v java >/dev/null 2>&1 || (($(java_major) < 17)); then
        missing+=(openjdk-17-jre-headless)
    fi
    command -v mvn >/dev/null 2>&1 || missing+=(maven)
    command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
    pkg_installed zlib1g-dev || missing+=(zlib1g-dev)
    pkg_installed libssl-dev || missing+=(libssl-dev)
    if ! command -v cc >/dev/null 2>&1 || ! command -v c++ >/dev/null 2>&1 || ! command -v make >/dev/null 2>&1; then
        missing+=(build-essential)
    fi
    command -v cmake >/dev/null 2>&1 || missing+=(cmake)
    command -v curl >/dev/null 2>&1 || missing+=(curl)
    [[ -x /usr/bin/chromium ]] || missing+=(chromium)
    pkg_installed chromium-driver || missing+=(chromium-driver)
    command -v npm >/dev/null 2>&1 || missing+=(npm)
    # The test SMTP sink (aiosmtpd) runs from a venv; Debian ships venv (and the ensurepip
    # it needs, without which `--help` still works but creating one fails) separately.
    if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
        missing+=(python3-venv)
    fi
    return 0
}

install_packages() {
    collect_missing
    if ((${#missing[@]} == 0)); then
        log "Debian packages: all present"
        return 0
    fi
    local sudo=()
    if ((EUID != 0)); then
        command -v sudo >/dev/null 2>&1 || die "need root (or sudo) to install: ${missing[*]}"
        sudo=(sudo)
    fi
    log "installing: ${missing[*]}"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
    if [[ " ${missing[*]} " == *" postgresql-$PG_MAJOR "* ]]; then
        log "note: the Debian package may have created and started its own cluster on 5432;" \
            "compose/postgres.sh stops it when it is in the way"
    fi
}

write_pom() {
    cat >"$1/pom.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0"
         xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
         xsi:schemaLocation="http://maven.apache.org/POM/4.0.0 http://maven.apache.org/xsd/maven-4.0.0.xsd">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.ticketing</groupId>
  <artifactId>kafka-jars</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencyManagement>
    <dependencies>
      <dependency>
        <groupId>org.apache.logging.log4j</groupId>
        <artifactId>log4j-bom</artifactId>
        <version>$LOG4J_VERSION</version>
        <type>pom</type>
        <scope>import</scope>
      </dependency>
    </dependencies>
  </dependencyManagement>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>$KAFKA_VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka-tools</artifactId>
      <version>$KAFKA_VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-core</artifactId>
    </dependency>
  </dependencies>
  <build>
    <plugins>
      <plugin>
        <groupId>org.apache.maven.plugins</groupId>
        <artifactId>maven-dependency-plugin</artifactId>
        <version>$DEPENDENCY_PLUGIN_VERSION</version>
      </plugin>
    </plugins>
  </build>
</project>
EOF
}

fetch_kafka_jars() {
    if [[ -f $KAFKA_LIBS_MARKER ]]; then
        log "Kafka $KAFKA_VERSION jars: already in $KAFKA_LIBS"
        return 0
    fi
    command -v mvn >/dev/null 2>&1 || die "mvn not found (run without SKIP_APT=1)"
    local parent tmp staging started
    parent=$(dirname "$KAFKA_LIBS")
    mkdir -p "$parent"
    tmp=$(mktemp -d)
    staging="$parent/libs.partial.$$"
    # shellcheck disable=SC2064  # expand now: the paths are fixed
    trap "rm -rf '$tmp' '$staging'" EXIT
    write_pom "$tmp"
    started=$(now_s)
    log "fetching Kafka $KAFKA_VERSION jars with Maven (first time takes a while)"
    if ! (cd "$tmp" && mvn -q -B -Dstyle.color=never dependency:copy-dependencies \
        -DoutputDirectory="$staging" -DincludeScope=runtime) >"$tmp/mvn.log" 2>&1; then
        tail -n 40 "$tmp/mvn.log" >&2
        die "Maven could not fetch Kafka $KAFKA_VERSION (try another KAFKA_VERSION?)"
    fi
    local jar
    for jar in kafka_2.13 kafka-server kafka-tools kafka-clients slf4j-api log4j-core log4j-slf4j-impl; do
        compgen -G "$staging/$jar-*.jar" >/dev/null || die "fetched jars lack $jar"
    done
    rm -rf "$KAFKA_LIBS"
    mv "$staging" "$KAFKA_LIBS"
    {
        printf 'kafka=%s log4j=%s fetched=%s\n' "$KAFKA_VERSION" "$LOG4J_VERSION" "$(date -u +%FT%TZ)"
        (cd "$KAFKA_LIBS" && ls -1 ./*.jar)
    } >"$KAFKA_LIBS_MARKER.tmp"
    mv "$KAFKA_LIBS_MARKER.tmp" "$KAFKA_LIBS_MARKER"
    log "Kafka $KAFKA_VERSION jars in $KAFKA_LIBS ($(find "$KAFKA_LIBS" -name '*.jar' | wc -l) jars, $(($(now_s) - started))s)"
}

if [[ ${SKIP_APT:-0} != 1 ]]; then
    install_packages
fi
fetch_kafka_jars
# The SMTP sink's venv (aiosmtpd from PyPI) for the notifier's email tests.
"$ROOT/compose/smtp-sink.sh" venv >/dev/null
