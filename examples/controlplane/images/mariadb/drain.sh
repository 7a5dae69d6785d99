#!/bin/sh
# A `prestop` for a member behind haproxy: the agent check tells haproxy to
# send no new clients here, then this waits until haproxy has asked (its
# agent-inter is 500 ms) and the last short transactions are done, so the
# stop that follows cuts no client off.
set -eu
touch /run/dockstack-drain
sleep "${GALERA_DRAIN_SECONDS:-1.5}"
