#!/bin/sh
# Entry point of the OpsConductor container image: runs one Procfile process type.
#
#   docker run IMAGE web                  the Procfile's `web:` command (any type: normalize, syslog, release, ...)
#   docker run IMAGE --print TYPE         print TYPE's command and exit (a dry run)
#   docker run IMAGE --list               print the process types
#   docker run IMAGE opsconductor keys create --role ingest --name alertmanager
#                                         any other program on PATH runs as given
#   IMAGE --healthcheck                   the image's HEALTHCHECK: web answers /healthz on $PORT,
#                                         syslog accepts TCP on $SYSLOG_TCP_PORT, others: alive
#
# The Procfile is read at run time (PROCFILE, default: the one next to this script's directory),
# so the image and the Procfile never diverge. A command runs as a Procfile runner runs it: through
# the shell (so ${PORT:-3009} expands), replacing this script (exec), so the program is PID 1's
# child of `docker run --init` or PID 1 itself and receives SIGTERM directly.
# shellcheck disable=SC2046 # echo $(types) joins the names on one line, split on purpose
set -eu

PROCFILE=${PROCFILE:-$(CDPATH='' cd -- "$(dirname -- "$0")/.." && pwd)/Procfile}
#: Where the running process type is noted for --healthcheck (a container runs one).
STATE=${OPSCONDUCTOR_STATE_FILE:-/tmp/opsconductor-process-type}

die() { printf 'docker-entrypoint: %s\n' "$*" >&2; exit 64; }

types() { sed -n 's/^\([A-Za-z0-9_-][A-Za-z0-9_-]*\):.*/\1/p' "$PROCFILE"; }

command_of() { # type -> its command, or nothing
  sed -n "s/^$1:[[:space:]]*//p" "$PROCFILE" | head -n 1
}

unknown() {
  die "unknown process type '$1'; the Procfile ($PROCFILE) has: $(echo $(types))"
}

healthcheck() {
  type=$(cat "$STATE" 2>/dev/null || true)
  case $type in
    web)
      exec python -c 'import os, sys, urllib.request
port = os.environ.get("PORT") or "3009"
with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=4) as reply:
    sys.exit(0 if reply.status == 200 else 1)' ;;
    syslog)
      exec python -c 'import os, socket
socket.create_connection(("127.0.0.1", int(os.environ.get("SYSLOG_TCP_PORT") or "5514")), timeout=4).close()' ;;
    *) exit 0 ;; # workers, clock, snmptrap (UDP): the container lives as long as its process does
  esac
}

[ -r "$PROCFILE" ] || die "no Procfile at $PROCFILE (set PROCFILE)"
[ $# -gt 0 ] || die "give a process type: $(echo $(types))"

case $1 in
  --healthcheck) healthcheck ;;
  --list) types; exit 0 ;;
  --print)
    [ $# -eq 2 ] || die "usage: --print TYPE"
    cmd=$(command_of "$2")
    [ -n "$cmd" ] || unknown "$2"
    printf '%s\n' "$cmd"
    exit 0 ;;
  -*) die "unknown option '$1' (--print TYPE, --list, --healthcheck)" ;;
esac

case $1 in
  *[!A-Za-z0-9_-]*) cmd= ;; # not a process type name
  *) cmd=$(command_of "$1") ;;
esac
if [ -n "$cmd" ]; then
  [ $# -eq 1 ] || die "process type '$1' takes no arguments (set them in the Procfile or the environment)"
  printf '%s\n' "$1" >"$STATE" 2>/dev/null || true
  exec /bin/sh -c "exec $cmd"
fi
if command -v -- "$1" >/dev/null 2>&1; then
  exec "$@"
fi
unknown "$1"
