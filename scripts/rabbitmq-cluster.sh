#!/usr/bin/env bash
# A three-node RabbitMQ cluster on this machine, for the replicated-broker (quorum queue) tests and
# for trying RABBITMQ_QUEUE_TYPE=quorum by hand.
#
#   scripts/rabbitmq-cluster.sh start  [--dir DIR] [--base-port N] [--consumer-timeout MS] [--management]
#   scripts/rabbitmq-cluster.sh stop   [--dir DIR]
#   scripts/rabbitmq-cluster.sh status [--dir DIR]
#   scripts/rabbitmq-cluster.sh url    [--dir DIR]              RABBITMQ_URL listing the three nodes
#   scripts/rabbitmq-cluster.sh ctl N [--dir DIR] -- ARGS...    rabbitmqctl ARGS on node N (1-3)
#
# Node N (1..3) is rabbit-ocN@localhost with AMQP on BASE+N-1 (default base 5681: 5681-5683) and
# Erlang distribution on AMQP+20000 (25681-25683); management (with --management) on AMQP+10000.
# Everything a node writes lives under DIR (default ./var/rabbitmq-cluster): its configuration,
# data (RABBITMQ_MNESIA_BASE), logs (RABBITMQ_LOG_BASE), pid file, and the cluster's own Erlang
# cookie (DIR/.erlang.cookie, used through HOME=DIR). Nodes 2 and 3 join node 1 with
# `rabbitmqctl join_cluster`. The nodes register with the machine's epmd (started if absent) and
# take nothing else from a system RabbitMQ: its node, cookie, configuration and port 5672 are never
# touched. `stop` stops only the nodes whose pid files are under DIR (gracefully, then by signal)
# and is a no-op when none runs. `start` on a running cluster only checks it.
# --consumer-timeout MS sets consumer_timeout and checks it every second (tests use a short one).
# Runs as any user that can write DIR; as root too (the nodes then run as root).
set -eu

cd "$(dirname "$0")/.."
PATH=$PATH:/usr/sbin:/sbin

DIR=var/rabbitmq-cluster
BASE=5681
CONSUMER_TIMEOUT=
MANAGEMENT=0
NODES="1 2 3"

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
die() { printf 'rabbitmq-cluster: %s\n' "$*" >&2; exit 1; }

CMD=${1:-}
[ $# -gt 0 ] && shift
CTL_NODE=
if [ "$CMD" = ctl ]; then CTL_NODE=${1:?ctl needs a node number}; shift; fi
while [ $# -gt 0 ]; do
  case $1 in
    --dir) DIR=${2:?--dir needs a path}; shift 2 ;;
    --base-port) BASE=${2:?--base-port needs a port}; shift 2 ;;
    --consumer-timeout) CONSUMER_TIMEOUT=${2:?--consumer-timeout needs milliseconds}; shift 2 ;;
    --management) MANAGEMENT=1; shift ;;
    --) shift; break ;;
    -h|--help) usage; exit 0 ;;
    *) [ "$CMD" = ctl ] && break; die "unknown argument: $1" ;;
  esac
done
case $BASE in ''|*[!0-9]*) die "--base-port must be a number, got $BASE" ;; esac
[ "$BASE" -ge 1024 ] && [ "$BASE" -le 45000 ] || die "--base-port must be between 1024 and 45000 (AMQP+20000 is the distribution port)"
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)

# Debian's rabbitmq-server/rabbitmqctl in /usr/sbin are wrappers that switch to the rabbitmq user and
# its cookie; the scripts they wrap run as the caller. Elsewhere (generic tarball) they are the scripts.
SBIN=/usr/lib/rabbitmq/bin
[ -x "$SBIN/rabbitmq-server" ] || SBIN=$(dirname "$(command -v rabbitmq-server 2>/dev/null || die "rabbitmq-server is not installed")")

node() { printf 'rabbit-oc%s@localhost' "$1"; }
amqp_port() { echo $((BASE + $1 - 1)); }
pid_file() { printf '%s/rabbit-oc%s.pid' "$DIR" "$1"; } # the pid of the node's rabbitmq-server script

node_env() { # the environment of node $1 (and of rabbitmqctl talking to it)
  local n=$1
  export HOME=$DIR
  export RABBITMQ_NODENAME; RABBITMQ_NODENAME=$(node "$n")
  export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
  export RABBITMQ_NODE_PORT; RABBITMQ_NODE_PORT=$(amqp_port "$n")
  export RABBITMQ_DIST_PORT=$((RABBITMQ_NODE_PORT + 20000))
  export RABBITMQ_CONF_ENV_FILE=$DIR/rabbitmq-env.conf
  export RABBITMQ_CONFIG_FILE=$DIR/rabbit-oc$n.conf
  export RABBITMQ_ADVANCED_CONFIG_FILE=$DIR/advanced.config
  export RABBITMQ_ENABLED_PLUGINS_FILE=$DIR/enabled_plugins
  export RABBITMQ_MNESIA_BASE=$DIR/mnesia
  export RABBITMQ_LOG_BASE=$DIR/log
  export ERL_EPMD_ADDRESS=127.0.0.1
  export ERL_FLAGS="-kernel inet_dist_use_interface {127,0,0,1}"
}

ctl() { # ctl N ARGS...: rabbitmqctl on node N
  local n=$1; shift
  (node_env "$n"; "$SBIN/rabbitmqctl" -n "$(node "$n")" "$@")
}

running() { # whether node $1 (by its pid file under DIR) is alive
  local f; f=$(pid_file "$1")
  [ -s "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null
}

write_config() {
  [ -s "$DIR/.erlang.cookie" ] || {
    (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' | tr a-f A-F > "$DIR/.erlang.cookie")
  }
  chmod 400 "$DIR/.erlang.cookie"
  : > "$DIR/rabbitmq-env.conf"
  if [ "$MANAGEMENT" = 1 ]; then echo '[rabbitmq_management].' > "$DIR/enabled_plugins"
  else echo '[].' > "$DIR/enabled_plugins"; fi
  local tick=60000
  [ -n "$CONSUMER_TIMEOUT" ] && tick=1000
  # channel_tick_interval: how often a channel checks its deliveries against consumer_timeout.
  printf '[{rabbit, [{channel_tick_interval, %s}]}].\n' "$tick" > "$DIR/advanced.config"
  for n in $NODES; do
    {
      echo "listeners.tcp.default = 127.0.0.1:$(amqp_port "$n")"
      echo "loopback_users.guest = true"
      # Three nodes share one machine: never block publishers on this machine's memory or disk.
      echo "vm_memory_high_watermark.absolute = 1GB"
      echo "disk_free_limit.absolute = 1MB"
      [ -n "$CONSUMER_TIMEOUT" ] && echo "consumer_timeout = $CONSUMER_TIMEOUT"
      [ "$MANAGEMENT" = 1 ] && echo "management.tcp.port = $(($(amqp_port "$n") + 10000))"
      true
    } > "$DIR/rabbit-oc$n.conf"
  done
}

start_node() {
  local n=$1
  running "$n" && return 0
  mkdir -p "$DIR/log"
  (node_env "$n"; exec nohup "$SBIN/rabbitmq-server" > "$DIR/log/rabbit-oc$n.out" 2>&1 < /dev/null) &
  echo $! > "$(pid_file "$n")"
}

await_node() { # until node $1 runs its broker app (await_startup fails at once while the node is unregistered)
  local n=$1 deadline=$((SECONDS + 120))
  until ctl "$n" await_startup --timeout 10 > /dev/null 2>&1; do
    if ! running "$n" || [ $SECONDS -ge $deadline ]; then
      tail -n 30 "$DIR/log/rabbit-oc$n.out" >&2 || true
      die "node $(node "$n") did not start (logs in $DIR/log)"
    fi
    sleep 0.5
  done
}

clustered() { # whether node $1 already lists node 1 among its cluster's disc nodes
  ctl "$1" cluster_status --formatter json 2>/dev/null | grep -q "\"$(node 1)\""
}

cmd_start() {
  command -v epmd > /dev/null || PATH=$PATH:$(dirname "$(ls /usr/lib/erlang/erts-*/bin/epmd 2>/dev/null | head -n 1)")
  write_config
  ERL_EPMD_ADDRESS=127.0.0.1 epmd -daemon 2> /dev/null || true
  for n in $NODES; do start_node "$n"; done # boot in parallel: the slow part
  for n in $NODES; do await_node "$n"; done
  for n in 2 3; do
    clustered "$n" && continue
    ctl "$n" stop_app > /dev/null
    ctl "$n" join_cluster "$(node 1)" > /dev/null
    ctl "$n" start_app > /dev/null
    await_node "$n"
  done
  echo "RabbitMQ cluster running (data in $DIR):"
  cmd_status
  echo "RABBITMQ_URL=$(cmd_url)"
}

cmd_stop() {
  local n pid pids=""
  for n in $NODES; do
    running "$n" || { rm -f "$(pid_file "$n")"; continue; }
    pid=$(cat "$(pid_file "$n")")
    pids="$pids $pid"
    ctl "$n" stop > /dev/null 2>&1 &
  done
  wait || true
  for pid in $pids; do # what did not stop gracefully within 30 s is killed, with its child processes
    for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    if kill -0 "$pid" 2>/dev/null; then pkill -KILL -P "$pid" 2>/dev/null || true; kill -KILL "$pid" 2>/dev/null || true; fi
  done
  for n in $NODES; do rm -f "$(pid_file "$n")"; done
  echo "RabbitMQ cluster in $DIR stopped."
}

cmd_status() {
  local n state rc=0
  for n in $NODES; do
    if ! running "$n"; then state="stopped"; rc=3
    elif ctl "$n" status > /dev/null 2>&1 && ctl "$n" eval 'rabbit:is_running().' 2>/dev/null | grep -q true; then
      state="running"
    else state="node up, broker app stopped"; rc=3; fi
    printf '  %s  amqp 127.0.0.1:%s  %s\n' "$(node "$n")" "$(amqp_port "$n")" "$state"
  done
  return $rc
}

cmd_url() {
  local n urls=""
  for n in $NODES; do urls="$urls${urls:+,}amqp://guest:guest@127.0.0.1:$(amqp_port "$n")/%2F"; done
  echo "$urls"
}

case $CMD in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  url) cmd_url ;;
  ctl) case $CTL_NODE in 1|2|3) ;; *) die "ctl: node must be 1, 2 or 3, got $CTL_NODE" ;; esac; ctl "$CTL_NODE" "$@" ;;
  -h|--help|"") usage; [ -n "$CMD" ] ;;
  *) die "unknown command: $CMD (start|stop|status|url|ctl)" ;;
esac
