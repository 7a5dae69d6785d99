#!/bin/bash
# keystone served by uwsgi (Debian's packages), configured from its
# environment:
#
#   KEYSTONE_DB_HOST        the database's address (default 10.0.0.10, the
#                           VIP); KEYSTONE_DB_PORT (3306)
#   KEYSTONE_DB_NAME        the database (default keystone)
#   KEYSTONE_DB_USER        its user (default keystone)
#   KEYSTONE_DB_PASSWORD    its password (required to serve)
#   MEMCACHED_SERVERS       the cache's HOST:PORT list, comma separated
#                           (default none: no cache)
#   KEYSTONE_KEYS_DIR       the key repositories' directory, a volume the
#                           members share (default /etc/keystone/keys):
#                           fernet/ and credential/ in it, made by
#                           keystone-init-keys
#   KEYSTONE_PASSWORD_HASH_ROUNDS  bcrypt's rounds for the passwords it
#                           stores (default keystone's, 12; each password
#                           login costs 2^rounds)
#   KEYSTONE_PROCESSES      uwsgi's worker processes (default 2)
#   KEYSTONE_THREADS        threads per worker (default 4)
#
# Given a command (`keystone-init-keys`, `keystone-init-db`, `keystone-manage
# ...`), it runs that instead of the server, with keystone.conf written.
#
# uwsgi replaces this script (exec); with `init: true` an init as PID 1
# forwards Docker's SIGTERM to it, which is a graceful shutdown: the
# workers finish the requests they hold, then exit. haproxy's agent check is
# answered on port 5001 (agent.sh); a `prestop` of /usr/local/bin/drain takes
# the member out of haproxy's rotation first.
set -euo pipefail

log() { echo "entrypoint: $*" >&2; }

keys=${KEYSTONE_KEYS_DIR:-/etc/keystone/keys}
db_url="mysql+pymysql://${KEYSTONE_DB_USER:-keystone}:${KEYSTONE_DB_PASSWORD:-}@${KEYSTONE_DB_HOST:-10.0.0.10}:${KEYSTONE_DB_PORT:-3306}/${KEYSTONE_DB_NAME:-keystone}"
cache_enabled=false
[ -n "${MEMCACHED_SERVERS:-}" ] && cache_enabled=true

# The whole file, from nothing: Debian's carries a log file and a template
# catalog this has no use for.
umask 027
cat >/etc/keystone/keystone.conf <<CONF
[DEFAULT]
# On the console (the container's log), not in a file.
use_stderr = true

[database]
connection = $db_url
# A connection the VIP's haproxy cut (a member drained or replaced) is
# noticed when taken from the pool and made again. A connection older than
# a second is not used for another request but made again, through the VIP:
# so a drained member (galera's drain) soon holds no busy connection of the
# pool, and one the drain closes, idle for 2 s, is never in use.
connection_recycle_time = 1
max_retries = -1

[cache]
enabled = $cache_enabled
backend = oslo_cache.memcache_pool
memcache_servers = ${MEMCACHED_SERVERS:-}
# A cache that is down costs a second, not a request.
memcache_socket_timeout = 1
memcache_dead_retry = 30

[token]
provider = fernet

[fernet_tokens]
key_repository = $keys/fernet

# Receipts (multi-factor logins) are signed with the tokens' keys.
[fernet_receipts]
key_repository = $keys/fernet

[credential]
key_repository = $keys/credential

[identity]
${KEYSTONE_PASSWORD_HASH_ROUNDS:+password_hash_rounds = $KEYSTONE_PASSWORD_HASH_ROUNDS}
CONF
chown root:keystone /etc/keystone/keystone.conf
umask 022

case "${1:-}" in
'' | -*) ;;
*) exec "$@" ;;
esac

if [ -z "${KEYSTONE_DB_PASSWORD:-}" ]; then
  log "KEYSTONE_DB_PASSWORD is not set"
  exit 1
fi
ip=$(ip -4 -o addr show dev eth0 2>/dev/null | awk '{ split($4, a, "/"); print a[1]; exit }')
if [ -z "$ip" ]; then
  log "eth0 has no IPv4 address"
  exit 1
fi
# Without the shared keys a member would sign tokens no other can read.
if ! ls "$keys"/fernet/0 >/dev/null 2>&1; then
  log "no fernet keys in $keys/fernet: the key repository is made once by"
  log "keystone-init-keys (the example's keystone-keys oneshot), shared by every member"
  exit 1
fi

rm -f /run/keystone-drain /run/keystone-healthy
socat TCP-LISTEN:5001,fork,reuseaddr SYSTEM:/usr/local/bin/agent </dev/null >/dev/null 2>&1 &

processes=${KEYSTONE_PROCESSES:-2}
threads=${KEYSTONE_THREADS:-4}
sed -e "s|@PROCESSES@|$processes|g" -e "s|@THREADS@|$threads|g" \
  /usr/local/share/dockstack/uwsgi.ini >/etc/keystone/uwsgi.ini
log "keystone on $ip:5000 (uwsgi, $processes processes of $threads threads); database ${KEYSTONE_DB_HOST:-10.0.0.10}, cache ${MEMCACHED_SERVERS:-none}"
exec uwsgi --ini /etc/keystone/uwsgi.ini "$@"
