#!/bin/sh
# Healthy when keystone answers on eth0's address: GET /v3 gives 200, and,
# until the member is first healthy, a password login of a user that does
# not exist is refused with 401 (the database is reached and what a login
# needs is loaded; each one is a warning in the log, hence not every time).
# Once healthy, the member's agent check lets haproxy send it requests.
set -eu
ip=$(ip -4 -o addr show dev eth0 | awk '{ split($4, a, "/"); print a[1]; exit }')
url=http://$ip:5000/v3
code=$(curl -s -o /dev/null -w '%{http_code}' -m 8 "$url" || true)
if [ "$code" != 200 ]; then
  echo "GET $url: ${code:-no answer}"
  exit 1
fi
[ -e /run/keystone-healthy ] && exit 0
code=$(curl -s -o /dev/null -w '%{http_code}' -m 8 -H 'Content-Type: application/json' \
  -d '{"auth": {"identity": {"methods": ["password"], "password": {"user":
    {"name": "dockstack-healthcheck", "domain": {"id": "default"}, "password": "-"}}}}}' \
  "$url/auth/tokens" || true)
if [ "$code" != 401 ]; then
  echo "POST $url/auth/tokens (no such user): ${code:-no answer}, not 401"
  exit 1
fi
touch /run/keystone-healthy
