#!/bin/bash
# haproxy in front of the Galera members and keepalived holding the VIP, in
# one container, configured from its environment and eth0:
#
#   VIP                   the virtual address (on eth0, with eth0's prefix)
#   VIP_PORT              haproxy's port for the database (default 3306)
#   GALERA_BACKENDS       the members' addresses, comma or space separated; the
#                         first is active and the others are backups, so every
#                         write goes to one member (no certification conflicts)
#   DB_CHECK_USER         the user of haproxy's mysql-check (default haproxy)
#   RABBITMQ_BACKENDS     optional: RabbitMQ members' addresses; haproxy then
#                         also listens on port 5672 and spreads AMQP clients
#                         over the members that accept connections
#   KEYSTONE_BACKENDS     optional: keystone members' addresses; haproxy then
#                         also listens on port 5000 (HTTP) and spreads the
#                         requests over the members that answer GET /v3 and
#                         whose agent (port 5001) does not say they drain
#   KEEPALIVED_PEERS      the other load balancers' addresses (unicast VRRP:
#                         nothing is multicast outside them)
#   KEEPALIVED_PRIORITY   this one's VRRP priority (1..254; the highest holds the VIP)
#   KEEPALIVED_ROUTER_ID  the VRRP router id (1..255, default 51)
#
# This script stays PID 1: it starts both, forwards SIGTERM (and SIGINT) to
# both, and exits when they have; if either exits by itself the other is
# stopped too and the container exits, for its restart policy to act.
set -euo pipefail

log() { echo "entrypoint: $*" >&2; }
list() { echo "${1:-}" | tr ',' ' ' | xargs; }

addr=$(ip -4 -o addr show dev eth0 2>/dev/null | awk '{ print $4; exit }')
if [ -z "$addr" ]; then
  log "eth0 has no IPv4 address"
  exit 1
fi
ip=${addr%/*}
prefix=${addr#*/}
for var in VIP GALERA_BACKENDS KEEPALIVED_PEERS KEEPALIVED_PRIORITY; do
  if [ -z "${!var:-}" ]; then
    log "$var is not set"
    exit 1
  fi
done

# haproxy binds 0.0.0.0, so it needs no ip_nonlocal_bind to listen for a VIP
# it does not hold (yet).
servers=""
n=0
for backend in $(list "$GALERA_BACKENDS"); do
  n=$((n + 1))
  [ "$n" -gt 1 ] && backup=" backup" || backup=""
  servers+="    server member$n $backend:3306 check inter 1s fall 2 rise 2 agent-check agent-port 9200 agent-inter 500ms$backup"$'\n'
done
sed -e "s|@VIP_PORT@|${VIP_PORT:-3306}|g" \
  -e "s|@CHECK_USER@|${DB_CHECK_USER:-haproxy}|g" \
  /usr/local/share/dockstack/haproxy.cfg >/etc/haproxy/haproxy.cfg
printf '%s' "$servers" >>/etc/haproxy/haproxy.cfg
if [ -n "${RABBITMQ_BACKENDS:-}" ]; then
  # A member that drains for its stop suspends its listener: the connect
  # check fails within two seconds and no new client goes there.
  printf '\nlisten rabbitmq\n    bind 0.0.0.0:5672\n    balance leastconn\n'
  printf '    option redispatch 1\n    retries 3\n'
  # The clients of a member marked down are cut, to reconnect elsewhere.
  n=0
  for backend in $(list "$RABBITMQ_BACKENDS"); do
    n=$((n + 1))
    echo "    server rabbit$n $backend:5672 check inter 1s fall 2 rise 2 on-marked-down shutdown-sessions"
  done
fi >>/etc/haproxy/haproxy.cfg
if [ -n "${KEYSTONE_BACKENDS:-}" ]; then
  cat /usr/local/share/dockstack/haproxy-keystone.cfg
  # A member whose agent says `maint` (its prestop drains it) gets no new
  # request; those it holds finish, as its stop is graceful.
  n=0
  for backend in $(list "$KEYSTONE_BACKENDS"); do
    n=$((n + 1))
    echo "    server keystone$n $backend:5000 check inter 1s fall 2 rise 2 agent-check agent-port 5001 agent-inter 500ms"
  done
fi >>/etc/haproxy/haproxy.cfg

peers=""
for peer in $(list "$KEEPALIVED_PEERS"); do
  [ "$peer" = "$ip" ] || peers+="        $peer"$'\n'
done
sed -e "s|@ROUTER_NAME@|$(hostname)|g" \
  -e "s|@ROUTER_ID@|${KEEPALIVED_ROUTER_ID:-51}|g" \
  -e "s|@PRIORITY@|$KEEPALIVED_PRIORITY|g" \
  -e "s|@SOURCE@|$ip|g" \
  -e "s|@VIP@|$VIP/$prefix|g" \
  /usr/local/share/dockstack/keepalived.conf >/etc/keepalived/keepalived.conf
# The peers' block, in place of its marker line.
awk -v peers="$peers" '/@PEERS@/ { printf "%s", peers; next } { print }' \
  /etc/keepalived/keepalived.conf >/etc/keepalived/keepalived.conf.new
mv /etc/keepalived/keepalived.conf.new /etc/keepalived/keepalived.conf

haproxy -c -q -f /etc/haproxy/haproxy.cfg
mkdir -p /run/haproxy
# keepalived's pid files outlive a kill (a power loss) in the container's
# filesystem; a restarted container's small PIDs may then name a live
# process, and keepalived would exit saying it runs already. Nothing of
# the last run lives at this point: every pid file is stale.
rm -f /run/keepalived.pid /run/vrrp.pid /run/checkers.pid /run/bfd.pid /run/keepalived/*.pid

# -W: master-worker, -db: foreground; -n: keepalived in the foreground,
# -l: its log on the console, -P: VRRP only (no LVS).
haproxy -W -db -f /etc/haproxy/haproxy.cfg &
haproxy_pid=$!
keepalived -n -l -P -f /etc/keepalived/keepalived.conf &
keepalived_pid=$!
log "haproxy ($haproxy_pid) and keepalived ($keepalived_pid) started; VIP $VIP, priority $KEEPALIVED_PRIORITY"

# A stop: keepalived first, which gives the VIP away at once (it sends
# priority 0), then haproxy, whose clients by then reconnect to the other.
stopping=0
trap 'stopping=1; kill -TERM "$keepalived_pid" 2>/dev/null || true' TERM INT

# Returns when either exits, or when a signal's trap has run.
status=0
wait -n "$haproxy_pid" "$keepalived_pid" || status=$?
if [ "$stopping" = 0 ]; then
  log "one of haproxy and keepalived exited ($status); stopping the other"
  kill -TERM "$keepalived_pid" 2>/dev/null || true
fi
wait "$keepalived_pid" 2>/dev/null || true
kill -TERM "$haproxy_pid" 2>/dev/null || true
wait "$haproxy_pid" 2>/dev/null || true
if [ "$stopping" = 0 ]; then
  exit "$((status == 0 ? 1 : status))"
fi
log "stopped"
exit 0
