#!/bin/sh
# haproxy's agent check (socat runs this once per connection on port 9200):
# one line that tells haproxy whether to send clients to this member.
#   maint     draining for a stop (galera-drain): no new clients, and those
#             connected finish what they do
#   up ready  Synced and ready for queries
#   down      anything else: joining, a donor, outside the primary component
# haproxy's own mysql-check sees only that a login works, which a joiner's
# does long before it can take a write.
if [ -e /run/dockstack-drain ]; then
  echo maint
elif /usr/local/bin/healthcheck >/dev/null 2>&1; then
  echo up ready
else
  echo down
fi
