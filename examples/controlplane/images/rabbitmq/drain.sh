#!/bin/sh
# A `prestop`: maintenance mode (`rabbitmq-upgrade drain`) closes the
# member's client connections and suspends its listeners, so haproxy's check
# takes it out and clients reconnect through the VIP to another member; then
# a short wait for haproxy to have seen it (its check runs every second).
# Each drain is recorded on the data volume (dockstack-drains: the time in
# ns), which outlives the container.
set -eu
rabbitmq-upgrade -q drain
date +%s%N >>/var/lib/rabbitmq/dockstack-drains
sleep "${RABBITMQ_DRAIN_SECONDS:-2}"
