#!/bin/sh
# A `prestop`: the agent check tells haproxy to send no new request here,
# then this waits until haproxy has asked (its agent-inter is 500 ms, on
# every load balancer), so that the graceful stop that follows only finishes
# requests already in progress.
set -eu
touch /run/keystone-drain
sleep "${KEYSTONE_DRAIN_SECONDS:-2}"
