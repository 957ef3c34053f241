#!/usr/bin/env bash
# Project-local, single-node Apache Kafka (KRaft, combined broker + controller).
#
# Usage: infra/kafka.sh start|stop|restart|status|bootstrap|rss
#
# The broker jars come from Maven Central (see infra/kafka/pom.xml) and run on
# Java 17+; all state lives under .local/kafka/ in the project root.
#
# Environment:
#   KAFKA_PORT              broker (client) listener port, default 9092
#   KAFKA_CONTROLLER_PORT   KRaft controller listener port, default 9093
#   KAFKA_HEAP_OPTS         JVM heap flags, default "-Xms256m -Xmx512m"
#   KAFKA_OPTS              extra JVM flags
#   KAFKA_START_TIMEOUT     seconds to wait for the broker to serve metadata, default 60
#   USE_EXTERNAL_SERVICES=1 together with KAFKA_BROKERS: use that cluster instead,
#                           start/stop/status only check that it is reachable.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PROJECT_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"

KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"
KAFKA_OPTS="${KAFKA_OPTS:-}"
KAFKA_START_TIMEOUT="${KAFKA_START_TIMEOUT:-60}"
KAFKA_HOST=127.0.0.1

POM="$SCRIPT_DIR/kafka/pom.xml"
LOG4J_CONFIG="$SCRIPT_DIR/kafka/log4j2.xml"

KAFKA_HOME="$PROJECT_ROOT/.local/kafka"
LIBS_DIR="$KAFKA_HOME/libs"
LIBS_STAMP="$LIBS_DIR/.pom.sha256"
DATA_DIR="$KAFKA_HOME/data"
CONFIG_FILE="$KAFKA_HOME/server.properties"
CLUSTER_ID_FILE="$KAFKA_HOME/cluster.id"
PID_FILE="$KAFKA_HOME/kafka.pid"
LOG_FILE="$KAFKA_HOME/server.log"

log() { echo "kafka: $*"; }
die() { echo "kafka: error: $*" >&2; exit 1; }

show_log_tail() {
    local file="$1"
    if [[ -s "$file" ]]; then
        echo "---- last 40 lines of $file ----" >&2
        tail -n 40 "$file" >&2
        echo "----" >&2
    fi
}

external_mode() {
    [[ "${USE_EXTERNAL_SERVICES:-}" == "1" && -n "${KAFKA_BROKERS:-}" ]]
}

# tcp_open HOST PORT -> exit 0 when something accepts connections there.
tcp_open() {
    python3 - "$1" "$2" <<'PY'
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1).close()
except OSError:
    sys.exit(1)
PY
}

# metadata_ready HOST PORT -> exit 0 when the broker answers a Metadata request
# (v4, supported by Kafka 1.0 .. 4.x) listing at least one broker. Plain
# sockets only, so it works without any Kafka client library installed.
metadata_ready() {
    python3 - "$1" "$2" <<'PY'
import socket, struct, sys

def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise OSError("connection closed")
        buf += chunk
    return buf

try:
    sock = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2)
    client_id = b"readiness-check"
    # Request header v1: api_key=3 (Metadata), api_version=4, correlation_id, client_id
    header = struct.pack(">hhih", 3, 4, 42, len(client_id)) + client_id
    # Metadata v4 body: topics = [] (no topics), allow_auto_topic_creation = false
    body = struct.pack(">i?", 0, False)
    payload = header + body
    sock.sendall(struct.pack(">i", len(payload)) + payload)
    size = struct.unpack(">i", recv_exact(sock, 4))[0]
    resp = recv_exact(sock, size)
    sock.close()
    correlation_id, _throttle_ms, broker_count = struct.unpack(">iii", resp[:12])
    sys.exit(0 if correlation_id == 42 and broker_count >= 1 else 1)
except (OSError, struct.error):
    sys.exit(1)
PY
}

check_external() {
    local servers="$KAFKA_BROKERS" entry host port ok=1
    IFS=',' read -r -a entries <<<"$servers"
    for entry in "${entries[@]}"; do
        entry="${entry#*://}"
        host="${entry%:*}"
        port="${entry##*:}"
        if tcp_open "$host" "$port"; then ok=0; break; fi
    done
    return "$ok"
}

read_pid() {
    [[ -f "$PID_FILE" ]] || return 1
    local pid
    pid="$(cat "$PID_FILE" 2>/dev/null || true)"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    echo "$pid"
}

# running -> exit 0 when the pid file points at a live Kafka broker process.
running() {
    local pid
    pid="$(read_pid)" || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    # Guard against pid reuse after a reboot or crash.
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'kafka\.Kafka' || return 1
}

java_bin() {
    if [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then
        echo "$JAVA_HOME/bin/java"
    elif command -v java >/dev/null 2>&1; then
        command -v java
    else
        die "java not found (Kafka 4 needs Java 17 or newer); install a JDK/JRE or set JAVA_HOME"
    fi
}

check_java_version() {
    local java="$1" version major
    version="$("$java" -version 2>&1 | awk -F'"' '/version/ {print $2; exit}')"
    major="${version%%.*}"
    [[ "$major" == "1" ]] && major="$(echo "$version" | cut -d. -f2)"
    if [[ "$major" =~ ^[0-9]+$ ]] && ((major < 17)); then
        die "Java $version found at $java, but Kafka 4 needs Java 17 or newer"
    fi
}

ensure_libs() {
    local want have=""
    want="$(sha256sum "$POM" | cut -d' ' -f1)"
    [[ -f "$LIBS_STAMP" ]] && have="$(cat "$LIBS_STAMP")"
    if [[ -d "$LIBS_DIR" && "$want" == "$have" ]]; then
        return 0
    fi
    command -v mvn >/dev/null 2>&1 || die "mvn (Apache Maven) is needed to fetch the Kafka jars from Maven Central"
    log "resolving Kafka jars from $(basename "$POM") into ${LIBS_DIR#"$PROJECT_ROOT"/}"
    local tmp="$LIBS_DIR.tmp" mvn_log="$KAFKA_HOME/mvn.log"
    rm -rf "$tmp"
    if ! mvn -q -B -Dstyle.color=never -f "$POM" dependency:copy-dependencies \
        -DoutputDirectory="$tmp" >"$mvn_log" 2>&1; then
        show_log_tail "$mvn_log"
        die "could not resolve the Kafka jars (see $mvn_log)"
    fi
    rm -f "$mvn_log"
    rm -rf "$LIBS_DIR"
    mv "$tmp" "$LIBS_DIR"
    echo "$want" >"$LIBS_STAMP"
}

write_config() {
    cat >"$CONFIG_FILE" <<EOF
# Generated by infra/kafka.sh on every start; edit the script, not this file.

# --- KRaft: one process is both broker and the (only) controller -------------
process.roles=broker,controller
node.id=1
# Static single-voter quorum: the voter set comes from this file on every start,
# so the controller port can change between runs without re-formatting.
controller.quorum.voters=1@${KAFKA_HOST}:${KAFKA_CONTROLLER_PORT}
controller.listener.names=CONTROLLER

# --- Listeners: loopback only ------------------------------------------------
listeners=PLAINTEXT://${KAFKA_HOST}:${KAFKA_PORT},CONTROLLER://${KAFKA_HOST}:${KAFKA_CONTROLLER_PORT}
advertised.listeners=PLAINTEXT://${KAFKA_HOST}:${KAFKA_PORT}
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT

# --- Storage -----------------------------------------------------------------
log.dirs=${DATA_DIR}
num.partitions=1
auto.create.topics.enable=false
delete.topic.enable=true

# --- Single node: every internal topic has one replica -------------------------
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=10
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1

# --- Fast feedback for tests ----------------------------------------------------
# No waiting for more members before the first consumer-group rebalance.
group.initial.rebalance.delay.ms=0
# Abort transactions whose producer died within ~1 s of their timeout instead of 10 s.
transaction.abort.timed.out.transaction.cleanup.interval.ms=1000
transaction.max.timeout.ms=900000

# --- Modest footprint for a laptop / CI runner -------------------------------------
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
log.retention.hours=24
log.segment.bytes=104857600
EOF
}

ensure_formatted() {
    if [[ -f "$DATA_DIR/meta.properties" ]]; then
        return 0
    fi
    local java="$1" cluster_id format_log="$KAFKA_HOME/format.log"
    if [[ ! -s "$CLUSTER_ID_FILE" ]]; then
        "$java" -cp "$LIBS_DIR/*" kafka.tools.StorageTool random-uuid >"$CLUSTER_ID_FILE.tmp"
        mv "$CLUSTER_ID_FILE.tmp" "$CLUSTER_ID_FILE"
    fi
    cluster_id="$(tr -d '[:space:]' <"$CLUSTER_ID_FILE")"
    log "formatting storage in ${DATA_DIR#"$PROJECT_ROOT"/} (cluster id $cluster_id)"
    mkdir -p "$DATA_DIR"
    if ! "$java" -Dlog4j2.configurationFile="$LOG4J_CONFIG" -cp "$LIBS_DIR/*" \
        kafka.tools.StorageTool format --config "$CONFIG_FILE" --cluster-id "$cluster_id" \
        >"$format_log" 2>&1; then
        show_log_tail "$format_log"
        die "formatting the Kafka storage failed (see $format_log)"
    fi
    rm -f "$format_log"
}

cmd_start() {
    if external_mode; then
        check_external || die "external Kafka ($KAFKA_BROKERS) is not reachable"
        log "using external Kafka at $KAFKA_BROKERS"
        return 0
    fi
    if running; then
        log "already running (pid $(read_pid)) on $KAFKA_HOST:$KAFKA_PORT"
        return 0
    fi
    rm -f "$PID_FILE"
    for port in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
        if tcp_open "$KAFKA_HOST" "$port"; then
            die "port $port on $KAFKA_HOST is already in use by another process (set KAFKA_PORT / KAFKA_CONTROLLER_PORT)"
        fi
    done

    local java
    java="$(java_bin)"
    check_java_version "$java"
    mkdir -p "$KAFKA_HOME"
    ensure_libs
    write_config
    ensure_formatted "$java"

    [[ -f "$LOG_FILE" ]] && mv -f "$LOG_FILE" "$LOG_FILE.1"
    local started_ns
    started_ns="$(date +%s%N)"

    # Own session (setsid): Ctrl-C in the terminal that ran `make` does not kill
    # the broker. `exec` keeps the pid written by the wrapper shell.
    # shellcheck disable=SC2086,SC2016  # opts are word-split on purpose; $$ expands in the child
    setsid bash -c 'echo $$ >"$0"; exec "$@"' "$PID_FILE" \
        "$java" $KAFKA_HEAP_OPTS \
        -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
        -XX:+ExplicitGCInvokesConcurrent -XX:+ExitOnOutOfMemoryError \
        -Djava.awt.headless=true \
        -Dlog4j2.configurationFile="$LOG4J_CONFIG" \
        -Dkafka.logs.dir="$KAFKA_HOME" \
        $KAFKA_OPTS \
        -cp "$LIBS_DIR/*" kafka.Kafka "$CONFIG_FILE" \
        </dev/null >"$LOG_FILE" 2>&1 &

    local deadline=$((SECONDS + KAFKA_START_TIMEOUT))
    while :; do
        if [[ -f "$PID_FILE" ]] && ! running; then
            show_log_tail "$LOG_FILE"
            rm -f "$PID_FILE"
            die "broker exited during start-up (log: $LOG_FILE)"
        fi
        if running && metadata_ready "$KAFKA_HOST" "$KAFKA_PORT"; then
            break
        fi
        if ((SECONDS >= deadline)); then
            show_log_tail "$LOG_FILE"
            cmd_stop >/dev/null 2>&1 || true
            die "broker did not serve metadata within ${KAFKA_START_TIMEOUT}s; stopped it (log: $LOG_FILE)"
        fi
        sleep 0.2
    done
    local elapsed_ms=$((($(date +%s%N) - started_ns) / 1000000))
    log "started (pid $(read_pid)) on $KAFKA_HOST:$KAFKA_PORT in $((elapsed_ms / 1000)).$(printf '%03d' $((elapsed_ms % 1000)))s"
}

cmd_stop() {
    if external_mode; then
        log "using external Kafka at $KAFKA_BROKERS; nothing to stop"
        return 0
    fi
    if ! running; then
        rm -f "$PID_FILE"
        log "not running"
        return 0
    fi
    local pid
    pid="$(read_pid)"
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 30))
    while kill -0 "$pid" 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            log "pid $pid still alive after 30s, sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.2
    done
    rm -f "$PID_FILE"
    log "stopped (pid $pid)"
}

cmd_status() {
    if external_mode; then
        if check_external; then
            log "external Kafka at $KAFKA_BROKERS is reachable"
            return 0
        fi
        log "external Kafka at $KAFKA_BROKERS is not reachable"
        return 1
    fi
    if running; then
        log "running (pid $(read_pid)) on $KAFKA_HOST:$KAFKA_PORT"
        return 0
    fi
    log "not running"
    return 1
}

cmd_bootstrap() {
    if external_mode; then
        echo "$KAFKA_BROKERS"
    else
        echo "$KAFKA_HOST:$KAFKA_PORT"
    fi
}

cmd_rss() {
    running || die "not running"
    local pid kb
    pid="$(read_pid)"
    kb="$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")"
    echo "$((kb / 1024))"
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    restart) cmd_stop && cmd_start ;;
    status) cmd_status ;;
    bootstrap) cmd_bootstrap ;;
    rss) cmd_rss ;;
    *)
        echo "usage: $(basename "$0") start|stop|restart|status|bootstrap|rss" >&2
        exit 2
        ;;
esac
