#!/bin/sh
# A `prestop` for a member behind haproxy. The agent check tells haproxy to
# send no new clients here; once haproxy has asked (its agent-inter is
# 500 ms), the clients' connections are closed as each has been idle for
# 2 s, so the stop that follows cuts no query off.
#
# A pool (keystone's) keeps its connections to this member through the VIP
# whatever haproxy says of new ones, and would use them until the member's
# shutdown cut one under a query. A connection idle for 2 s is one the pool
# holds unused, and (keystone's connection_recycle_time being 1 s) one it
# will not use again but make anew, through the VIP, to another member. A
# connection closed while a request is between two of its queries would
# fail that request: hence the 2 s. After GALERA_DRAIN_SECONDS (10) the
# stop goes ahead whatever is left.
set -eu
touch /run/dockstack-drain
sleep "${GALERA_DRAIN_AGENT_SECONDS:-1.5}"
sql() {
  mariadb --protocol=socket -uroot -N -B --connect-timeout=3 -e "$1"
}
# The clients that came over the network: not this container's own checks
# over the socket, nor the server's threads.
clients="FROM information_schema.PROCESSLIST WHERE HOST <> '' AND HOST <> 'localhost' \
  AND COMMAND NOT IN ('Daemon', 'Binlog Dump') AND ID <> CONNECTION_ID()"
bound=${GALERA_DRAIN_SECONDS:-10}
deadline=$(($(date +%s) + bound))
closed=0
while :; do
  for id in $(sql "SELECT ID $clients AND COMMAND = 'Sleep' AND TIME_MS >= 2000"); do
    # Gone meanwhile, or busy again: the next round sees.
    if sql "KILL CONNECTION $id" 2>/dev/null; then
      closed=$((closed + 1))
    fi
  done
  left=$(sql "SELECT COUNT(*) $clients") || {
    echo "drain: cannot list the client connections; stopping" >&2
    exit 0
  }
  if [ "$left" -eq 0 ]; then
    echo "drain: $closed idle client connections closed"
    exit 0
  fi
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "drain: $left client connections still busy after ${bound} s; stopping" >&2
    exit 0
  fi
  sleep 0.2
done
