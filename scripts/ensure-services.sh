#!/usr/bin/env bash
# shellcheck disable=SC2012 # ls | sort -V over Debian's PostgreSQL version directories
# Make sure the tests have a real RabbitMQ and a real PostgreSQL, and the real senders they drive
# (net-snmp's snmptrap/snmpinform, logger).
#
#   scripts/ensure-services.sh [--env-file FILE] [--bench]
#
# Reads RABBITMQ_URL and DATABASE_URL (defaults: the local servers the tests expect). For each:
#   1. reachable?  TCP connect, then a real login (AMQP through pika / PostgreSQL through
#      psycopg2 from .venv, pg_isready when installed). Creates the database of DATABASE_URL
#      when the server answers but the database does not exist.
#   2. if not, and the host is this machine: start the local server when it is installed;
#      as root on Debian install it first (rabbitmq-server / postgresql). PostgreSQL: start the
#      Debian cluster (pg_ctlcluster), create one when there is none (pg_createcluster as root,
#      a private one under ./var/pgdata with initdb otherwise), trust auth on 127.0.0.1.
#   3. still unreachable: under CI=true exit non-zero; otherwise warn (the tests skip).
# Never stops or reconfigures a server that is already running.
#
# It exports nothing: --env-file FILE gets the final `export RABBITMQ_URL=...` and
# `export DATABASE_URL=...` lines for the caller to source (the Makefile does).
# --bench also installs wrk (the HTTP load generator the benchmarks drive).
set -eu

cd "$(dirname "$0")/.."
# rabbitmq-server, pg_ctlcluster & co. live in sbin on Debian; a non-login shell may lack it.
PATH=$PATH:/usr/sbin:/sbin

ENV_FILE=
BENCH=0
while [ $# -gt 0 ]; do
  case $1 in
    --env-file) ENV_FILE=${2:?--env-file needs a path}; shift 2 ;;
    --env-file=*) ENV_FILE=${1#*=}; shift ;;
    --bench) BENCH=1; shift ;;
    -h|--help) awk 'NR > 2 && /^#/ { sub(/^# ?/, ""); print; next } NR > 2 { exit }' "$0"; exit 0 ;;
    *) echo "ensure-services: unknown argument: $1" >&2; exit 2 ;;
  esac
done

RABBITMQ_URL=${RABBITMQ_URL:-amqp://guest:guest@127.0.0.1:5672/%2F}
DATABASE_URL=${DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/test}
VENV_PY=.venv/bin/python
PGDATA_PRIVATE=var/pgdata
PG_CONF_ROOT=${PG_CONF_ROOT:-/etc/postgresql} # Debian's cluster configuration
STRICT=0
case ${CI:-} in 1|true|TRUE|True|yes) STRICT=1 ;; esac

say() { printf '%s\n' "$*"; }
warn() { printf 'WARNING: %s\n' "$*"; }
is_root() { [ "$(id -u)" = 0 ]; }
have() { command -v "$1" >/dev/null 2>&1; }

# --- URLs -------------------------------------------------------------------------------------
# scheme://[user[:password]@]host[:port][/path][?query]; IPv6 literals in brackets.
url_authority() { local rest=${1#*://}; rest=${rest%%/*}; rest=${rest%%\?*}; printf '%s' "${rest##*@}"; }
url_host() { # (no host in the URL: 127.0.0.1, where the tests connect)
  local a h; a=$(url_authority "$1")
  case $a in
    \[*) h=${a#\[}; h=${h%%\]*} ;;
    *) h=${a%%:*} ;;
  esac
  printf '%s' "${h:-127.0.0.1}"
}
url_port() { # url default
  local a p=; a=$(url_authority "$1")
  case $a in
    \[*\]:*) p=${a##*\]:} ;;
    \[*) ;;
    *:*) p=${a##*:} ;;
  esac
  printf '%s' "${p:-$2}"
}
url_dbname() { local p=${1#*://}; p=${p%%\?*}; case $p in */*) p=${p#*/} ;; *) p= ;; esac; printf '%s' "$p"; }
# The URL with its password hidden, for messages.
url_shown() { printf '%s' "$1" | sed -E 's#^([a-z0-9+.-]+://[^:/@]*):[^@/]*@#\1:***@#'; }
is_local() { case $1 in 127.0.0.1|localhost|::1|127.*) return 0 ;; *) return 1 ;; esac; }

# --- probes -----------------------------------------------------------------------------------
with_timeout() { # seconds command...
  local s=$1; shift
  if have timeout; then timeout "$s" "$@"; else "$@"; fi
}

tcp_open() { # host port
  # shellcheck disable=SC2016 # $0/$1 expand in the inner shell
  with_timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$1" "$2" 2>/dev/null
}

wait_port() { # host port seconds
  local i=0
  while [ "$i" -lt "$3" ]; do
    tcp_open "$1" "$2" && return 0
    sleep 1; i=$((i + 1))
  done
  return 1
}

have_venv() { [ -x "$VENV_PY" ] && "$VENV_PY" -c 'import pika, psycopg2' >/dev/null 2>&1; }

# A real AMQP connection (open + close). Prints the error on failure.
amqp_login() {
  have_venv || return 0 # before `make install`: the TCP check is all we can do
  "$VENV_PY" - "$1" <<'EOF'
import sys
import pika

params = pika.URLParameters(sys.argv[1])
params.socket_timeout = params.blocked_connection_timeout = 5
params.connection_attempts = 1
try:
    pika.BlockingConnection(params).close()
except Exception as e:  # noqa: BLE001 - any failure is reported as is
    print(f"{type(e).__name__}: {e}".strip())
    sys.exit(1)
EOF
}

# A real PostgreSQL login on the database of the URL; creates that database when the server
# answers and only the database is missing. Exit 0 ok (prints "created" if it made it),
# 1 otherwise (prints the error).
pg_login() {
  if ! have_venv; then
    pg_login_psql "$1"
    return
  fi
  "$VENV_PY" - "$1" <<'EOF'
import sys
import psycopg2
from psycopg2 import errors, sql

url = sys.argv[1]
try:
    psycopg2.connect(url, connect_timeout=5).close()
    sys.exit(0)
except errors.InvalidCatalogName:
    pass  # the server answers; the database does not exist yet
except psycopg2.OperationalError as e:
    if "does not exist" not in str(e) or "database" not in str(e):
        print(str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__)
        sys.exit(1)
dbname = psycopg2.extensions.parse_dsn(url).get("dbname")
try:
    conn = psycopg2.connect(url, dbname="postgres", connect_timeout=5)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    conn.close()
except psycopg2.Error as e:
    print(f"could not create database {dbname!r}: {str(e).strip()}")
    sys.exit(1)
print("created")
EOF
}

# The same with psql, before `make install` (no psycopg2 yet); without psql: trust the TCP check.
pg_login_psql() {
  have psql || return 0
  local err
  if err=$(PGCONNECT_TIMEOUT=5 psql -d "$1" -XAtqc 'select 1' 2>&1 >/dev/null); then return 0; fi
  case $err in
    *database*"does not exist"*) ;;
    *) printf '%s\n' "$err" | head -n 1; return 1 ;;
  esac
  local admin db
  admin=$(printf '%s' "$1" | sed -E 's#^([a-z]+://[^/?]*)/?[^?]*#\1/postgres#')
  db=$(url_dbname "$1")
  if err=$(PGCONNECT_TIMEOUT=5 psql -d "$admin" -XAtqc "CREATE DATABASE \"$db\"" 2>&1 >/dev/null); then
    echo created
    return 0
  fi
  printf 'could not create database %s: %s\n' "$db" "$(printf '%s' "$err" | head -n 1)"
  return 1
}

pg_ready() { # host port
  have pg_isready || return 0
  pg_isready -q -h "$1" -p "$2" -t 5
}

# --- Debian packages --------------------------------------------------------------------------
APT_UPDATED=0
can_apt() { is_root && have apt-get; }
apt_install() { # package...
  can_apt || return 1
  say "  installing Debian package(s): $* (apt-get install -y)"
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >var/apt-get.log 2>&1; then
    if [ "$APT_UPDATED" = 0 ]; then
      APT_UPDATED=1
      DEBIAN_FRONTEND=noninteractive apt-get update -q >>var/apt-get.log 2>&1 || true
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >>var/apt-get.log 2>&1 && return 0
    fi
    warn "apt-get install $* failed (see var/apt-get.log)"
    return 1
  fi
}

# --- RabbitMQ ---------------------------------------------------------------------------------
rabbit_short_name() { local n=${RABBITMQ_NODENAME:-rabbit}; printf '%s' "${n%%@*}"; }

# Is the local node up (even with its rabbit application stopped)? Asks the node, then epmd.
rabbit_node_running() {
  if have rabbitmq-diagnostics && with_timeout 30 rabbitmq-diagnostics -q ping >/dev/null 2>&1; then return 0; fi
  have epmd && epmd -names 2>/dev/null | grep -q "^name $(rabbit_short_name) at "
}

start_rabbitmq() { # host port
  if ! have rabbitmq-server; then
    if can_apt; then
      say "  RabbitMQ is not installed"
      apt_install rabbitmq-server || return 1
      # The package may have started it (service scripts permitting).
      if wait_port "$1" "$2" 5; then say "  RabbitMQ: installed and running"; return 0; fi
    else
      say "  RabbitMQ is not installed, and this is not a root Debian machine: install rabbitmq-server"
      say "  (or point RABBITMQ_URL at a running broker)"
      return 1
    fi
  fi
  if rabbit_node_running; then
    say "  the local RabbitMQ node is already running, but nothing answers at $1:$2"
    say "  (its AMQP listener is on another port, or its application is stopped: see"
    say "  rabbitmq-diagnostics listeners / rabbitmqctl status; or fix RABBITMQ_URL)"
    return 1
  fi
  say "  starting the local RabbitMQ node: rabbitmq-server -detached"
  if ! rabbitmq-server -detached >var/rabbitmq-start.log 2>&1; then
    warn "rabbitmq-server -detached failed (see var/rabbitmq-start.log)"
    return 1
  fi
  if have rabbitmqctl; then
    with_timeout 60 rabbitmqctl -q await_startup >/dev/null 2>&1 || true
  fi
  wait_port "$1" "$2" 60 && { say "  RabbitMQ: started"; return 0; }
  say "  RabbitMQ started but nothing answers at $1:$2 after 60 s"
  return 1
}

ensure_rabbitmq() {
  local host port shown err
  host=$(url_host "$RABBITMQ_URL"); port=$(url_port "$RABBITMQ_URL" 5672); shown=$(url_shown "$RABBITMQ_URL")
  if tcp_open "$host" "$port"; then
    if err=$(amqp_login "$RABBITMQ_URL"); then
      say "RabbitMQ: reachable at $shown"
      return 0
    fi
    say "RabbitMQ: $host:$port answers, but an AMQP login as given in RABBITMQ_URL fails: $err"
    say "  (fix the user, password or vhost of RABBITMQ_URL; this script does not change a running broker)"
    return 2
  fi
  say "RabbitMQ: not reachable at $host:$port"
  if ! is_local "$host"; then
    say "  $host is not this machine: nothing to start here"
    return 1
  fi
  start_rabbitmq "$host" "$port" || return 1
  if err=$(amqp_login "$RABBITMQ_URL"); then
    say "RabbitMQ: reachable at $shown"
    return 0
  fi
  say "RabbitMQ: started, but an AMQP login fails: $err"
  return 2
}

# --- PostgreSQL -------------------------------------------------------------------------------
PG_OURS=0 # 1 when this run installed PostgreSQL or created the cluster: we may set its auth

pg_bin() { # program: from PATH, else the newest Debian /usr/lib/postgresql/<v>/bin
  if have "$1"; then command -v "$1"; return 0; fi
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$d" ] && [ -x "$d/$1" ] && printf '%s\n' "$d/$1"
}

# Allow password-less logins from this machine (a throwaway test server).
pg_trust_local() { # hba-file
  grep -qE '^host[[:space:]]+all[[:space:]]+all[[:space:]]+127\.0\.0\.1/32[[:space:]]+trust' "$1" && return 0
  say "  trust authentication for 127.0.0.1 and ::1 in $1"
  local tmp="$1.opsconductor.tmp"
  { printf '%s\n' '# Added by OpsConductor scripts/ensure-services.sh: a local test server.' \
      'local all all trust' 'host all all 127.0.0.1/32 trust' 'host all all ::1/128 trust'
    cat "$1"; } >"$tmp"
  cat "$tmp" >"$1" && rm -f "$tmp" # keep owner and mode of the original
}

# Debian clusters: "version name port status" lines.
pg_clusters() { have pg_lsclusters && pg_lsclusters -h 2>/dev/null | awk '{print $1, $2, $3, $4}'; }

start_debian_cluster() { # host port
  local want=$2 line version name port status
  line=$(pg_clusters | awk -v p="$want" '$3 == p' | head -n 1)
  if [ -z "$line" ]; then
    # No cluster on that port: the newest version's main cluster, as Debian sets it up.
    version=$(ls "$PG_CONF_ROOT" 2>/dev/null | sort -V | tail -n 1)
    [ -n "$version" ] && line=$(pg_clusters | awk -v v="$version" '$1 == v && $2 == "main"' | head -n 1)
  fi
  if [ -z "$line" ]; then
    version=$(ls /usr/lib/postgresql 2>/dev/null | sort -V | tail -n 1)
    if [ -z "$version" ]; then say "  PostgreSQL server binaries not found under /usr/lib/postgresql"; return 1; fi
    say "  no PostgreSQL cluster exists: creating cluster $version/main on port $want (pg_createcluster)"
    pg_createcluster -p "$want" "$version" main >var/pg-createcluster.log 2>&1 \
      || { warn "pg_createcluster failed (see var/pg-createcluster.log)"; return 1; }
    PG_OURS=1
    line="$version main $want down"
  fi
  read -r version name port status <<EOF
$line
EOF
  if [ "$PG_OURS" = 1 ]; then pg_trust_local "$PG_CONF_ROOT/$version/$name/pg_hba.conf"; fi
  if [ "$status" = online ]; then
    if [ "$port" = "$want" ]; then
      say "  cluster $version/$name is already running on port $port"
      if [ "$PG_OURS" = 1 ]; then
        pg_ctlcluster --skip-systemctl-redirect "$version" "$name" reload >/dev/null 2>&1 || true
      fi
      return 0
    fi
    say "  cluster $version/$name is already running, on port $port, not $want (fix DATABASE_URL?)"
    return 1
  fi
  if [ "$port" != "$want" ]; then
    say "  cluster $version/$name is configured for port $port, not $want: starting it anyway"
  fi
  pg_ctlcluster --skip-systemctl-redirect "$version" "$name" start >var/pg-start.log 2>&1 \
    || { warn "pg_ctlcluster $version $name start failed (see var/pg-start.log)"; return 1; }
  say "PostgreSQL: not running; started cluster $version/$name"
  [ "$port" = "$want" ]
}

# A private cluster under ./var/pgdata owned by the current (non-root) user.
start_private_cluster() { # host port
  local initdb pg_ctl
  initdb=$(pg_bin initdb) || true
  pg_ctl=$(pg_bin pg_ctl) || true
  if [ -z "$initdb" ] || [ -z "$pg_ctl" ]; then
    say "  initdb/pg_ctl not found: install the PostgreSQL server (Debian: postgresql)"
    return 1
  fi
  if [ ! -s "$PGDATA_PRIVATE/PG_VERSION" ]; then
    say "  creating a private cluster in $PGDATA_PRIVATE (initdb, superuser postgres, trust auth)"
    mkdir -p "$PGDATA_PRIVATE"
    "$initdb" -D "$PGDATA_PRIVATE" -U postgres --auth=trust -E UTF8 >var/pg-initdb.log 2>&1 \
      || { warn "initdb failed (see var/pg-initdb.log)"; return 1; }
    PG_OURS=1
  fi
  if "$pg_ctl" -D "$PGDATA_PRIVATE" status >/dev/null 2>&1; then
    say "  the private cluster in $PGDATA_PRIVATE is already running, but does not answer at $1:$2"
    return 1
  fi
  say "  starting the private cluster in $PGDATA_PRIVATE on port $2"
  "$pg_ctl" -D "$PGDATA_PRIVATE" -l var/pgdata.log -w -t 60 \
    -o "-p $2 -c listen_addresses=$1 -c unix_socket_directories=''" start >/dev/null 2>&1 \
    || { warn "pg_ctl start failed (see var/pgdata.log)"; return 1; }
  say "PostgreSQL: not running; started the private cluster in $PGDATA_PRIVATE (stop: $pg_ctl -D $PGDATA_PRIVATE stop)"
}

start_postgres() { # host port
  if [ -z "$(pg_bin initdb)" ] && ! have pg_ctlcluster; then
    if can_apt; then
      say "  PostgreSQL is not installed"
      apt_install postgresql || return 1
      PG_OURS=1
    else
      say "  PostgreSQL is not installed, and this is not a root Debian machine: install postgresql"
      say "  (or point DATABASE_URL at a running server)"
      return 1
    fi
  fi
  if is_root; then
    if have pg_ctlcluster; then
      start_debian_cluster "$@" || return 1
    else
      say "  running as root without Debian's pg_ctlcluster: start PostgreSQL yourself"
      return 1
    fi
  else
    start_private_cluster "$@" || return 1
  fi
  wait_port "$1" "$2" 60 || { say "  nothing answers at $1:$2 after 60 s"; return 1; }
}

ensure_postgres() {
  local host port shown db out
  host=$(url_host "$DATABASE_URL"); port=$(url_port "$DATABASE_URL" 5432); shown=$(url_shown "$DATABASE_URL")
  db=$(url_dbname "$DATABASE_URL")
  if ! { tcp_open "$host" "$port" && pg_ready "$host" "$port"; }; then
    say "PostgreSQL: not reachable at $host:$port"
    if ! is_local "$host"; then
      say "  $host is not this machine: nothing to start here"
      return 1
    fi
    start_postgres "$host" "$port" || return 1
  fi
  if out=$(pg_login "$DATABASE_URL"); then
    [ "$out" = created ] && say "PostgreSQL: created database $db"
    say "PostgreSQL: reachable at $shown"
    return 0
  fi
  say "PostgreSQL: $host:$port answers, but a login as given in DATABASE_URL fails: $out"
  say "  (the tests connect without a password: allow it for 127.0.0.1 in pg_hba.conf, or put the"
  say "  user and password in DATABASE_URL; this script does not change a server it did not create)"
  return 2
}

# --- main -------------------------------------------------------------------------------------
# ensure_* return 0 (usable), 1 (nothing answers: the tests skip) or 2 (it answers but refuses
# the login: the tests fail).
mkdir -p var
unreachable=''
refused=''
record() { # name rc
  case $2 in
    0) ;;
    2) refused="$refused $1" ;;
    *) unreachable="$unreachable $1" ;;
  esac
}
rc=0; ensure_rabbitmq || rc=$?; record RabbitMQ "$rc"
rc=0; ensure_postgres || rc=$?; record PostgreSQL "$rc"

tools_missing=
need_tool() { # command package...
  local cmd=$1 pkg; shift
  have "$cmd" && return 0
  say "Test tools: $cmd is missing"
  for pkg in "$@"; do apt_install "$pkg" && have "$cmd" && break; done
  if have "$cmd"; then say "Test tools: installed $cmd"; else tools_missing="$tools_missing $cmd"; fi
}
need_tool snmptrap snmp
need_tool snmpinform snmp
need_tool logger bsdutils util-linux
# the console's browser tests drive Debian's chromium through Playwright (which never downloads a browser)
need_tool chromium chromium
# PgBouncer in transaction mode in front of the test PostgreSQL (tests/integration/test_pgbouncer.py);
# Compose validates compose.yaml without a Docker daemon (tests/unit/test_container_files.py)
need_tool pgbouncer pgbouncer
need_tool docker-compose docker-compose
if [ "$BENCH" = 1 ]; then need_tool wrk wrk; fi
if [ -z "$tools_missing" ]; then say "Test tools: snmptrap, snmpinform, logger, chromium, pgbouncer, docker-compose$([ "$BENCH" = 1 ] && echo ", wrk") found"; fi

if [ -n "$ENV_FILE" ]; then
  mkdir -p "$(dirname "$ENV_FILE")"
  q() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }
  {
    echo "# Written by scripts/ensure-services.sh; sourced by the Makefile."
    echo "export RABBITMQ_URL=$(q "$RABBITMQ_URL")"
    echo "export DATABASE_URL=$(q "$DATABASE_URL")"
  } >"$ENV_FILE"
fi
say "Using RABBITMQ_URL=$(url_shown "$RABBITMQ_URL") DATABASE_URL=$(url_shown "$DATABASE_URL")"

if [ -n "$tools_missing" ]; then
  warn "missing:$tools_missing (Debian packages snmp, bsdutils, chromium, pgbouncer, docker-compose/wrk): the tests or benchmarks that drive them skip locally, fail under CI"
fi
if [ -n "$unreachable$refused" ]; then
  if [ "$STRICT" = 1 ]; then
    [ -n "$unreachable" ] && say "ERROR: not reachable:$unreachable"
    [ -n "$refused" ] && say "ERROR: refuses the login in its URL:$refused"
    say "ERROR: CI=true: the tests need a real RabbitMQ and PostgreSQL (see the messages above)"
    exit 1
  fi
  [ -n "$unreachable" ] && warn "not reachable:$unreachable: the tests that need it will be skipped (under CI=true this fails)"
  [ -n "$refused" ] && warn "refuses the login in its URL:$refused: the tests that need it will fail"
fi
exit 0
