#!/bin/sh
# Healthy when the server answers its status endpoint (open to anyone by
# Debian's auth.conf) with "running": its CA and catalog services are up.
status=$(curl -fsk --max-time 5 https://127.0.0.1:8140/status/v1/simple) || exit 1
[ "$status" = running ] && exit 0
echo "status: $status"
exit 1
