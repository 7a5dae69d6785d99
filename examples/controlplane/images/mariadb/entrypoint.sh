#!/bin/bash
# A MariaDB Galera member, configured from its environment and eth0:
#
#   GALERA_PEERS         the members' addresses, comma or space separated
#                        (this member's own may be among them): wsrep_cluster_address
#   GALERA_BOOTSTRAP     1: start a new cluster, but only from an empty datadir;
#                        a datadir that holds data always joins its peers
#   GALERA_CLUSTER_NAME  wsrep_cluster_name (default dockstack)
#   GALERA_SST_METHOD    wsrep_sst_method (default rsync_ist: rsync, with a
#                        donor of an IST back among the Synced at once)
#   GALERA_GCACHE_SIZE   gcache.size (default 256M): how far back a returning
#                        member can catch up by IST instead of a full SST
#   DB_ROOT_PASSWORD     with a new cluster: 'root'@'%' gets this password
#   DB_CHECK_USER        with a new cluster: a user with no password and no
#                        privilege, for haproxy's mysql-check (default haproxy)
#   GALERA_DNS           1: names are looked up with the container's resolver
#                        too (default: /etc/hosts alone)
#
# mariadbd replaces this script (exec): it is PID 1 and gets Docker's SIGTERM
# itself, which is a clean shutdown that leaves grastate.dat with its seqno.
#
# A command other than mariadbd's options runs instead (a client, a shell):
# `command: [mariadb, -h, 10.0.0.10]` uses the image's client.
#
# haproxy's agent check is answered on port 9200 (agent.sh); a `prestop` of
# /usr/local/bin/drain takes the member out of haproxy's rotation first.
set -euo pipefail

case "${1:-}" in
'' | -*) ;;
*) exec "$@" ;;
esac

datadir=/var/lib/mysql
conf=/etc/mysql/mariadb.conf.d/99-dockstack.cnf
log() { echo "entrypoint: $*" >&2; }

ip=$(ip -4 -o addr show dev eth0 2>/dev/null | awk '{ split($4, a, "/"); print a[1]; exit }')
if [ -z "$ip" ]; then
  log "eth0 has no IPv4 address"
  exit 1
fi
peers=$(echo "${GALERA_PEERS:-}" | tr ' ' ',' | tr -s ',' | sed -e 's/^,//' -e 's/,$//')
if [ -z "$peers" ] && [ "${GALERA_BOOTSTRAP:-0}" != 1 ]; then
  log "GALERA_PEERS is empty: a member needs its peers' addresses"
  exit 1
fi

sed -e "s|@NODE_ADDRESS@|$ip|g" \
  -e "s|@NODE_NAME@|$(hostname)|g" \
  -e "s|@PEERS@|$peers|g" \
  -e "s|@CLUSTER_NAME@|${GALERA_CLUSTER_NAME:-dockstack}|g" \
  -e "s|@SST_METHOD@|${GALERA_SST_METHOD:-rsync_ist}|g" \
  -e "s|@GCACHE_SIZE@|${GALERA_GCACHE_SIZE:-256M}|g" \
  /usr/local/share/dockstack/galera.cnf >"$conf"

# The members know each other by address, and a resolver the container
# cannot reach costs every lookup its timeouts: the rsync daemon of a state
# transfer looks up each connection's address (a joiner took 40 s, not 12 s,
# on the test bed). Names come from /etc/hosts alone (GALERA_DNS=1 keeps the
# resolver).
if [ "${GALERA_DNS:-0}" != 1 ]; then
  sed -i 's/^hosts:.*/hosts:          files/' /etc/nsswitch.conf
fi

mkdir -p /run/mysqld "$datadir"
chown mysql:mysql /run/mysqld "$datadir"

# Empty: no system tables yet (a volume's lost+found aside).
empty=1
[ -d "$datadir/mysql" ] && empty=0

args=(--user=mysql)
if [ "$empty" = 1 ] && [ "${GALERA_BOOTSTRAP:-0}" = 1 ]; then
  log "empty datadir and GALERA_BOOTSTRAP=1: a new cluster from $ip"
  mariadb-install-db --user=mysql --datadir="$datadir" --skip-test-db \
    --auth-root-authentication-method=socket >/tmp/install-db.log 2>&1 || {
    cat /tmp/install-db.log >&2
    exit 1
  }
  # The cluster's users, made before Galera starts so that joiners get them
  # with their first state transfer.
  check_user=${DB_CHECK_USER:-haproxy}
  {
    echo "USE mysql;"
    echo "FLUSH PRIVILEGES;"
    echo "CREATE USER IF NOT EXISTS '$check_user'@'%';"
    if [ -n "${DB_ROOT_PASSWORD:-}" ]; then
      pw=${DB_ROOT_PASSWORD//\\/\\\\}
      pw=${pw//\'/\\\'}
      echo "CREATE USER IF NOT EXISTS 'root'@'%' IDENTIFIED BY '$pw';"
      echo "GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION;"
    fi
  } | mariadbd --user=mysql --datadir="$datadir" --bootstrap --wsrep-on=OFF \
    --skip-networking --log-warnings=0 >/tmp/users.log 2>&1 || {
    cat /tmp/users.log >&2
    exit 1
  }
  args+=(--wsrep-new-cluster)
elif [ "$empty" = 1 ]; then
  log "empty datadir: joining $peers (state transfer by ${GALERA_SST_METHOD:-rsync_ist})"
else
  seqno=$(sed -n 's/^seqno:[[:space:]]*//p' "$datadir/grastate.dat" 2>/dev/null || true)
  if [ "${seqno:--1}" = -1 ]; then
    # Killed, not shut down: the position is in InnoDB, not in grastate.dat.
    log "unclean datadir (grastate seqno ${seqno:-missing}): recovering its position"
    rm -f /tmp/wsrep-recover.log
    mariadbd --user=mysql --wsrep-recover --log-error=/tmp/wsrep-recover.log || true
    position=$(sed -n 's/.*WSREP: Recovered position: *//p' /tmp/wsrep-recover.log | tail -1)
    if [ -n "$position" ]; then
      log "recovered position $position"
      args+=("--wsrep-start-position=$position")
    else
      log "no position recovered; joining by a full state transfer"
      cat /tmp/wsrep-recover.log >&2 || true
    fi
  else
    log "clean datadir (seqno $seqno): joining $peers"
  fi
fi

rm -f /run/dockstack-drain
socat TCP-LISTEN:9200,fork,reuseaddr SYSTEM:/usr/local/bin/agent </dev/null >/dev/null 2>&1 &

exec mariadbd "${args[@]}" "$@"
