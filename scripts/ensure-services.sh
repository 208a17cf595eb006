#!/usr/bin/env bash
# Make sure the tests have a real RabbitMQ and PostgreSQL (and the real senders they drive).
# Checks RABBITMQ_URL / DATABASE_URL (defaults: the local servers); when nothing answers, starts
# the local server, installing the Debian package first when running as root. Says what it did.
# Under CI=true a server that still does not answer fails the run.
set -eu

RABBITMQ_URL="${RABBITMQ_URL:-amqp://guest:guest@127.0.0.1:5672/%2F}"
DATABASE_URL="${DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/test}"

say() { printf 'ensure-services: %s\n' "$*"; }

# host and port of a URL, with a default port
host_of() { echo "$1" | sed -E 's#^[a-z]+://([^@/]*@)?([^:/?]+).*#\2#'; }
port_of() { local p; p=$(echo "$1" | sed -nE 's#^[a-z]+://([^@/]*@)?[^:/?]+:([0-9]+).*#\2#p'); echo "${p:-$2}"; }

answers() { timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; }

wait_for() { # host port seconds
  local i=0
  while [ "$i" -lt "$3" ]; do answers "$1" "$2" && return 0; sleep 1; i=$((i + 1)); done
  return 1
}

is_local() { case "$1" in 127.0.0.1|localhost|::1) return 0;; *) return 1;; esac; }

apt_install() {
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    say "$1 is not installed and this is not a root Debian machine: install $1 yourself"; return 1
  fi
  say "installing Debian package(s): $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1 \
    || { DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null; }
}

start_rabbitmq() {
  command -v rabbitmq-server >/dev/null || apt_install rabbitmq-server || return 1
  say "starting RabbitMQ (rabbitmq-server -detached)"
  rabbitmq-server -detached >/dev/null 2>&1 || true
}

start_postgres() {
  command -v pg_ctlcluster >/dev/null || apt_install postgresql || return 1
  local version
  version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
  if [ -z "$version" ]; then say "no PostgreSQL cluster exists"; return 1; fi
  if [ ! -d "/etc/postgresql/$version/main" ]; then
    say "creating cluster $version/main"; pg_createcluster "$version" main >/dev/null
  fi
  # Local connections without a password, as the tests expect (a throwaway test server).
  local hba="/etc/postgresql/$version/main/pg_hba.conf"
  if ! grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
    say "allowing trust authentication on 127.0.0.1 in $hba"
    sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\nlocal all all trust' "$hba"
  fi
  say "starting PostgreSQL cluster $version/main"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start >/dev/null 2>&1 || true
}

ensure() { # name url default-port start-function
  local name=$1 url=$2 host port
  host=$(host_of "$url"); port=$(port_of "$url" "$3")
  if answers "$host" "$port"; then say "$name: reachable at $host:$port"; return 0; fi
  say "$name: nothing answers at $host:$port"
  if is_local "$host"; then
    "$4" && wait_for "$host" "$port" 60 && { say "$name: started, reachable at $host:$port"; return 0; }
  fi
  if [ "${CI:-}" = true ]; then say "$name: still unreachable at $host:$port (CI=true: failing)"; return 1; fi
  say "$name: still unreachable; the tests that need it will be skipped"
}

status=0
ensure RabbitMQ "$RABBITMQ_URL" 5672 start_rabbitmq || status=1
ensure PostgreSQL "$DATABASE_URL" 5432 start_postgres || status=1
if [ "$(host_of "$DATABASE_URL")" = 127.0.0.1 ] && answers 127.0.0.1 "$(port_of "$DATABASE_URL" 5432)" && command -v psql >/dev/null; then
  db=$(echo "$DATABASE_URL" | sed -E 's#.*/([^/?]+)(\?.*)?$#\1#')
  if ! psql "$DATABASE_URL" -Atc 'select 1' >/dev/null 2>&1; then
    say "creating database $db"; psql "${DATABASE_URL%/*}/postgres" -qc "CREATE DATABASE $db" >/dev/null 2>&1 || true
  fi
fi

# The real senders the tests drive.
command -v logger >/dev/null || apt_install bsdutils || status=1
command -v snmptrap >/dev/null || apt_install snmp || status=1
command -v wrk >/dev/null || apt_install wrk || true
exit $status
