#!/bin/sh
# A `prestop`: the agent check tells haproxy to send no new request here,
# then this waits until every load balancer that checks the member (those
# that asked in the 5 s before; each asks every 500 ms) has been answered
# `maint`, at most KEYSTONE_DRAIN_SECONDS (10), so that the graceful stop
# that follows only finishes requests already in progress.
set -eu
bound=${KEYSTONE_DRAIN_SECONDS:-10}
start=$(date +%s%N)
touch /run/keystone-drain
deadline=$((start + bound * 1000000000))
peers=
for f in /run/keystone-agent/*; do
  [ -f "$f" ] || continue
  if read -r at _ <"$f" && [ $((start - at)) -lt 5000000000 ]; then
    peers="$peers $f"
  fi
done
told() {
  for f in $peers; do
    read -r at answer <"$f" || return 1
    if [ "$at" -le "$start" ] || [ "$answer" != maint ]; then
      return 1
    fi
  done
}
until told; do
  if [ "$(date +%s%N)" -ge "$deadline" ]; then
    echo "drain: not every load balancer was told within ${bound} s:$peers" >&2
    exit 0
  fi
  sleep 0.1
done
echo "drain: told$peers in $((($(date +%s%N) - start) / 1000000)) ms"
