#!/usr/bin/env bash
# Project-local PostgreSQL cluster for development and tests.
#
# Usage: infra/postgres.sh start|stop|restart|status|url
#
# Data, socket and log live under .local/postgres/ in the project root; the
# server listens on 127.0.0.1 only. PostgreSQL refuses to run as root, so when
# this script runs as root the server runs as the `postgres` system user.
#
# Environment:
#   PG_PORT                 TCP port, default 5433
#   PG_BIN                  directory holding pg_ctl/initdb (auto-detected)
#   USE_EXTERNAL_SERVICES=1 together with DATABASE_URL: use that server instead,
#                           start/stop/status only check that it is reachable.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PROJECT_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"

PG_PORT="${PG_PORT:-5433}"
PG_HOST=127.0.0.1
PG_MAJOR=15

DB_NAME=cv_evaluator
DB_USER=cv_evaluator
DB_PASSWORD=cv_evaluator

LOCAL_DIR="$PROJECT_ROOT/.local"
PG_HOME="$LOCAL_DIR/postgres"
PGDATA_DIR="$PG_HOME/data"
SOCKET_DIR="$PG_HOME/run"
LOG_FILE="$PG_HOME/postgres.log"

log() { echo "postgres: $*"; }
die() { echo "postgres: error: $*" >&2; exit 1; }

show_log_tail() {
    local file="$1"
    if [[ -r "$file" && -s "$file" ]]; then
        echo "---- last 40 lines of $file ----" >&2
        tail -n 40 "$file" >&2
        echo "----" >&2
    fi
}

external_mode() {
    [[ "${USE_EXTERNAL_SERVICES:-}" == "1" && -n "${DATABASE_URL:-}" ]]
}

is_root() { [[ "$(id -u)" == "0" ]]; }

# as_pg CMD... -> run CMD as the user that owns the cluster.
as_pg() {
    if is_root; then
        (cd / && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

find_pg_bin() {
    local candidate
    for candidate in "${PG_BIN:-}" "/usr/lib/postgresql/$PG_MAJOR/bin"; do
        if [[ -n "$candidate" && -x "$candidate/pg_ctl" && -x "$candidate/initdb" ]]; then
            echo "$candidate"
            return 0
        fi
    done
    if command -v pg_config >/dev/null 2>&1; then
        candidate="$(pg_config --bindir 2>/dev/null || true)"
        if [[ -n "$candidate" && -x "$candidate/pg_ctl" && -x "$candidate/initdb" ]]; then
            echo "$candidate"
            return 0
        fi
    fi
    # Any other Debian/Ubuntu-packaged major version, newest first.
    for candidate in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -t/ -k5 -n -r); do
        if [[ -x "$candidate/pg_ctl" && -x "$candidate/initdb" ]]; then
            echo "$candidate"
            return 0
        fi
    done
    if command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1; then
        dirname "$(command -v pg_ctl)"
        return 0
    fi
    return 1
}

install_postgres() {
    command -v apt-get >/dev/null 2>&1 ||
        die "PostgreSQL server binaries not found and apt-get is unavailable; install PostgreSQL $PG_MAJOR or set PG_BIN"
    local sudo=()
    if ! is_root; then
        command -v sudo >/dev/null 2>&1 ||
            die "PostgreSQL server binaries not found; run as root or install postgresql-$PG_MAJOR"
        sudo=(sudo)
    fi
    log "installing postgresql-$PG_MAJOR with apt-get"
    local apt_log
    apt_log="$(mktemp)"
    {
        "${sudo[@]}" apt-get update &&
            # Only the binaries are wanted: stop Debian from creating and
            # starting its own system-wide "main" cluster on port 5432.
            "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql-common &&
            { [[ ! -f /etc/postgresql-common/createcluster.conf ]] ||
                "${sudo[@]}" sed -i -E 's/^#?[[:space:]]*create_main_cluster[[:space:]]*=.*/create_main_cluster = false/' \
                    /etc/postgresql-common/createcluster.conf; } &&
            "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "postgresql-$PG_MAJOR"
    } >"$apt_log" 2>&1 || {
        show_log_tail "$apt_log"
        rm -f "$apt_log"
        die "apt-get install postgresql-$PG_MAJOR failed"
    }
    rm -f "$apt_log"
}

# url_host_port URL -> "host port" parsed from a postgres:// URL.
url_host_port() {
    python3 - "$1" <<'PY'
import sys
from urllib.parse import urlsplit
u = urlsplit(sys.argv[1])
print(u.hostname or "localhost", u.port or 5432)
PY
}

tcp_open() {
    python3 - "$1" "$2" <<'PY'
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1).close()
except OSError:
    sys.exit(1)
PY
}

check_external() {
    local host port
    read -r host port < <(url_host_port "$DATABASE_URL")
    tcp_open "$host" "$port"
}

# running -> exit 0 when the project cluster's postmaster is alive.
running() {
    [[ -f "$PGDATA_DIR/PG_VERSION" ]] || return 1
    local bin
    bin="$(find_pg_bin)" || return 1
    as_pg "$bin/pg_ctl" status -D "$PGDATA_DIR" >/dev/null 2>&1
}

ready() {
    "$1/pg_isready" -q -h "$PG_HOST" -p "$PG_PORT" -d postgres -t 2 >/dev/null 2>&1
}

prepare_dirs() {
    mkdir -p "$LOCAL_DIR" "$PG_HOME"
    if is_root; then
        id postgres >/dev/null 2>&1 ||
            die "running as root but there is no 'postgres' system user to run the server as"
        chown postgres: "$PG_HOME"
        chmod 0700 "$PG_HOME"
        runuser -u postgres -- test -x "$PG_HOME" ||
            die "user 'postgres' cannot reach $PG_HOME; every parent directory must be world-traversable (o+x)"
    else
        chmod 0700 "$PG_HOME"
    fi
    as_pg mkdir -p "$SOCKET_DIR"
}

init_cluster() {
    local bin="$1"
    [[ -f "$PGDATA_DIR/PG_VERSION" ]] && return 0
    log "initialising cluster in ${PGDATA_DIR#"$PROJECT_ROOT"/}"
    local init_log="$PG_HOME/initdb.log"
    if ! as_pg "$bin/initdb" -D "$PGDATA_DIR" -U postgres -E UTF8 --no-locale \
        --auth-local=trust --auth-host=scram-sha-256 >"$init_log" 2>&1; then
        show_log_tail "$init_log"
        die "initdb failed (see $init_log)"
    fi
    rm -f "$init_log"
    as_pg sh -c "echo \"include_if_exists = 'postgresql.local.conf'\" >>'$PGDATA_DIR/postgresql.conf'"
}

# Settings that follow the environment (port, paths) are rewritten on every start.
write_config() {
    as_pg tee "$PGDATA_DIR/postgresql.local.conf" >/dev/null <<EOF
# Generated by infra/postgres.sh on every start; edit the script, not this file.
listen_addresses = '$PG_HOST'
port = $PG_PORT
unix_socket_directories = '$SOCKET_DIR'
unix_socket_permissions = 0700

# Sized for a development / CI machine.
max_connections = 200
shared_buffers = 256MB
effective_cache_size = 1GB
work_mem = 8MB
maintenance_work_mem = 128MB

# Durability stays at the defaults so benchmarks measure real commit cost.
fsync = on
synchronous_commit = on
full_page_writes = on

log_line_prefix = '%m [%p] %q%u@%d '
log_timezone = 'UTC'
timezone = 'UTC'
EOF
}

ensure_database() {
    local bin="$1" sql_log="$PG_HOME/bootstrap.log"
    if ! as_pg "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$SOCKET_DIR" -p "$PG_PORT" -U postgres -d postgres \
        >"$sql_log" 2>&1 <<SQL; then
DO \$\$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$DB_USER') THEN
        CREATE ROLE $DB_USER LOGIN CREATEDB PASSWORD '$DB_PASSWORD';
    ELSE
        ALTER ROLE $DB_USER LOGIN CREATEDB PASSWORD '$DB_PASSWORD';
    END IF;
END
\$\$;
SELECT 'CREATE DATABASE $DB_NAME OWNER $DB_USER'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$DB_NAME')\gexec
SQL
        show_log_tail "$sql_log"
        die "could not create role/database $DB_NAME (see $sql_log)"
    fi
    rm -f "$sql_log"
}

local_url() {
    echo "postgres://$DB_USER:$DB_PASSWORD@$PG_HOST:$PG_PORT/$DB_NAME"
}

cmd_start() {
    if external_mode; then
        local deadline=$((SECONDS + 30))
        until check_external; do
            ((SECONDS >= deadline)) && die "external PostgreSQL from DATABASE_URL is not reachable"
            sleep 1
        done
        log "using external PostgreSQL from DATABASE_URL"
        return 0
    fi
    local bin
    if ! bin="$(find_pg_bin)"; then
        install_postgres
        bin="$(find_pg_bin)" || die "PostgreSQL binaries still not found after installation"
    fi
    if running; then
        log "already running on $PG_HOST:$PG_PORT"
        return 0
    fi
    if tcp_open "$PG_HOST" "$PG_PORT"; then
        die "port $PG_PORT on $PG_HOST is already in use by another process (set PG_PORT)"
    fi

    prepare_dirs
    init_cluster "$bin"
    write_config

    local started_ns
    started_ns="$(date +%s%N)"
    if ! as_pg "$bin/pg_ctl" start -D "$PGDATA_DIR" -l "$LOG_FILE" -w -t 60 -s >/dev/null 2>&1; then
        show_log_tail "$LOG_FILE"
        die "pg_ctl start failed (log: $LOG_FILE)"
    fi
    local deadline=$((SECONDS + 30))
    until ready "$bin"; do
        if ((SECONDS >= deadline)); then
            show_log_tail "$LOG_FILE"
            die "server started but does not accept connections on $PG_HOST:$PG_PORT (log: $LOG_FILE)"
        fi
        sleep 0.2
    done
    ensure_database "$bin"
    local elapsed_ms=$((($(date +%s%N) - started_ns) / 1000000))
    log "started on $PG_HOST:$PG_PORT in $((elapsed_ms / 1000)).$(printf '%03d' $((elapsed_ms % 1000)))s (database $DB_NAME)"
}

cmd_stop() {
    if external_mode; then
        log "using external PostgreSQL from DATABASE_URL; nothing to stop"
        return 0
    fi
    if ! running; then
        log "not running"
        return 0
    fi
    local bin
    bin="$(find_pg_bin)"
    if ! as_pg "$bin/pg_ctl" stop -D "$PGDATA_DIR" -m fast -w -t 60 -s >/dev/null 2>&1; then
        show_log_tail "$LOG_FILE"
        die "pg_ctl stop failed (log: $LOG_FILE)"
    fi
    log "stopped"
}

cmd_status() {
    if external_mode; then
        if check_external; then
            log "external PostgreSQL from DATABASE_URL is reachable"
            return 0
        fi
        log "external PostgreSQL from DATABASE_URL is not reachable"
        return 1
    fi
    if running; then
        log "running on $PG_HOST:$PG_PORT"
        return 0
    fi
    log "not running"
    return 1
}

cmd_url() {
    if external_mode; then
        echo "$DATABASE_URL"
    else
        local_url
    fi
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    restart) cmd_stop && cmd_start ;;
    status) cmd_status ;;
    url) cmd_url ;;
    *)
        echo "usage: $(basename "$0") start|stop|restart|status|url" >&2
        exit 2
        ;;
esac
