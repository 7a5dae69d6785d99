#!/bin/sh
# haproxy's agent check (socat runs this once per connection on port 5001,
# with SOCAT_PEERADDR the load balancer asking):
#   maint     draining for a stop (drain): no new requests, and those in
#             progress finish
#   ready up  healthy (the image's healthcheck has passed since the start);
#             haproxy's own HTTP check (GET /v3) must pass too
#   ready down  starting: the socket takes connections long before keystone
#             is loaded, and a member back from maintenance (a restart)
#             would otherwise be taken as up at once
if [ -e /run/keystone-drain ]; then
  answer=maint
elif [ -e /run/keystone-healthy ]; then
  answer="ready up"
else
  answer="ready down"
fi
echo "$answer"
# Each load balancer's last answer and when, once haproxy has it: the drain
# waits until every one has been told.
dir=/run/keystone-agent
file=$dir/${SOCAT_PEERADDR:-unknown}
mkdir -p "$dir"
echo "$(date +%s%N) $answer" >"$file.new" && mv -f "$file.new" "$file"
