#!/bin/sh
# haproxy's agent check (socat runs this once per connection on port 5001):
#   maint     draining for a stop (drain): no new requests, and those in
#             progress finish
#   ready up  healthy (the image's healthcheck has passed since the start);
#             haproxy's own HTTP check (GET /v3) must pass too
#   ready down  starting: the socket takes connections long before keystone
#             is loaded, and a member back from maintenance (a restart)
#             would otherwise be taken as up at once
if [ -e /run/keystone-drain ]; then
  echo maint
elif [ -e /run/keystone-healthy ]; then
  echo ready up
else
  echo ready down
fi
