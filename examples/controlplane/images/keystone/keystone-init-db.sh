#!/bin/bash
# keystone-init-db: the database's tables (`keystone-manage db_sync`), then
# the admin user, project, role, region and the identity endpoints
# (`keystone-manage bootstrap`). Both are idempotent: run again, they change
# nothing (bootstrap sets the admin's password if it differs).
#
#   KEYSTONE_ADMIN_PASSWORD  the admin's password (required)
#   KEYSTONE_PUBLIC_URL      the identity endpoint (default http://10.0.0.10:5000/v3)
#   KEYSTONE_REGION          the region (default RegionOne)
#   KEYSTONE_DB_WAIT         how long to wait for the database, in s (default 300)
# and the database settings of the entry script.
set -euo pipefail
log() { echo "keystone-init-db: $*" >&2; }
if [ -z "${KEYSTONE_ADMIN_PASSWORD:-}" ]; then
  log "KEYSTONE_ADMIN_PASSWORD is not set"
  exit 1
fi
url=${KEYSTONE_PUBLIC_URL:-http://10.0.0.10:5000/v3}
deadline=$(($(date +%s) + ${KEYSTONE_DB_WAIT:-300}))
until keystone-manage db_sync; do
  if [ "$(date +%s)" -ge "$deadline" ]; then
    log "db_sync failed until the deadline"
    exit 1
  fi
  log "db_sync failed (the database not reachable yet?); again in 3 s"
  sleep 3
done
log "database in sync"
keystone-manage bootstrap \
  --bootstrap-password "$KEYSTONE_ADMIN_PASSWORD" \
  --bootstrap-admin-url "$url" \
  --bootstrap-internal-url "$url" \
  --bootstrap-public-url "$url" \
  --bootstrap-region-id "${KEYSTONE_REGION:-RegionOne}"
log "admin and the identity endpoint $url bootstrapped"
