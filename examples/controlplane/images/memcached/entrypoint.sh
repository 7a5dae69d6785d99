#!/bin/bash
# One memcached (keystone's cache), configured from its environment:
#
#   MEMCACHED_MEMORY       the cache's size in MB (default 64)
#   MEMCACHED_CONNECTIONS  the most clients at once (default 1024)
#
# memcached replaces this script (exec): it is PID 1 and exits on Docker's
# SIGTERM. It listens on every address of the container, port 11211, TCP only.
# A command other than memcached's options runs instead.
set -euo pipefail

case "${1:-}" in
'' | -*) ;;
*) exec "$@" ;;
esac

exec memcached -u memcache -l 0.0.0.0 -p 11211 -U 0 \
  -m "${MEMCACHED_MEMORY:-64}" -c "${MEMCACHED_CONNECTIONS:-1024}" "$@"
