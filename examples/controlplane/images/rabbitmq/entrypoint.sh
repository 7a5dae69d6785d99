#!/bin/bash
# A RabbitMQ member, configured from its environment:
#
#   RABBITMQ_PEERS        the members as NAME=ADDRESS, comma or space separated
#                         (this member among them): each is node rabbit@NAME,
#                         its name written in /etc/hosts, and the list is the
#                         classic-config peer discovery of a new member
#   RABBITMQ_BOOTSTRAP    1: with no data, start a new cluster at once instead
#                         of looking for peers (each unreachable peer costs
#                         a try's timeouts, ten tries); with data, ignored
#   RABBITMQ_COOKIE_FILE  the Erlang cookie shared by the members, read from a
#                         volume (default /etc/dockstack/rabbitmq/cookie)
#   AMQP_USER, AMQP_PASSWORD  the user a new cluster is made with (default
#                         guest/guest, allowed from other addresses than loopback)
#   RABBITMQ_DNS          1: names are looked up with the container's resolver
#                         too (default: /etc/hosts alone)
#
# The node is rabbit@<the container's name>. Its data (/var/lib/rabbitmq)
# belongs on a volume: a member that keeps it rejoins its cluster after any
# stop, and members that all went down together (a power loss) wait for
# each other and form the cluster again by themselves.
#
# This script stays the parent of rabbitmq-server (run it with `init: true`):
# a SIGTERM is forwarded to it, which stops the node cleanly (rabbitmqctl
# stop). When the node exits by itself for a reason only an operator can
# settle (its peers never came back, or they no longer count it as a
# member), the script says so on the console and what to do, and exits 2.
#
# A command (`command: [python3, ...]`) runs instead of a member: the image
# holds an AMQP client, /usr/local/share/dockstack/amqp.py.
set -euo pipefail

case "${1:-}" in
'' | -*) ;;
*) exec "$@" ;;
esac

log() { echo "entrypoint: $*" >&2; }

name=$(hostname -s)
node=rabbit@$name
cookie_file=${RABBITMQ_COOKIE_FILE:-/etc/dockstack/rabbitmq/cookie}
home=/var/lib/rabbitmq

peers=$(echo "${RABBITMQ_PEERS:-}" | tr ',' ' ' | xargs)
if [ -z "$peers" ]; then
  log "RABBITMQ_PEERS is empty: a member needs its peers as NAME=ADDRESS"
  exit 1
fi
hosts=""
nodes=""
n=0
self=0
for peer in $peers; do
  peer_name=${peer%%=*}
  peer_ip=${peer#*=}
  if [ "$peer_name" = "$peer" ] || [ -z "$peer_name" ] || [ -z "$peer_ip" ]; then
    log "RABBITMQ_PEERS: '$peer' is not NAME=ADDRESS"
    exit 1
  fi
  n=$((n + 1))
  hosts+="$peer_ip $peer_name # rabbitmq peer"$'\n'
  nodes+="cluster_formation.classic_config.nodes.$n = rabbit@$peer_name"$'\n'
  [ "$peer_name" = "$name" ] && self=1
done
if [ "$self" = 0 ]; then
  log "RABBITMQ_PEERS does not name this member ($name)"
  exit 1
fi
if [ ! -s "$cookie_file" ]; then
  log "no Erlang cookie in $cookie_file: mount the members' shared cookie there (a volume)"
  exit 1
fi

# The peers' names, in place of those of a previous start (Docker keeps the
# file across restarts; it is a bind mount, so written in place).
{
  grep -v ' # rabbitmq peer$' /etc/hosts || true
  printf '%s' "$hosts"
} >/tmp/hosts.new
cat /tmp/hosts.new >/etc/hosts
# An unreachable resolver would cost every lookup of a peer its timeouts.
if [ "${RABBITMQ_DNS:-0}" != 1 ]; then
  sed -i 's/^hosts:.*/hosts:          files/' /etc/nsswitch.conf
fi

install -d -o rabbitmq -g rabbitmq -m 755 "$home" /run/rabbitmq
# The node's and the CLI tools' cookie (they run as rabbitmq, or as root
# from docker exec).
for dir in "$home" /root; do
  install -m 400 "$cookie_file" "$dir/.erlang.cookie"
done
chown rabbitmq:rabbitmq "$home/.erlang.cookie"

escape() { printf '%s' "$1" | sed -e 's/[\\|&]/\\&/g'; }
sed -e "s|@USER@|$(escape "${AMQP_USER:-guest}")|g" \
  -e "s|@PASSWORD@|$(escape "${AMQP_PASSWORD:-guest}")|g" \
  /usr/local/share/dockstack/rabbitmq.conf >/etc/rabbitmq/rabbitmq.conf
printf '%s' "$nodes" >>/etc/rabbitmq/rabbitmq.conf
# No scheduler busy-waiting: the Erlang VM otherwise spins on idle CPUs
# that the host's other containers need.
cat >/etc/rabbitmq/rabbitmq-env.conf <<EOF
NODENAME=$node
SERVER_ADDITIONAL_ERL_ARGS="+sbwt none +sbwtdcpu none +sbwtdio none"
EOF

if [ -d "$home/mnesia/$node" ]; then
  log "$node: data from an earlier run; rejoining its cluster ($peers)"
elif [ "${RABBITMQ_BOOTSTRAP:-0}" = 1 ]; then
  log "$node: no data and RABBITMQ_BOOTSTRAP=1: a new cluster"
  # Discovery finds no one but itself.
  sed -i '/^cluster_formation.classic_config.nodes/d' /etc/rabbitmq/rabbitmq.conf
  echo "cluster_formation.classic_config.nodes.1 = $node" >>/etc/rabbitmq/rabbitmq.conf
else
  log "$node: no data; joining the first peer reachable, else a new cluster ($peers)"
fi

console=/run/rabbitmq/console.log
: >"$console"
# rabbitmq-server's own script stops the node with `rabbitmqctl stop` on
# SIGTERM; run as rabbitmq (not through Debian's su wrapper, which would be
# in the way of the signal).
setpriv --reuid rabbitmq --regid rabbitmq --init-groups \
  env HOME="$home" RABBITMQ_NODENAME="$node" /usr/lib/rabbitmq/bin/rabbitmq-server \
  > >(tee -a "$console") 2>&1 &
pid=$!
stopping=0
trap 'stopping=1; kill -TERM "$pid" 2>/dev/null || true' TERM INT
status=0
wait "$pid" || status=$?
# A signal interrupts the first wait; the second waits for the clean stop.
if [ "$stopping" = 1 ]; then
  wait "$pid" || status=$?
  log "$node stopped (status $status)"
  exit 0
fi

if grep -q 'timeout_waiting_for_tables' "$console"; then
  log "OPERATOR DECISION NEEDED: $node waited for its peers' tables and none of them came back."
  log "  The member that stopped last holds the newest data and must start first; start the others."
  log "  If it is gone for good, force this one up: touch $home/mnesia/$node/force_load on its volume"
  log "  (or 'rabbitmqctl force_boot' while it waits), and it starts without them."
  exit 2
fi
if grep -q 'inconsistent_cluster' "$console"; then
  log "OPERATOR DECISION NEEDED: $node's data says it is in a cluster whose members no longer count it"
  log "  (it was removed while it was down). Empty its data directory ($home on its volume) to join anew."
  exit 2
fi
log "$node exited by itself (status $status); see the log above"
exit "$((status == 0 ? 1 : status))"
